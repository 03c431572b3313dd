// `qunzu-bench --target=...`: the load generator pointed at a running
// service (e.g. the one `make run` starts) for any unary RPC of Qunzu's
// protos, the request given as a text proto. ScreenMessage as many senders
// in their groups would send it (sender n % 1000 in group n % 100, the
// texts a file of chat messages, one a line):
//
//   qunzu-bench --target=127.0.0.1:50054 --token=$TOKEN
//     --method=/qunzu.moderation.v1.ModerationService/ScreenMessage
//     --request='request_id: "run1" message_id: "run1"'
//     --vary=request_id --vary=message_id
//     --cycle=actor_account_id:7000000001:1000 --cycle=group_id:8000000001:100
//     --lines=text:messages.txt --rate=2000 --duration=30s
//
// --rate=N drives N calls/s open loop; without it, --in-flight=N calls
// (default 8) are kept outstanding (saturation). Each repeatable, applied
// to call number n (counting the warm-up's calls):
//   --cycle=FIELD:FIRST:COUNT  an integer field set to FIRST + n % COUNT;
//   --lines=FIELD:PATH         a string field set to line n % lines of the
//                              file (empty lines skipped);
//   --vary=FIELD               "-<n>" appended to a string field (after
//                              --lines), for RPCs idempotent by request id.
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
// parse as its input type, a --vary or --lines that is not a string field
// of it, a --cycle that is not an integer field (or would overflow it), a
// --lines file that cannot be read or has no lines, or a
// bad number or duration.
absl::StatusOr<LoadResult> RunLoadCli(const std::vector<std::string>& args);

}  // namespace qunzu::bench

#endif  // QUNZU_TESTS_BENCH_LOAD_CLI_H_
