#include "services/qunzuctl/audit_checks.h"

#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "services/audit/log_verifier.h"
#include "services/audit/merkle.h"
#include "services/audit/signer.h"
#include "services/qunzuctl/request_builder.h"

namespace qunzu::ctl {
namespace {

constexpr char kAuditService[] = "qunzu.audit.v1.AuditService.";

absl::Status Failed(const std::string& message) {
  return MakeError(absl::StatusCode::kFailedPrecondition, "VERIFICATION_FAILED", message);
}

}  // namespace

absl::StatusOr<std::string> ReadPublicKeyPem(const std::string& path) {
  ASSIGN_OR_RETURN(std::string pem, ReadFileForFlag("--public-key", path));
  absl::StatusOr<std::string> key = audit::RawPublicKeyFromPem(pem);
  if (!key.ok()) {
    return InvalidField("--public-key",
                        absl::StrCat(path, " is not an Ed25519 PEM key: ", key.status().message()));
  }
  return key;
}

absl::Status VerifyCheckpoint(const audit::v1::Checkpoint& checkpoint, const std::string& raw_key) {
  if (checkpoint.key_id() != audit::KeyIdOf(raw_key)) {
    return Failed(absl::StrCat("checkpoint at size ", checkpoint.tree_size(), " was signed by key ",
                               checkpoint.key_id(), ", not by the key given (",
                               audit::KeyIdOf(raw_key), ")"));
  }
  if (!audit::VerifySignature(raw_key, audit::CheckpointSignedMessage(checkpoint),
                              checkpoint.signature())) {
    return Failed(absl::StrCat("the signature of the checkpoint at size ", checkpoint.tree_size(),
                               " does not verify"));
  }
  return absl::OkStatus();
}

absl::StatusOr<audit::v1::GetCheckpointResponse> FetchCheckpoint(RpcCaller& rpc,
                                                                 uint64_t tree_size) {
  audit::v1::GetCheckpointRequest request;
  request.set_tree_size(tree_size);
  audit::v1::GetCheckpointResponse response;
  RETURN_IF_ERROR(
      CallMethod(rpc, absl::StrCat(kAuditService, "GetCheckpoint"), request, &response));
  return response;
}

absl::Status VerifyConsistencyBetween(RpcCaller& rpc, const audit::v1::Checkpoint& older,
                                      const audit::v1::Checkpoint& newer) {
  audit::v1::GetConsistencyProofRequest request;
  request.set_first_tree_size(older.tree_size());
  request.set_second_tree_size(newer.tree_size());
  audit::v1::GetConsistencyProofResponse response;
  RETURN_IF_ERROR(
      CallMethod(rpc, absl::StrCat(kAuditService, "GetConsistencyProof"), request, &response));
  return VerifyConsistencyProof(older, newer, response.hashes());
}

absl::Status VerifyConsistencyProof(const audit::v1::Checkpoint& older,
                                    const audit::v1::Checkpoint& newer,
                                    const google::protobuf::RepeatedPtrField<std::string>& hashes) {
  absl::StatusOr<audit::Hash> root1 = audit::HashFromBytes(older.root_hash());
  absl::StatusOr<audit::Hash> root2 = audit::HashFromBytes(newer.root_hash());
  if (!root1.ok() || !root2.ok()) return Failed("a checkpoint root is not 32 bytes");
  std::vector<audit::Hash> proof;
  for (const std::string& bytes : hashes) {
    absl::StatusOr<audit::Hash> hash = audit::HashFromBytes(bytes);
    if (!hash.ok()) return Failed("a consistency proof hash is not 32 bytes");
    proof.push_back(*hash);
  }
  if (!audit::VerifyConsistency(older.tree_size(), newer.tree_size(), *root1, *root2, proof).ok()) {
    return Failed(absl::StrCat("the consistency proof from size ", older.tree_size(), " to ",
                               newer.tree_size(), " does not verify"));
  }
  return absl::OkStatus();
}

absl::StatusOr<audit::v1::Checkpoint> PreviousCheckpoint(RpcCaller& rpc, uint64_t tree_size) {
  audit::v1::ListCheckpointsRequest request;
  request.mutable_page()->set_page_size(1000);
  std::optional<audit::v1::Checkpoint> previous;
  for (;;) {
    audit::v1::ListCheckpointsResponse response;
    RETURN_IF_ERROR(
        CallMethod(rpc, absl::StrCat(kAuditService, "ListCheckpoints"), request, &response));
    for (const audit::v1::Checkpoint& checkpoint : response.checkpoints()) {
      if (checkpoint.tree_size() < tree_size &&
          (!previous || checkpoint.tree_size() > previous->tree_size())) {
        previous = checkpoint;
      }
    }
    if (response.page().next_page_token().empty()) break;
    request.mutable_page()->set_page_token(response.page().next_page_token());
  }
  if (!previous) {
    return MakeError(absl::StatusCode::kNotFound, "CHECKPOINT_NOT_FOUND",
                     absl::StrCat("no checkpoint below size ", tree_size));
  }
  return *previous;
}

}  // namespace qunzu::ctl
