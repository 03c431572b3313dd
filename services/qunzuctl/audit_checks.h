// Client-side verification of the audit log's signed checkpoints and
// proofs (R13.3), shared by the `audit` commands and the compliance
// report: the signature over the canonical checkpoint message with a pinned
// or fetched Ed25519 key, and RFC 6962 consistency between two checkpoints.
#ifndef QUNZU_SERVICES_QUNZUCTL_AUDIT_CHECKS_H_
#define QUNZU_SERVICES_QUNZUCTL_AUDIT_CHECKS_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "qunzu/audit/v1/audit.pb.h"
#include "services/qunzuctl/rpc.h"

namespace qunzu::ctl {

// The raw Ed25519 key of a PEM file (public or private key).
absl::StatusOr<std::string> ReadPublicKeyPem(const std::string& path);

// OK when the checkpoint's key id names raw_key and its signature verifies;
// FAILED_PRECONDITION saying which part fails otherwise.
absl::Status VerifyCheckpoint(const audit::v1::Checkpoint& checkpoint, const std::string& raw_key);

// A signed checkpoint (0: the latest) and the key the audit API says signed
// it.
absl::StatusOr<audit::v1::GetCheckpointResponse> FetchCheckpoint(RpcCaller& rpc,
                                                                 uint64_t tree_size);

// Verifies an RFC 6962 consistency proof between two checkpoints' roots;
// FAILED_PRECONDITION when it does not verify.
absl::Status VerifyConsistencyProof(const audit::v1::Checkpoint& older,
                                    const audit::v1::Checkpoint& newer,
                                    const google::protobuf::RepeatedPtrField<std::string>& proof);

// Fetches the consistency proof between two checkpoints and verifies it.
absl::Status VerifyConsistencyBetween(RpcCaller& rpc, const audit::v1::Checkpoint& older,
                                      const audit::v1::Checkpoint& newer);

// The checkpoint signed just before tree_size (largest size below it), or
// NOT_FOUND when there is none.
absl::StatusOr<audit::v1::Checkpoint> PreviousCheckpoint(RpcCaller& rpc, uint64_t tree_size);

}  // namespace qunzu::ctl

#endif  // QUNZU_SERVICES_QUNZUCTL_AUDIT_CHECKS_H_
