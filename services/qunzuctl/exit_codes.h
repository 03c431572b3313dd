// qunzuctl's exit codes, documented in the README: 0 success, 1 a check
// failed (a proof or signature that does not verify, a service not SERVING,
// a compliance check that fails), 2 a usage error, 3 a compliance report
// that could not collect all its evidence, and 64 + the gRPC code when a
// call fails (as grpcurl does), e.g. 80 for UNAUTHENTICATED.
#ifndef QUNZU_SERVICES_QUNZUCTL_EXIT_CODES_H_
#define QUNZU_SERVICES_QUNZUCTL_EXIT_CODES_H_

#include <string>

#include "absl/status/status.h"

namespace qunzu::ctl {

inline constexpr int kExitOk = 0;
inline constexpr int kExitCheckFailed = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitIncomplete = 3;
inline constexpr int kExitRpcBase = 64;

// 0 for OK, otherwise kExitRpcBase + the canonical code (1..16).
int ExitCodeForStatus(const absl::Status& status);

// "UNAUTHENTICATED TOKEN_INVALID: the bearer token is not known": the code,
// the machine-readable reason of the ErrorInfo (when it differs from the
// code's name), its metadata, and the message.
std::string DescribeError(const absl::Status& status);

}  // namespace qunzu::ctl

#endif  // QUNZU_SERVICES_QUNZUCTL_EXIT_CODES_H_
