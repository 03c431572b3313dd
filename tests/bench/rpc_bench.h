// Load generation for `make bench`: closed-loop client threads issuing unary
// calls for a fixed time, with latency percentiles and the client's CPU.
#ifndef QUNZU_TESTS_BENCH_RPC_BENCH_H_
#define QUNZU_TESTS_BENCH_RPC_BENCH_H_

#include <functional>
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

// "name  qps  p50  p99  p99.9  cpu" as a Markdown table row.
std::string FormatRow(const LoadResult& r);

}  // namespace qunzu::bench

#endif  // QUNZU_TESTS_BENCH_RPC_BENCH_H_
