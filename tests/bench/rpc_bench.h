// Load generation for `make bench`: client threads issuing unary calls for
// a fixed time, closed loop (saturation) or on a fixed schedule (a target
// rate), with latency percentiles and the process's CPU; and the empty RPC
// every server-side benchmark compares with.
#ifndef QUNZU_TESTS_BENCH_RPC_BENCH_H_
#define QUNZU_TESTS_BENCH_RPC_BENCH_H_

#include <grpcpp/impl/service_type.h>

#include <functional>
#include <memory>
#include <string>

#include "absl/time/time.h"

namespace qunzu::bench {

struct LoadResult {
  std::string name;
  double qps = 0;
  double p50_us = 0;
  double p99_us = 0;
  double p999_us = 0;
  // CPU milliseconds (user + system) of this process per 1,000 calls.
  double client_cpu_ms_per_kcall = 0;
  long calls = 0;
  long errors = 0;
};

// Runs `call` from `threads` threads back to back for `duration` (after a
// short warm-up); `call` returns false for a failed call.
LoadResult RunLoad(const std::string& name, int threads, absl::Duration duration,
                   const std::function<bool()>& call);

// Issues `rate` calls per second in total for `duration` from `threads`
// threads, each on its own fixed schedule (open loop). A call's latency is
// measured from when it was due, so a stall counts against every call it
// delays (no coordinated omission); qps shows whether the rate was held.
LoadResult RunRate(const std::string& name, int threads, double rate, absl::Duration duration,
                   const std::function<bool()>& call);

// The bearer token the benchmarks' platform caller presents.
inline constexpr char kBenchToken[] = "bench-platform-token";

// testing.v1.TestService/PlatformEcho as a Qunzu handler does it (caller
// lookup, status mapping) around an empty body: the baseline of an RPC on
// our server stack.
std::unique_ptr<grpc::Service> MakeQunzuEcho();

// One PlatformEcho call to 127.0.0.1:port with kBenchToken; thread-safe.
std::function<bool()> EchoCall(int port);

// "name  qps  p50  p99  p99.9  cpu" as a Markdown table row.
std::string FormatRow(const LoadResult& r);

}  // namespace qunzu::bench

#endif  // QUNZU_TESTS_BENCH_RPC_BENCH_H_
