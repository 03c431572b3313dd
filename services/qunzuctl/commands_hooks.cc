// The hooks of the commands that need more than one call: rule files, the
// current agreement version, and client-side verification of checkpoints
// and proofs.
#include <google/protobuf/message.h>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "qunzu/audit/v1/audit.pb.h"
#include "qunzu/identity/v1/identity.pb.h"
#include "qunzu/moderation/v1/moderation.pb.h"
#include "services/audit/merkle.h"
#include "services/qunzuctl/audit_checks.h"
#include "services/qunzuctl/commands.h"
#include "services/qunzuctl/field_setter.h"
#include "services/qunzuctl/request_builder.h"
#include "services/qunzuctl/rules_file.h"

namespace qunzu::ctl {
namespace {

template <typename T>
const T& As(const google::protobuf::Message& message) {
  return *google::protobuf::DynamicCastToGenerated<T>(&message);
}

// The key to verify signatures with: pinned with --public-key, else the one
// the audit API reports (said so in the notes).
absl::StatusOr<std::string> SigningKey(HookContext& context, const Extras& extras,
                                       const std::string& api_key) {
  if (auto pinned = extras.find("public-key"); pinned != extras.end()) {
    return ReadPublicKeyPem(pinned->second);
  }
  context.notes << "note: verifying with the key the audit API reports; pin it with "
                   "--public-key=FILE\n";
  return api_key;
}

}  // namespace

absl::Status PrepareRuleSetUpsert(HookContext& context, const Extras& extras,
                                  google::protobuf::Message* message) {
  auto& request =
      *google::protobuf::DynamicCastToGenerated<moderation::v1::UpsertRuleSetRequest>(message);
  if (auto file = extras.find("file"); file != extras.end()) {
    ASSIGN_OR_RETURN(std::string text, ReadFileForFlag("--file", file->second));
    ASSIGN_OR_RETURN(std::vector<moderation::v1::Rule> rules, ParseRulesFile(text, file->second));
    for (auto& rule : rules) *request.add_rules() = std::move(rule);
  } else if (request.rules().empty() && request.remove_rule_ids().empty()) {
    return InvalidField("--file", "missing --file (a file of terms) or --rules JSON");
  }
  if (request.rule_set_id() != 0 || request.name().empty()) return absl::OkStatus();
  moderation::v1::ListRuleSetsRequest list;
  list.mutable_page()->set_page_size(1000);
  for (;;) {
    moderation::v1::ListRuleSetsResponse sets;
    RETURN_IF_ERROR(
        CallMethod(context.rpc, "qunzu.moderation.v1.ModerationService.ListRuleSets", list, &sets));
    for (const moderation::v1::RuleSet& set : sets.rule_sets()) {
      if (set.name() != request.name()) continue;
      request.set_rule_set_id(set.rule_set_id());
      if (request.base_version() == 0) request.set_base_version(set.latest_version());
      context.notes << "rule set \"" << set.name() << "\" exists (id " << set.rule_set_id()
                    << "): making version " << set.latest_version() + 1 << "\n";
      return absl::OkStatus();
    }
    if (sets.page().next_page_token().empty()) return absl::OkStatus();
    list.mutable_page()->set_page_token(sets.page().next_page_token());
  }
}

absl::Status PrepareAgreementAccept(HookContext& context, const Extras& /*extras*/,
                                    google::protobuf::Message* message) {
  auto& request =
      *google::protobuf::DynamicCastToGenerated<identity::v1::AcceptAgreementRequest>(message);
  if (request.version() != 0 && !request.body_sha256().empty()) return absl::OkStatus();
  identity::v1::GetAgreementStatusRequest status_request;
  identity::v1::GetAgreementStatusResponse status;
  RETURN_IF_ERROR(CallMethod(context.rpc, "qunzu.identity.v1.IdentityService.GetAgreementStatus",
                             status_request, &status));
  for (const identity::v1::Agreement& agreement : status.current()) {
    if (agreement.kind() != request.kind()) continue;
    if (request.version() == 0) request.set_version(agreement.version());
    if (request.body_sha256().empty()) request.set_body_sha256(agreement.body_sha256());
    context.notes << "accepting "
                  << ShortEnumName(*identity::v1::AgreementKind_descriptor(), agreement.kind())
                  << " version " << agreement.version() << " (" << agreement.label() << ")\n";
    return absl::OkStatus();
  }
  return MakeError(absl::StatusCode::kNotFound, "AGREEMENT_NOT_FOUND",
                   "no agreement of this kind is in force; give --version and --body-sha256");
}

absl::Status CheckCheckpointSignature(HookContext& context, const Extras& extras,
                                      const google::protobuf::Message& /*request*/,
                                      const google::protobuf::Message& message) {
  const auto& response = As<audit::v1::GetCheckpointResponse>(message);
  ASSIGN_OR_RETURN(std::string key,
                   SigningKey(context, extras, response.signing_key().public_key()));
  RETURN_IF_ERROR(VerifyCheckpoint(response.checkpoint(), key));
  context.notes << "checkpoint at size " << response.checkpoint().tree_size()
                << ": Ed25519 signature verified (key " << response.checkpoint().key_id() << ")\n";
  return absl::OkStatus();
}

absl::Status CheckInclusionProof(HookContext& context, const Extras& extras,
                                 const google::protobuf::Message& /*request*/,
                                 const google::protobuf::Message& message) {
  const auto& proof = As<audit::v1::GetInclusionProofResponse>(message);
  ASSIGN_OR_RETURN(audit::v1::GetCheckpointResponse checkpoint,
                   FetchCheckpoint(context.rpc, proof.tree_size()));
  ASSIGN_OR_RETURN(std::string key,
                   SigningKey(context, extras, checkpoint.signing_key().public_key()));
  RETURN_IF_ERROR(VerifyCheckpoint(checkpoint.checkpoint(), key));
  absl::StatusOr<audit::Hash> leaf = audit::HashFromBytes(proof.leaf_hash());
  absl::StatusOr<audit::Hash> root = audit::HashFromBytes(checkpoint.checkpoint().root_hash());
  std::vector<audit::Hash> path;
  for (const std::string& bytes : proof.hashes()) {
    absl::StatusOr<audit::Hash> hash = audit::HashFromBytes(bytes);
    if (!hash.ok()) return hash.status();
    path.push_back(*hash);
  }
  if (!leaf.ok() || !root.ok() ||
      !audit::VerifyInclusion(proof.leaf_index(), proof.tree_size(), *leaf, path, *root).ok()) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "VERIFICATION_FAILED",
                     absl::StrCat("the inclusion proof of leaf ", proof.leaf_index(),
                                  " does not lead to the signed root at size ", proof.tree_size()));
  }
  context.notes << "leaf " << proof.leaf_index() << " is in the signed tree of size "
                << proof.tree_size() << ": proof verified\n";
  return absl::OkStatus();
}

absl::Status CheckConsistencyProof(HookContext& context, const Extras& extras,
                                   const google::protobuf::Message& /*request*/,
                                   const google::protobuf::Message& message) {
  const auto& proof = As<audit::v1::GetConsistencyProofResponse>(message);
  ASSIGN_OR_RETURN(audit::v1::GetCheckpointResponse older,
                   FetchCheckpoint(context.rpc, proof.first_tree_size()));
  ASSIGN_OR_RETURN(audit::v1::GetCheckpointResponse newer,
                   FetchCheckpoint(context.rpc, proof.second_tree_size()));
  ASSIGN_OR_RETURN(std::string key, SigningKey(context, extras, newer.signing_key().public_key()));
  RETURN_IF_ERROR(VerifyCheckpoint(older.checkpoint(), key));
  RETURN_IF_ERROR(VerifyCheckpoint(newer.checkpoint(), key));
  RETURN_IF_ERROR(VerifyConsistencyProof(older.checkpoint(), newer.checkpoint(), proof.hashes()));
  context.notes << "signed checkpoints " << proof.first_tree_size() << " -> "
                << proof.second_tree_size() << ": consistent\n";
  return absl::OkStatus();
}

absl::Status CheckVerifyRange(HookContext& /*context*/, const Extras& /*extras*/,
                              const google::protobuf::Message& /*request*/,
                              const google::protobuf::Message& message) {
  const auto& response = As<audit::v1::VerifyRangeResponse>(message);
  if (response.ok()) return absl::OkStatus();
  return MakeError(absl::StatusCode::kFailedPrecondition, "VERIFICATION_FAILED",
                   absl::StrCat("the log does not verify: ",
                                ShortEnumName(*audit::v1::VerifyFailureKind_descriptor(),
                                              response.first_failure().kind()),
                                " at leaf ", response.first_failure().leaf_index(), ": ",
                                response.first_failure().detail()));
}

}  // namespace qunzu::ctl
