#include "common/health.h"

#include <chrono>

namespace qunzu {

DependencyMonitor::DependencyMonitor(std::vector<Probe> probes, absl::Duration interval,
                                     std::function<void(bool, const absl::Status&)> on_change,
                                     prometheus::Registry& registry)
    : probes_(std::move(probes)), interval_(interval), on_change_(std::move(on_change)) {
  auto& up = prometheus::BuildGauge()
                 .Name("qunzu_dependency_up")
                 .Help("1 when the last probe of the dependency succeeded, else 0.")
                 .Register(registry);
  auto& seconds = prometheus::BuildHistogram()
                      .Name("qunzu_dependency_probe_seconds")
                      .Help("Latency of dependency health probes (MySQL, Redis round trips).")
                      .Register(registry);
  for (const Probe& probe : probes_) {
    metrics_.push_back(ProbeMetrics{&up.Add({{"dependency", probe.name}}),
                                    &seconds.Add({{"dependency", probe.name}},
                                                 prometheus::Histogram::BucketBoundaries{
                                                     0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                     0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5})});
  }
}

DependencyMonitor::~DependencyMonitor() { Stop(); }

absl::Status DependencyMonitor::ProbeOnce() {
  std::lock_guard<std::mutex> probe_lock(probe_mu_);
  absl::Status first_failure;
  for (size_t i = 0; i < probes_.size(); ++i) {
    auto start = std::chrono::steady_clock::now();
    absl::Status status = probes_[i].check();
    metrics_[i].seconds->Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    metrics_[i].up->Set(status.ok() ? 1 : 0);
    if (!status.ok() && first_failure.ok()) {
      first_failure =
          absl::Status(status.code(), probes_[i].name + ": " + std::string(status.message()));
      // The reason (REDIS_EVICTS_PROJECTIONS, ...) goes with it.
      status.ForEachPayload([&](absl::string_view type_url, const absl::Cord& payload) {
        first_failure.SetPayload(type_url, payload);
      });
    }
  }
  int state = first_failure.ok() ? 1 : 0;
  if (state != last_state_) {
    last_state_ = state;
    on_change_(state == 1, first_failure);
  }
  return first_failure;
}

void DependencyMonitor::Start() {
  thread_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_) {
      lock.unlock();
      ProbeOnce().IgnoreError();  // the state change is what matters here
      lock.lock();
      wake_.wait_for(lock, absl::ToChronoNanoseconds(interval_), [this] { return stopping_; });
    }
  });
}

void DependencyMonitor::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace qunzu
