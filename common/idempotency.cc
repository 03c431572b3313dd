#include "common/idempotency.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <openssl/evp.h>

#include <optional>

#include "absl/strings/str_cat.h"

namespace qunzu {
namespace {

absl::Status ValidateKey(const IdempotencyKey& key, const std::string& fingerprint) {
  RETURN_IF_ERROR(ValidateRequestId(key.request_id));
  if (key.principal.empty() || key.principal.size() > 255) {
    return InvalidField("principal", "must be 1..255 bytes");
  }
  if (key.method.empty() || key.method.size() > 255) {
    return InvalidField("method", "must be 1..255 bytes");
  }
  if (fingerprint.empty() || fingerprint.size() > 64) {
    return InvalidField("fingerprint", "must be 1..64 bytes");
  }
  return absl::OkStatus();
}

std::vector<SqlValue> KeyParams(const IdempotencyKey& key) {
  return {key.principal, key.method, key.request_id};
}

// The row of a key that is already taken.
struct Claimed {
  std::string fingerprint;
  std::optional<std::string> response;
};

absl::StatusOr<std::optional<Claimed>> ReadClaimed(sql::Connection& conn,
                                                   const IdempotencyKey& key) {
  std::optional<Claimed> claimed;
  RETURN_IF_ERROR(Query(conn,
                        "SELECT fingerprint, response FROM idempotency_keys "
                        "WHERE principal = ? AND method = ? AND request_id = ? LOCK IN SHARE MODE",
                        KeyParams(key), [&](const sql::ResultSet& row) {
                          claimed = Claimed{row.getString(1), std::nullopt};
                          if (!row.isNull(2)) claimed->response = row.getString(2);
                          return absl::OkStatus();
                        }));
  return claimed;
}

// The key was taken by a committed use: replay it or refuse.
absl::StatusOr<IdempotencyBegin> Replay(sql::Connection& conn, const IdempotencyKey& key,
                                        const std::string& fingerprint) {
  ASSIGN_OR_RETURN(std::optional<Claimed> claimed, ReadClaimed(conn, key));
  if (!claimed.has_value()) {
    // Removed between the duplicate-key error and the read: try again.
    return MakeError(absl::StatusCode::kAborted, kMysqlConflict,
                     "request_id " + key.request_id + " changed while it was being claimed");
  }
  if (claimed->fingerprint != fingerprint) {
    return MakeError(absl::StatusCode::kAlreadyExists, "REQUEST_ID_REUSED",
                     "request_id " + key.request_id + " was already used for a different request",
                     {{"request_id", key.request_id}});
  }
  if (!claimed->response.has_value()) {
    return MakeError(absl::StatusCode::kInternal, "IDEMPOTENCY_INCOMPLETE",
                     "request_id " + key.request_id + " was claimed without a stored response");
  }
  return IdempotencyBegin{false, *std::move(claimed->response)};
}

}  // namespace

absl::Status ValidateRequestId(const std::string& request_id) {
  if (request_id.empty() || request_id.size() > 128) {
    return InvalidField("request_id", "must be 1..128 characters");
  }
  for (char c : request_id) {
    if (c < 0x20 || c > 0x7e) return InvalidField("request_id", "must be printable ASCII");
  }
  return absl::OkStatus();
}

std::string FingerprintMessage(const google::protobuf::MessageLite& message) {
  std::string bytes = message.GetTypeName();
  bytes.push_back('\0');
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&coded);
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(digest), length);
}

absl::StatusOr<IdempotencyBegin> IdempotencyStore::Begin(sql::Connection& conn,
                                                         const IdempotencyKey& key,
                                                         const std::string& fingerprint) const {
  RETURN_IF_ERROR(ValidateKey(key, fingerprint));
  std::vector<SqlValue> params = KeyParams(key);
  params.emplace_back(fingerprint);
  // A concurrent uncommitted claim makes this INSERT wait for its outcome.
  // The @@in_transaction guard keeps a claim from committing on its own.
  absl::StatusOr<int64_t> inserted = Execute(
      conn,
      "INSERT INTO idempotency_keys (principal, method, request_id, fingerprint, created_at) "
      "SELECT ?, ?, ?, ?, UTC_TIMESTAMP(6) FROM DUAL WHERE @@in_transaction = 1",
      params);
  if (inserted.ok() && *inserted == 1) return IdempotencyBegin{};
  if (inserted.ok()) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "IDEMPOTENCY_NO_TRANSACTION",
                     "request ids must be claimed inside the request's transaction");
  }
  if (ErrorReason(inserted.status()) != kMysqlDuplicate) return inserted.status();
  return Replay(conn, key, fingerprint);
}

absl::Status IdempotencyStore::Finish(sql::Connection& conn, const IdempotencyKey& key,
                                      const std::string& response) const {
  RETURN_IF_ERROR(ValidateRequestId(key.request_id));
  std::vector<SqlValue> params = {response};
  for (SqlValue& value : KeyParams(key)) params.push_back(std::move(value));
  ASSIGN_OR_RETURN(int64_t updated,
                   Execute(conn,
                           "UPDATE idempotency_keys SET response = ?, "
                           "completed_at = UTC_TIMESTAMP(6) WHERE principal = ? AND method = ? "
                           "AND request_id = ? AND response IS NULL",
                           params));
  if (updated != 1) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "IDEMPOTENCY_NOT_BEGUN",
                     "request_id " + key.request_id + " was not begun fresh or is finished");
  }
  return absl::OkStatus();
}

}  // namespace qunzu
