// The load generator of `make bench`: drives one unary RPC through gRPC's
// asynchronous client API (generic stub, completion queues), closed loop
// with a fixed number of calls in flight (saturation) or open loop on a
// fixed schedule (a target rate), and reports QPS, p50/p99/p99.9 and the CPU
// of its own threads.
//
// It knows nothing about the RPC but its method name and request bytes, so
// any Qunzu RPC can be driven; a failed call (any non-OK status) counts as
// an error and its latency is kept.
#ifndef QUNZU_TESTS_BENCH_RPC_LOAD_H_
#define QUNZU_TESTS_BENCH_RPC_LOAD_H_

#include <grpcpp/channel.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "tests/bench/rpc_bench.h"

namespace qunzu::bench {

// One unary RPC to drive.
struct RpcTarget {
  std::shared_ptr<grpc::Channel> channel;
  // Full method name, e.g. "/qunzu.testing.v1.TestService/PlatformEcho".
  std::string method;
  // Sent with every call (e.g. {"authorization", "Bearer ..."}).
  std::vector<std::pair<std::string, std::string>> metadata;
  // The serialised request of call number n (0, 1, 2, ...). Called from the
  // generator's threads, one call at a time per thread.
  std::function<std::string(uint64_t n)> request;
  // Each call's deadline: a call the server never answers ends then, as an
  // error, so a run always ends.
  absl::Duration deadline = absl::Seconds(10);
};

// Closed loop: `threads` client threads, each with its own completion queue
// keeping `in_flight_per_thread` calls outstanding (a completion starts the
// next call) for `duration`, after a warm-up of a few hundred calls.
// Latency is from a call's start to its completion.
// LoadResult::client_cpu_ms_per_kcall is the generator threads' own CPU.
LoadResult DriveSaturated(const std::string& name, const RpcTarget& target, int threads,
                          int in_flight_per_thread, absl::Duration duration);

// Open loop: issues exactly round(rate * duration) calls, call i due at
// start + i / rate, whether or not earlier calls have completed, and waits
// for every one. Latency is from the due time, so a stall counts against
// every call it delays (no coordinated omission); qps says whether the rate
// was held. One thread starts the calls, sleeping on a high-resolution timer
// until each is due; another takes the completions (a completion queue's
// deadlines are whole milliseconds: one thread waiting for completions until
// the next call was due woke up to 1 ms late, and that was counted against
// the calls). LoadResult::client_cpu_ms_per_kcall is both threads' CPU.
LoadResult DriveAtRate(const std::string& name, const RpcTarget& target, double rate,
                       absl::Duration duration);

// How late a thread sleeping on a high-resolution timer woke up, with the
// process otherwise idle: the machine's own stalls (a virtual machine's
// vCPU descheduled by its host shows as a wake-up milliseconds late), which
// an open-loop run counts against every call due meanwhile.
struct WakeupStalls {
  long wakeups = 0;
  // Wake-ups more than 0.5 ms and 2 ms late.
  long late_half_ms = 0;
  long late_2ms = 0;
  double max_late_ms = 0;
  // The sum of the lateness beyond 2 ms: the time in which calls due at
  // 10,000/s are late by more than 2 ms whatever the server does.
  double beyond_2ms_ms = 0;
};

// Sleeps 100 µs at a time for `duration` and reports how late it woke up.
WakeupStalls ProbeWakeups(absl::Duration duration);

// "… wake-ups, … > 0.5 ms late, … > 2 ms, longest … ms, … ms beyond 2 ms".
std::string FormatWakeupStalls(const WakeupStalls& stalls);

// testing.v1.TestService/PlatformEcho on 127.0.0.1:port with kBenchToken:
// the empty RPC of the server-side benchmarks.
RpcTarget EchoTarget(int port);

}  // namespace qunzu::bench

#endif  // QUNZU_TESTS_BENCH_RPC_LOAD_H_
