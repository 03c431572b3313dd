// Request ids (DESIGN.md section 4, "Idempotency"): every mutating request
// carries a request_id; a retry with the same id returns the first result,
// a reuse with different content is ALREADY_EXISTS (REQUEST_ID_REUSED).
//
// The key (principal, method, request_id) is claimed inside the caller's own
// transaction by inserting a placeholder row first. A concurrent first use of
// the same key blocks on that row's unique key until the first transaction
// ends: after a commit it replays the stored response, after a rollback it
// proceeds itself. So one key's body commits at most once. A request that
// fails (its transaction rolls back) leaves no trace and may be retried.
//
// Needs the "common" migrations (CommonMigrations() in migrations.h).
#ifndef QUNZU_COMMON_IDEMPOTENCY_H_
#define QUNZU_COMMON_IDEMPOTENCY_H_

#include <google/protobuf/message_lite.h>

#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/mysql.h"
#include "common/status.h"

namespace qunzu {

// Whose request, to which RPC, with which id.
struct IdempotencyKey {
  // The authenticated caller, 1..255 bytes.
  std::string principal;
  // The full RPC name, e.g. "/qunzu.groups.v1.GroupService/JoinGroup",
  // 1..255 bytes.
  std::string method;
  // From the request: 1..128 printable ASCII characters.
  std::string request_id;
};

// What Begin found.
struct IdempotencyBegin {
  // First use of the key: run the request, then Finish in this transaction.
  bool fresh = true;
  // When !fresh: the response bytes stored by the first use.
  std::string response;
};

// INVALID_ARGUMENT (InvalidField "request_id") unless request_id is 1..128
// printable ASCII characters (space through '~').
absl::Status ValidateRequestId(const std::string& request_id);

// A request fingerprint for Begin: SHA-256 (32 bytes) over the message's
// type name and its deterministic serialization, so equal messages (map
// order aside) give equal fingerprints.
std::string FingerprintMessage(const google::protobuf::MessageLite& message);

// Claims and completes request ids in the idempotency_keys table.
class IdempotencyStore {
 public:
  // Claims `key` in conn's open transaction. Fresh when the key is new (or
  // its earlier use rolled back); a replay with the stored response when an
  // earlier use committed with the same fingerprint (1..64 bytes). Blocks
  // while a concurrent use of the key is uncommitted. ALREADY_EXISTS
  // (REQUEST_ID_REUSED) when the earlier use had another fingerprint;
  // INVALID_ARGUMENT naming a bad field; FAILED_PRECONDITION
  // (IDEMPOTENCY_NO_TRANSACTION) outside a transaction; ABORTED
  // (MYSQL_CONFLICT) when the wait timed out or deadlocked, which
  // WithTransaction retries.
  absl::StatusOr<IdempotencyBegin> Begin(sql::Connection& conn, const IdempotencyKey& key,
                                         const std::string& fingerprint) const;

  // Stores the response of a fresh key, in the transaction that began it.
  // FAILED_PRECONDITION (IDEMPOTENCY_NOT_BEGUN) when the key was not begun
  // fresh in this transaction or is already finished.
  absl::Status Finish(sql::Connection& conn, const IdempotencyKey& key,
                      const std::string& response) const;
};

// Runs `body` at most once per key, in conn's open transaction: on a fresh
// key runs it and stores its response; on a replay parses and returns the
// stored response without running it. A non-OK status from body is returned
// as is (store nothing; the caller's transaction should roll back).
template <typename Response>
absl::StatusOr<Response> RunIdempotent(sql::Connection& conn, const IdempotencyKey& key,
                                       const google::protobuf::MessageLite& request,
                                       absl::FunctionRef<absl::StatusOr<Response>()> body) {
  IdempotencyStore store;
  ASSIGN_OR_RETURN(IdempotencyBegin begin, store.Begin(conn, key, FingerprintMessage(request)));
  Response response;
  if (!begin.fresh) {
    if (!response.ParseFromString(begin.response)) {
      return MakeError(absl::StatusCode::kInternal, "IDEMPOTENCY_CORRUPT",
                       "the stored response of request_id " + key.request_id +
                           " does not parse as " + response.GetTypeName());
    }
    return response;
  }
  ASSIGN_OR_RETURN(response, body());
  RETURN_IF_ERROR(store.Finish(conn, key, response.SerializeAsString()));
  return response;
}

}  // namespace qunzu

#endif  // QUNZU_COMMON_IDEMPOTENCY_H_
