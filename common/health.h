// Keeps a service's grpc.health.v1 state true to its dependencies: probes
// MySQL and Redis on an interval and reports NOT_SERVING while any of them
// cannot be reached, SERVING again once all answer.
#ifndef QUNZU_COMMON_HEALTH_H_
#define QUNZU_COMMON_HEALTH_H_

#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace qunzu {

class DependencyMonitor {
 public:
  struct Probe {
    std::string name;  // "mysql", "redis": a bounded label value
    std::function<absl::Status()> check;
  };

  // on_change is called with the new state whenever it changes, and once
  // with the first result, together with the first failing probe's status
  // (OK when serving); it runs on the thread that probed.
  DependencyMonitor(std::vector<Probe> probes, absl::Duration interval,
                    std::function<void(bool serving, const absl::Status& cause)> on_change,
                    prometheus::Registry& registry);
  ~DependencyMonitor();

  DependencyMonitor(const DependencyMonitor&) = delete;
  DependencyMonitor& operator=(const DependencyMonitor&) = delete;

  // Probes every dependency once, reports the state, and returns the first
  // failure (or OK).
  absl::Status ProbeOnce();

  // Probes every interval on a background thread until Stop().
  void Start();
  // Stops the thread promptly, even mid-interval.
  void Stop();

 private:
  struct ProbeMetrics {
    prometheus::Gauge* up;
    prometheus::Histogram* seconds;
  };

  std::vector<Probe> probes_;
  std::vector<ProbeMetrics> metrics_;
  absl::Duration interval_;
  std::function<void(bool, const absl::Status&)> on_change_;
  std::mutex probe_mu_;  // serialises ProbeOnce
  int last_state_ = -1;  // -1 unknown, 0 not serving, 1 serving

  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace qunzu

#endif  // QUNZU_COMMON_HEALTH_H_
