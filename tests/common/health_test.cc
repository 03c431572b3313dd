#include "common/health.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <vector>

#include "common/status.h"

namespace qunzu {
namespace {

class Recorder {
 public:
  void Record(bool serving) {
    std::lock_guard<std::mutex> lock(mu_);
    states_.push_back(serving);
    changed_.notify_all();
  }
  // Waits (bounded) until `count` states were recorded.
  std::vector<bool> WaitFor(size_t count) {
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait_for(lock, std::chrono::seconds(10), [&] { return states_.size() >= count; });
    return states_;
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  std::vector<bool> states_;
};

TEST(DependencyMonitor, ReportsOnlyChanges) {
  prometheus::Registry registry;
  std::atomic<bool> redis_up{true};
  Recorder recorder;
  DependencyMonitor monitor(
      {{"mysql", [] { return absl::OkStatus(); }},
       {"redis",
        [&] { return redis_up ? absl::OkStatus() : absl::UnavailableError("redis down"); }}},
      absl::Hours(1), [&](bool serving, const absl::Status&) { recorder.Record(serving); },
      registry);

  EXPECT_TRUE(monitor.ProbeOnce().ok());
  EXPECT_TRUE(monitor.ProbeOnce().ok());
  redis_up = false;
  absl::Status down = monitor.ProbeOnce();
  EXPECT_EQ(down.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(down.message(), "redis: redis down");
  EXPECT_FALSE(monitor.ProbeOnce().ok());
  redis_up = true;
  EXPECT_TRUE(monitor.ProbeOnce().ok());
  EXPECT_EQ(recorder.WaitFor(3), (std::vector<bool>{true, false, true}));
}

TEST(DependencyMonitor, AFailureKeepsItsReasonUnderTheDependencysName) {
  prometheus::Registry registry;
  absl::Status reported;
  DependencyMonitor monitor(
      {{"redis",
        [] {
          return MakeError(absl::StatusCode::kFailedPrecondition, "REDIS_EVICTS_PROJECTIONS",
                           "maxmemory-policy allkeys-lru", {{"policy", "allkeys-lru"}});
        }}},
      absl::Hours(1), [&](bool, const absl::Status& cause) { reported = cause; }, registry);
  const absl::Status status = monitor.ProbeOnce();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(status.message(), "redis: maxmemory-policy allkeys-lru");
  EXPECT_EQ(ErrorReason(status), "REDIS_EVICTS_PROJECTIONS");
  EXPECT_EQ(ErrorMetadata(status, "policy"), "allkeys-lru");
  EXPECT_EQ(ErrorReason(reported), "REDIS_EVICTS_PROJECTIONS");
}

TEST(DependencyMonitor, BackgroundThreadProbesAndStopsPromptly) {
  prometheus::Registry registry;
  Recorder recorder;
  DependencyMonitor monitor(
      {{"mysql", [] { return absl::UnavailableError("down"); }}}, absl::Hours(1),
      [&](bool serving, const absl::Status&) { recorder.Record(serving); }, registry);
  monitor.Start();
  EXPECT_EQ(recorder.WaitFor(1), (std::vector<bool>{false}));
  auto start = std::chrono::steady_clock::now();
  monitor.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

}  // namespace
}  // namespace qunzu
