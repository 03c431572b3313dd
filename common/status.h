// The language of failure across Qunzu: absl::Status carrying a
// machine-readable reason, our RETURN_IF_ERROR / ASSIGN_OR_RETURN (Debian's
// Abseil lacks them), and the single mapping to grpc::Status.
#ifndef QUNZU_COMMON_STATUS_H_
#define QUNZU_COMMON_STATUS_H_

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace grpc {
class Status;
}

namespace qunzu {

// Key under which the serialized qunzu.common.v1.ErrorInfo rides on an
// absl::Status payload.
inline constexpr absl::string_view kErrorInfoTypeUrl =
    "type.googleapis.com/qunzu.common.v1.ErrorInfo";

// Builds a status with a reason (UPPER_SNAKE) and optional metadata. The
// domain defaults to the process's service domain (SetErrorDomain).
absl::Status MakeError(absl::StatusCode code, absl::string_view reason, absl::string_view message,
                       const std::map<std::string, std::string>& metadata = {});

// INVALID_ARGUMENT with reason INVALID_FIELD naming the field.
absl::Status InvalidField(absl::string_view field, absl::string_view problem);

// The reason attached to a status, or the canonical name of its code
// ("NOT_FOUND") when none was attached. "" for OK.
std::string ErrorReason(const absl::Status& status);

// The metadata value attached under key, or "" when absent.
std::string ErrorMetadata(const absl::Status& status, absl::string_view key);

// Sets the domain used by MakeError for this process, e.g. "groups.qunzu".
void SetErrorDomain(absl::string_view domain);

// The one absl::Status -> grpc::Status mapping. The grpc status carries the
// code, the message and a StatusDetails (google.rpc.Status-compatible) with
// an ErrorInfo; a status without a reason gets the code's name as reason.
grpc::Status ToGrpcStatus(const absl::Status& status);

// The inverse, for our own clients: keeps code, message and ErrorInfo.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace qunzu

#define QUNZU_STATUS_CONCAT_INNER_(a, b) a##b
#define QUNZU_STATUS_CONCAT_(a, b) QUNZU_STATUS_CONCAT_INNER_(a, b)

// Returns from the enclosing function when expr yields a non-OK status.
#define RETURN_IF_ERROR(expr)                                                    \
  do {                                                                           \
    if (::absl::Status _qz_status = (expr); !_qz_status.ok()) return _qz_status; \
  } while (false)

// `ASSIGN_OR_RETURN(auto x, Compute());` declares x from an OK StatusOr, or
// returns its status from the enclosing function.
#define ASSIGN_OR_RETURN(lhs, expr) \
  QUNZU_ASSIGN_OR_RETURN_IMPL_(QUNZU_STATUS_CONCAT_(_qz_statusor_, __LINE__), lhs, expr)

// `statusor` is a fresh name and `lhs` a declaration, so neither can be
// parenthesised.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define QUNZU_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr)  \
  auto statusor = (expr);                                  \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()
// NOLINTEND(bugprone-macro-parentheses)

#endif  // QUNZU_COMMON_STATUS_H_
