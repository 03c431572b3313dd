// Time as a dependency: services read the time through a Clock so tests can
// move it months ahead (retention, penalties, deadlines) without waiting.
#ifndef QUNZU_COMMON_CLOCK_H_
#define QUNZU_COMMON_CLOCK_H_

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace qunzu {

class Clock {
 public:
  virtual ~Clock() = default;
  // The current time; never goes backwards for SystemClock.
  virtual absl::Time Now() const = 0;
};

// The real time.
class SystemClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
  // A process-wide instance.
  static const Clock& Get() {
    static const SystemClock* clock = new SystemClock();
    return *clock;
  }
};

// A clock that moves only when told; thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start) : now_(start) {}
  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }
  void Set(absl::Time t) {
    absl::MutexLock lock(&mu_);
    now_ = t;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_;
};

}  // namespace qunzu

#endif  // QUNZU_COMMON_CLOCK_H_
