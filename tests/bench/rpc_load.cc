#include "tests/bench/rpc_load.h"

#include <grpcpp/client_context.h>
#include <grpcpp/completion_queue.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <thread>

#include "qunzu/testing/v1/testing.pb.h"

namespace qunzu::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kWarmupCalls = 300;

double PerKiloCall(double cpu_seconds, const LoadResult& result) {
  return result.calls == 0 ? 0 : cpu_seconds * 1e6 / static_cast<double>(result.calls);
}

// Sleeps until `when` on the monotonic clock (steady_clock's), to the
// timer's resolution.
void SleepUntil(Clock::time_point when) {
  const auto since_epoch = when.time_since_epoch();
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  timespec at{};
  at.tv_sec = static_cast<time_t>(seconds.count());
  at.tv_nsec = static_cast<long>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(since_epoch - seconds).count());
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, nullptr) == EINTR) {
  }
}

double MicrosSince(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::micro>(to - from).count();
}

// One call in flight; its address is the completion-queue tag.
struct Call {
  grpc::ClientContext context;
  grpc::ByteBuffer response;
  grpc::Status status;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> reader;
  // When it started (closed loop) or was due (open loop).
  Clock::time_point since;
  bool measured = true;
};

class Driver {
 public:
  explicit Driver(const RpcTarget& target) : target_(target), stub_(target.channel) {}

  // Starts call number n; it completes on cq with the Call as its tag.
  void Start(uint64_t n, Clock::time_point since, bool measured) {
    auto* call = new Call;
    for (const auto& [key, value] : target_.metadata) call->context.AddMetadata(key, value);
    // Every call ends, so a run ends even against a server that hangs (the
    // call then counts as an error).
    call->context.set_deadline(std::chrono::system_clock::now() +
                               absl::ToChronoMilliseconds(target_.deadline));
    call->since = since;
    call->measured = measured;
    const std::string bytes = target_.request(n);
    grpc::Slice slice(bytes);
    grpc::ByteBuffer request(&slice, 1);
    call->reader = stub_.PrepareUnaryCall(&call->context, target_.method, request, &cq_);
    call->reader->StartCall();
    call->reader->Finish(&call->response, &call->status, call);
    ++outstanding_;
  }

  // Takes one completion, waiting until `deadline` at most; false on
  // timeout. A measured call's latency (to now) goes into latencies; a
  // failed call counts in errors.
  bool Complete(Clock::time_point deadline, std::vector<double>& latencies, long& errors) {
    void* tag = nullptr;
    bool ok = false;
    // gRPC takes system-clock deadlines.
    const auto wait = std::max(Clock::duration::zero(), deadline - Clock::now());
    const auto system_deadline =
        std::chrono::system_clock::now() +
        std::chrono::duration_cast<std::chrono::system_clock::duration>(wait);
    if (cq_.AsyncNext(&tag, &ok, system_deadline) != grpc::CompletionQueue::GOT_EVENT) {
      return false;
    }
    std::unique_ptr<Call> call(static_cast<Call*>(tag));
    --outstanding_;
    if (call->measured) latencies.push_back(MicrosSince(call->since, Clock::now()));
    if (!ok || !call->status.ok()) ++errors;
    return true;
  }

  // Takes the next completion, however long it takes (every call has a
  // deadline). Thread-safe against Start on another thread.
  void CompleteNext(std::vector<double>& latencies, long& errors) {
    void* tag = nullptr;
    bool ok = false;
    if (!cq_.Next(&tag, &ok)) return;
    std::unique_ptr<Call> call(static_cast<Call*>(tag));
    --outstanding_;
    if (call->measured) latencies.push_back(MicrosSince(call->since, Clock::now()));
    if (!ok || !call->status.ok()) ++errors;
  }

  // Completes everything still in flight.
  void Drain(std::vector<double>& latencies, long& errors) {
    while (outstanding_ > 0) {
      Complete(Clock::now() + absl::ToChronoMilliseconds(target_.deadline), latencies, errors);
    }
  }

  ~Driver() {
    cq_.Shutdown();
    void* tag = nullptr;
    bool ok = false;
    while (cq_.Next(&tag, &ok)) delete static_cast<Call*>(tag);
  }

 private:
  const RpcTarget& target_;
  grpc::GenericStub stub_;
  grpc::CompletionQueue cq_;
  std::atomic<long> outstanding_{0};
};

// Warms the channel and the server (connections, caches) with unmeasured
// calls, a few at a time; stops at the first failure (the run will show it).
void Warm(Driver& driver, uint64_t& next) {
  std::vector<double> ignored;
  long failed = 0;
  for (int i = 0; i < kWarmupCalls && failed == 0;) {
    const int batch = std::min(8, kWarmupCalls - i);
    for (int k = 0; k < batch; ++k) driver.Start(next++, Clock::now(), false);
    driver.Drain(ignored, failed);
    i += batch;
  }
}

}  // namespace

LoadResult DriveSaturated(const std::string& name, const RpcTarget& target, int threads,
                          int in_flight_per_thread, absl::Duration duration) {
  std::atomic<uint64_t> next{0};
  {
    Driver warm(target);
    uint64_t n = 0;
    Warm(warm, n);
    next = n;
  }
  std::vector<std::vector<double>> latencies(threads);
  std::vector<long> errors(threads, 0);
  std::vector<double> cpu(threads, 0);
  std::vector<std::thread> workers;
  workers.reserve(threads);
  const double process_cpu_before = CpuSeconds(RUSAGE_SELF);
  const auto start = Clock::now();
  const auto end = start + absl::ToChronoNanoseconds(duration);
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      const double cpu_before = CpuSeconds(RUSAGE_THREAD);
      Driver driver(target);
      latencies[t].reserve(1 << 20);
      for (int i = 0; i < in_flight_per_thread; ++i) {
        driver.Start(next.fetch_add(1, std::memory_order_relaxed), Clock::now(), true);
      }
      while (driver.Complete(end + absl::ToChronoMilliseconds(target.deadline), latencies[t],
                             errors[t])) {
        const auto now = Clock::now();
        if (now >= end) break;
        driver.Start(next.fetch_add(1, std::memory_order_relaxed), now, true);
      }
      // Calls started before the end count; none is started after it.
      driver.Drain(latencies[t], errors[t]);
      cpu[t] = CpuSeconds(RUSAGE_THREAD) - cpu_before;
    });
  }
  for (auto& worker : workers) worker.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  long total_errors = 0;
  double total_cpu = 0;
  for (int t = 0; t < threads; ++t) {
    total_errors += errors[t];
    total_cpu += cpu[t];
  }
  LoadResult result = SummariseLoad(name, latencies, total_errors, elapsed, total_cpu);
  result.process_cpu_ms_per_kcall =
      PerKiloCall(CpuSeconds(RUSAGE_SELF) - process_cpu_before, result);
  return result;
}

LoadResult DriveAtRate(const std::string& name, const RpcTarget& target, double rate,
                       absl::Duration duration) {
  const auto calls = static_cast<uint64_t>(std::llround(rate * absl::ToDoubleSeconds(duration)));
  std::vector<std::vector<double>> latencies(1);
  long errors = 0;
  Driver driver(target);
  uint64_t n = 0;
  Warm(driver, n);
  latencies[0].reserve(calls);
  double starter_cpu = 0;
  double completer_cpu = 0;
  const double process_cpu_before = CpuSeconds(RUSAGE_SELF);
  const auto start = Clock::now();
  auto due = [&](uint64_t i) {
    return start + std::chrono::duration_cast<Clock::duration>(
                       std::chrono::duration<double>(static_cast<double>(i) / rate));
  };
  // Every call completes (at the latest at its deadline, as an error).
  std::thread completer([&] {
    pthread_setname_np(pthread_self(), "load-completer");
    const double cpu_before = CpuSeconds(RUSAGE_THREAD);
    for (uint64_t done = 0; done < calls; ++done) driver.CompleteNext(latencies[0], errors);
    completer_cpu = CpuSeconds(RUSAGE_THREAD) - cpu_before;
  });
  std::thread starter([&] {
    // Woken at the due time, not up to 50 µs after it (the default slack).
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    pthread_setname_np(pthread_self(), "load-starter");
    const double cpu_before = CpuSeconds(RUSAGE_THREAD);
    for (uint64_t i = 0; i < calls;) {
      // Start every call that is due (all of them when late), then sleep
      // until the next one is.
      const auto now = Clock::now();
      while (i < calls && due(i) <= now) {
        driver.Start(n++, due(i), true);
        ++i;
      }
      if (i < calls) SleepUntil(due(i));
    }
    starter_cpu = CpuSeconds(RUSAGE_THREAD) - cpu_before;
  });
  starter.join();
  completer.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  LoadResult result = SummariseLoad(name, latencies, errors, elapsed, starter_cpu + completer_cpu);
  result.process_cpu_ms_per_kcall =
      PerKiloCall(CpuSeconds(RUSAGE_SELF) - process_cpu_before, result);
  return result;
}

WakeupStalls ProbeWakeups(absl::Duration duration) {
  WakeupStalls stalls;
  // Its own thread, for the timer slack.
  std::thread prober([&] {
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    constexpr auto kPeriod = std::chrono::microseconds(100);
    const auto end = Clock::now() + absl::ToChronoNanoseconds(duration);
    for (auto now = Clock::now(); now < end;) {
      const auto due = now + kPeriod;
      SleepUntil(due);
      now = Clock::now();
      const double late_ms = std::chrono::duration<double, std::milli>(now - due).count();
      ++stalls.wakeups;
      if (late_ms > 0.5) ++stalls.late_half_ms;
      if (late_ms > 2) {
        ++stalls.late_2ms;
        stalls.beyond_2ms_ms += late_ms - 2;
      }
      stalls.max_late_ms = std::max(stalls.max_late_ms, late_ms);
    }
  });
  prober.join();
  return stalls;
}

std::string FormatWakeupStalls(const WakeupStalls& stalls) {
  char line[200];
  std::snprintf(line, sizeof(line),
                "%ld wake-ups, %ld > 0.5 ms late, %ld > 2 ms, longest %.2f ms, %.1f ms beyond 2 ms",
                stalls.wakeups, stalls.late_half_ms, stalls.late_2ms, stalls.max_late_ms,
                stalls.beyond_2ms_ms);
  return line;
}

RpcTarget EchoTarget(int port) {
  RpcTarget target;
  target.channel =
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials());
  target.method = "/qunzu.testing.v1.TestService/PlatformEcho";
  target.metadata = {{"authorization", std::string("Bearer ") + kBenchToken}};
  testing::v1::EchoRequest request;
  request.set_text("你好, qunzu");
  target.request = [bytes = request.SerializeAsString()](uint64_t) { return bytes; };
  return target;
}

}  // namespace qunzu::bench
