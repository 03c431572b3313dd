// Small helpers the identity logic files share: request checks, time
// conversion, audit events, a pooled connection for reads.
#ifndef QUNZU_SERVICES_IDENTITY_LOGIC_UTIL_H_
#define QUNZU_SERVICES_IDENTITY_LOGIC_UTIL_H_

#include <google/protobuf/timestamp.pb.h>
#include <google/protobuf/util/time_util.h>

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "common/audit_outbox.h"
#include "common/idempotency.h"
#include "common/mysql_pool.h"
#include "common/status.h"
#include "services/identity/identity_logic.h"

namespace qunzu::identity {

inline google::protobuf::Timestamp ToProto(absl::Time t) {
  return google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}

inline absl::Time FromProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixMicros(google::protobuf::util::TimeUtil::TimestampToMicroseconds(t));
}

inline absl::Status Required(uint64_t value, absl::string_view field) {
  return value == 0 ? InvalidField(field, "is required") : absl::OkStatus();
}

inline absl::Status AccountNotFound(uint64_t account_id) {
  return MakeError(absl::StatusCode::kNotFound, "ACCOUNT_NOT_FOUND",
                   absl::StrCat("account ", account_id, " does not exist"));
}

// The platform acts only for the account it names (actor_account_id);
// staff roles read any account. Run after every field is validated.
absl::Status CheckOwnAccount(const Caller& caller, uint64_t account_id, uint64_t actor);
// INVALID_ARGUMENT unless the platform named its actor (call before ownership).
absl::Status RequireActorForPlatform(const Caller& caller, uint64_t actor);

inline IdempotencyKey KeyOf(const RequestContext& ctx, const std::string& request_id) {
  return {ctx.caller.principal, ctx.method, request_id};
}

// Records an audit event about `account_id` (0: none) in conn's transaction.
absl::Status Audit(sql::Connection& conn, const RequestContext& ctx, absl::Time now,
                   absl::string_view action, const std::string& request_id, uint64_t account_id,
                   uint64_t actor_account_id, const std::map<std::string, std::string>& details);

// Runs fn(sql::Connection&) on a pooled connection outside a transaction.
template <typename F>
auto WithConnection(MysqlPool& pool, F&& fn) -> decltype(fn(std::declval<sql::Connection&>())) {
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool.Acquire(absl::Seconds(5)));
  return fn(*lease);
}

}  // namespace qunzu::identity

#endif  // QUNZU_SERVICES_IDENTITY_LOGIC_UTIL_H_
