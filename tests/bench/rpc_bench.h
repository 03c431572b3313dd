// What every benchmark reports (LoadResult, its table rows), the closed-loop
// harness for in-process calls (RunLoad: a transaction, an Append), and the
// empty RPC every server-side benchmark compares with. RPCs are driven by
// the async load generator in rpc_load.h.
#ifndef QUNZU_TESTS_BENCH_RPC_BENCH_H_
#define QUNZU_TESTS_BENCH_RPC_BENCH_H_

#include <grpcpp/impl/service_type.h>
#include <grpcpp/server_context.h>
#include <sys/resource.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "qunzu/testing/v1/testing.pb.h"

namespace qunzu::bench {

struct LoadResult {
  std::string name;
  double qps = 0;
  double p50_us = 0;
  double p99_us = 0;
  double p999_us = 0;
  // CPU milliseconds (user + system) per 1,000 calls of the client: this
  // process for RunLoad, the generator's own threads for
  // DriveSaturated/DriveAtRate (rpc_load.h).
  double client_cpu_ms_per_kcall = 0;
  // DriveSaturated/DriveAtRate: of the whole process (the generator, and
  // the server when it runs in the same process).
  double process_cpu_ms_per_kcall = 0;
  long calls = 0;
  long errors = 0;
};

// Runs `call` from `threads` threads back to back for `duration` (after a
// short warm-up); `call` returns false for a failed call.
LoadResult RunLoad(const std::string& name, int threads, absl::Duration duration,
                   const std::function<bool()>& call);

// The bearer token the benchmarks' platform caller presents.
inline constexpr char kBenchToken[] = "bench-platform-token";

// The empty body of the benchmarks' echoes as a Qunzu handler has it: the
// caller looked up (a denied caller's error), the text and the caller's
// principal answered.
absl::Status EchoBody(const grpc::ServerContextBase* context,
                      const testing::v1::EchoRequest& request, testing::v1::EchoResponse* response);

// testing.v1.TestService/PlatformEcho as a Qunzu handler does it (caller
// lookup, status mapping) around an empty body: the baseline of an RPC on
// our server stack.
std::unique_ptr<grpc::Service> MakeQunzuEcho();
// The same as a callback method (gRPC's callback API, as moderation's
// methods are), answered on gRPC's thread: the floor of a callback RPC on
// our server stack.
std::unique_ptr<grpc::Service> MakeQunzuCallbackEcho();

// "name  qps  p50  p99  p99.9  cpu" as a Markdown table row.
std::string FormatRow(const LoadResult& r);

// The header and a row of a table of DriveSaturated/DriveAtRate results:
// FormatRow's columns with the generator's and the process's CPU.
inline constexpr char kRpcTableHeader[] =
    "| run | QPS | p50 µs | p99 µs | p99.9 µs | load generator CPU ms per 1k calls | process CPU "
    "ms per 1k calls (generator and server) | errors |\n|---|---|---|---|---|---|---|---|\n";
std::string FormatRpcRow(const LoadResult& r);

// CPU seconds (user + system) of RUSAGE_SELF (the process) or RUSAGE_THREAD.
double CpuSeconds(int who = RUSAGE_SELF);

// The result of a run from every latency (µs) its threads kept, in any order.
LoadResult SummariseLoad(const std::string& name, std::vector<std::vector<double>>& latencies,
                         long errors, double elapsed_seconds, double cpu_seconds);

}  // namespace qunzu::bench

#endif  // QUNZU_TESTS_BENCH_RPC_BENCH_H_
