// `qunzu-bench --target=...`: the load generator pointed at a running
// service (e.g. the one `make run` starts) for any unary RPC of Qunzu's
// protos, the request given as a text proto:
//
//   qunzu-bench --target=127.0.0.1:50054 --token=$TOKEN
//     --method=/qunzu.moderation.v1.ModerationService/ScreenMessage
//     --request='actor_account_id: 1 group_id: 2 text: "你好" request_id: "r"'
//     --vary=request_id --rate=2000 --duration=10s
//
// --rate=N drives N calls/s open loop; without it, --in-flight=N calls
// (default 8) are kept outstanding (saturation). --vary=FIELD (a string
// field, repeatable) appends "-<call number>" to that field of every
// request, for RPCs that are idempotent by request id.
#ifndef QUNZU_TESTS_BENCH_LOAD_CLI_H_
#define QUNZU_TESTS_BENCH_LOAD_CLI_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/bench/rpc_bench.h"

namespace qunzu::bench {

// Whether the arguments ask for the command line driver (a --target).
bool WantsLoadCli(const std::vector<std::string>& args);

// Parses the flags above and drives the RPC. INVALID_ARGUMENT for an
// unknown flag, a method not in Qunzu's protos, a request that does not
// parse as its input type, a --vary that is not a string field of it, or a
// bad number or duration.
absl::StatusOr<LoadResult> RunLoadCli(const std::vector<std::string>& args);

}  // namespace qunzu::bench

#endif  // QUNZU_TESTS_BENCH_LOAD_CLI_H_
