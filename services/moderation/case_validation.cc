#include "services/moderation/case_validation.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/idempotency.h"
#include "common/status.h"
#include "services/moderation/case_util.h"
#include "services/moderation/rule_validation.h"

namespace qunzu::moderation {
namespace {

constexpr size_t kMaxDescriptionChars = 2000;
constexpr size_t kMaxStatementChars = 2000;
constexpr size_t kMaxEvidenceText = 10000;
constexpr int kMaxEvidence = 20;
constexpr size_t kMaxIdText = 128;
constexpr int kMaxBasisIds = 50;

absl::Status Page(const common::v1::PageRequest& page) {
  if (page.page_size() < 0 || page.page_size() > 1000) {
    return InvalidField("page.page_size", "must be 0..1000");
  }
  return ReadPage(page).status();
}

absl::Status Known(const std::string& field, int value, bool (*valid)(int), bool required) {
  if (!valid(value) || (required && value == 0)) {
    return InvalidField(
        field, required ? "is required and must be a known value" : "must be a known value");
  }
  return absl::OkStatus();
}

absl::Status Required(const std::string& reason, const std::string& field, const std::string& text,
                      size_t max_chars) {
  if (text.empty()) {
    return MakeError(absl::StatusCode::kInvalidArgument, reason, field + " is required",
                     {{"field", field}});
  }
  return ValidateText(field, text, max_chars);
}

absl::Status Target(const v1::ReportTarget& target) {
  RETURN_IF_ERROR(Known("target.kind", target.kind(), v1::ReportTargetKind_IsValid, true));
  switch (target.kind()) {
    case v1::REPORT_TARGET_KIND_MESSAGE:
      if (target.group_id() == 0) return InvalidField("target.group_id", "is required");
      if (target.message_id().empty()) return InvalidField("target.message_id", "is required");
      break;
    case v1::REPORT_TARGET_KIND_GROUP:
      if (target.group_id() == 0) return InvalidField("target.group_id", "is required");
      break;
    default:
      if (target.account_id() == 0) return InvalidField("target.account_id", "is required");
  }
  return ValidateText("target.message_id", target.message_id(), kMaxIdText, false);
}

absl::Status Basis(const v1::DispositionBasis& basis, bool required) {
  if (required && basis.report_ids().empty() && basis.rule_ids().empty()) {
    return MakeError(absl::StatusCode::kInvalidArgument, "BASIS_REQUIRED",
                     "name the reports or rules this is based on", {{"field", "basis"}});
  }
  if (basis.report_ids_size() + basis.rule_ids_size() > kMaxBasisIds) {
    return InvalidField("basis", "names too many ids");
  }
  for (uint64_t id : basis.report_ids()) {
    if (id == 0) return InvalidField("basis.report_ids", "holds 0");
  }
  for (uint64_t id : basis.rule_ids()) {
    if (id == 0) return InvalidField("basis.rule_ids", "holds 0");
  }
  return absl::OkStatus();
}

absl::Status Until(const google::protobuf::Timestamp& until, bool present, absl::Time now,
                   const std::string& field, const std::string& missing_reason) {
  if (!present) {
    return MakeError(absl::StatusCode::kInvalidArgument, missing_reason, field + " is required",
                     {{"field", field}});
  }
  if (FromProto(until) <= now) {
    return MakeError(absl::StatusCode::kInvalidArgument,
                     field == "expires_at" ? "EXPIRY_IN_PAST" : "UNTIL_IN_PAST",
                     field + " is not in the future", {{"field", field}});
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateSubmitReport(const v1::SubmitReportRequest& request) {
  RETURN_IF_ERROR(ValidateRequestId(request.request_id()));
  RETURN_IF_ERROR(Target(request.target()));
  RETURN_IF_ERROR(Known("category", request.category(), v1::ContentCategory_IsValid, true));
  RETURN_IF_ERROR(ValidateText("description", request.description(), kMaxDescriptionChars, false));
  RETURN_IF_ERROR(ValidateText("client_ip", request.client_ip(), 64, false));
  if (request.actor_account_id() == 0 && request.client_ip().empty()) {
    return InvalidField("client_ip", "is required for an anonymous report");
  }
  if (request.evidence_size() > kMaxEvidence) return InvalidField("evidence", "at most 20 items");
  for (int i = 0; i < request.evidence_size(); ++i) {
    const v1::EvidenceItem& e = request.evidence(i);
    const std::string field = absl::StrCat("evidence[", i, "]");
    RETURN_IF_ERROR(ValidateText(field + ".text", e.text(), kMaxEvidenceText, false));
    RETURN_IF_ERROR(ValidateText(field + ".message_id", e.message_id(), kMaxIdText, false));
    RETURN_IF_ERROR(ValidateText(field + ".media_uri", e.media_uri(), 2000, false));
    if (e.media_sha256().size() > 64) return InvalidField(field + ".media_sha256", "too long");
  }
  return absl::OkStatus();
}

absl::Status ValidateListReports(const v1::ListReportsRequest& request) {
  RETURN_IF_ERROR(Known("state", request.state(), v1::ReportState_IsValid, false));
  RETURN_IF_ERROR(Known("category", request.category(), v1::ContentCategory_IsValid, false));
  RETURN_IF_ERROR(Known("source", request.source(), v1::ReportSource_IsValid, false));
  RETURN_IF_ERROR(
      Known("target.kind", request.target().kind(), v1::ReportTargetKind_IsValid, false));
  RETURN_IF_ERROR(ValidateText("assignee", request.assignee(), 255, false));
  RETURN_IF_ERROR(
      ValidateText("target.message_id", request.target().message_id(), kMaxIdText, false));
  return Page(request.page());
}

absl::Status ValidateClaimReport(const v1::ClaimReportRequest& request) {
  RETURN_IF_ERROR(ValidateRequestId(request.request_id()));
  if (request.report_id() == 0) return InvalidField("report_id", "is required");
  return Known("action", request.action(), v1::ClaimAction_IsValid, true);
}

absl::Status ValidateResolveReport(const v1::ResolveReportRequest& request) {
  RETURN_IF_ERROR(ValidateRequestId(request.request_id()));
  if (request.report_id() == 0) return InvalidField("report_id", "is required");
  RETURN_IF_ERROR(Known("outcome", request.outcome(), v1::ReportOutcome_IsValid, true));
  RETURN_IF_ERROR(Required("STATEMENT_REQUIRED", "statement_of_reasons",
                           request.statement_of_reasons(), kMaxStatementChars));
  const bool duplicate = request.outcome() == v1::REPORT_OUTCOME_DUPLICATE;
  if (duplicate && request.duplicate_of_report_id() == 0) {
    return MakeError(absl::StatusCode::kInvalidArgument, "DUPLICATE_OF_REQUIRED",
                     "a DUPLICATE names the report it duplicates",
                     {{"field", "duplicate_of_report_id"}});
  }
  if (!duplicate && request.duplicate_of_report_id() != 0) {
    return InvalidField("duplicate_of_report_id", "is for DUPLICATE only");
  }
  if (request.outcome() != v1::REPORT_OUTCOME_VIOLATION && request.disposition_ids_size() > 0) {
    return InvalidField("disposition_ids", "are for VIOLATION only");
  }
  if (request.false_report() && request.outcome() != v1::REPORT_OUTCOME_INVALID) {
    return InvalidField("false_report", "is for INVALID only");
  }
  for (uint64_t id : request.disposition_ids()) {
    if (id == 0) return InvalidField("disposition_ids", "holds 0");
  }
  return absl::OkStatus();
}

absl::Status ValidateGetReport(const v1::GetReportRequest& request) {
  if (request.report_id() == 0) return InvalidField("report_id", "is required");
  return absl::OkStatus();
}

absl::Status ValidateGetHandlingStats(const v1::GetHandlingStatsRequest& request) {
  RETURN_IF_ERROR(Known("period", request.period(), v1::StatsPeriod_IsValid, false));
  return Known("category", request.category(), v1::ContentCategory_IsValid, false);
}

absl::Status ValidateGetHeldMessage(const v1::GetHeldMessageRequest& request) {
  if (request.report_id() == 0) return InvalidField("report_id", "is required");
  return absl::OkStatus();
}

absl::Status ValidateListHeldMessages(const v1::ListHeldMessagesRequest& request) {
  RETURN_IF_ERROR(Known("state", request.state(), v1::HeldMessageState_IsValid, false));
  return Page(request.page());
}

absl::Status ValidateDisposeGroup(const v1::DisposeGroupRequest& request, absl::Time now) {
  RETURN_IF_ERROR(ValidateRequestId(request.request_id()));
  if (request.group_id() == 0) return InvalidField("group_id", "is required");
  RETURN_IF_ERROR(Known("kind", request.kind(), v1::DispositionKind_IsValid, true));
  if (request.kind() != v1::DISPOSITION_KIND_WARN &&
      request.kind() != v1::DISPOSITION_KIND_SUSPEND_POSTING &&
      request.kind() != v1::DISPOSITION_KIND_CLOSE) {
    return MakeError(absl::StatusCode::kInvalidArgument, "DISPOSITION_KIND_NOT_FOR_GROUP",
                     "a group takes WARN, SUSPEND_POSTING or CLOSE", {{"field", "kind"}});
  }
  RETURN_IF_ERROR(Basis(request.basis(), true));
  RETURN_IF_ERROR(Required("STATEMENT_REQUIRED", "statement_of_reasons",
                           request.statement_of_reasons(), kMaxStatementChars));
  if (request.kind() == v1::DISPOSITION_KIND_CLOSE) {
    if (request.has_until()) return InvalidField("until", "CLOSE has no end");
    return absl::OkStatus();
  }
  return Until(request.until(), request.has_until(), now, "until", "UNTIL_REQUIRED");
}

absl::Status ValidateDisposeAccount(const v1::DisposeAccountRequest& request, absl::Time now) {
  RETURN_IF_ERROR(ValidateRequestId(request.request_id()));
  if (request.account_id() == 0) return InvalidField("account_id", "is required");
  RETURN_IF_ERROR(Known("kind", request.kind(), v1::DispositionKind_IsValid, true));
  if (request.kind() != v1::DISPOSITION_KIND_CREDIT_DOWNGRADE &&
      request.kind() != v1::DISPOSITION_KIND_SUSPEND_ADMIN &&
      request.kind() != v1::DISPOSITION_KIND_REVOKE_CREATION) {
    return MakeError(absl::StatusCode::kInvalidArgument, "DISPOSITION_KIND_NOT_FOR_ACCOUNT",
                     "an account takes CREDIT_DOWNGRADE, SUSPEND_ADMIN or REVOKE_CREATION",
                     {{"field", "kind"}});
  }
  if (request.kind() == v1::DISPOSITION_KIND_CREDIT_DOWNGRADE && request.levels() == 0) {
    return MakeError(absl::StatusCode::kInvalidArgument, "LEVELS_REQUIRED",
                     "a downgrade removes at least one level", {{"field", "levels"}});
  }
  if (request.kind() != v1::DISPOSITION_KIND_CREDIT_DOWNGRADE && request.levels() != 0) {
    return InvalidField("levels", "is for CREDIT_DOWNGRADE only");
  }
  RETURN_IF_ERROR(Basis(request.basis(), true));
  RETURN_IF_ERROR(Required("STATEMENT_REQUIRED", "statement_of_reasons",
                           request.statement_of_reasons(), kMaxStatementChars));
  return Until(request.until(), request.has_until(), now, "until", "UNTIL_REQUIRED");
}

absl::Status ValidateGetDisposition(const v1::GetDispositionRequest& request) {
  if (request.disposition_id() == 0) return InvalidField("disposition_id", "is required");
  return absl::OkStatus();
}

absl::Status ValidateListDispositions(const v1::ListDispositionsRequest& request) {
  RETURN_IF_ERROR(Known("kind", request.kind(), v1::DispositionKind_IsValid, false));
  RETURN_IF_ERROR(Known("state", request.state(), v1::DispositionState_IsValid, false));
  RETURN_IF_ERROR(ValidateText("decided_by", request.decided_by(), 255, false));
  return Page(request.page());
}

absl::Status ValidateRevokeDisposition(const v1::RevokeDispositionRequest& request) {
  RETURN_IF_ERROR(ValidateRequestId(request.request_id()));
  if (request.disposition_id() == 0) return InvalidField("disposition_id", "is required");
  return Required("REASON_REQUIRED", "reason", request.reason(), kMaxStatementChars);
}

absl::Status ValidateAddToBlacklist(const v1::AddToBlacklistRequest& request, absl::Time now) {
  RETURN_IF_ERROR(ValidateRequestId(request.request_id()));
  RETURN_IF_ERROR(Known("subject_kind", request.subject_kind(), v1::SubjectKind_IsValid, true));
  if (request.subject_id() == 0) return InvalidField("subject_id", "is required");
  RETURN_IF_ERROR(Required("REASON_REQUIRED", "reason", request.reason(), kMaxStatementChars));
  RETURN_IF_ERROR(Basis(request.basis(), false));
  if (request.has_expires_at()) {
    return Until(request.expires_at(), true, now, "expires_at", "EXPIRY_REQUIRED");
  }
  return absl::OkStatus();
}

absl::Status ValidateRemoveFromBlacklist(const v1::RemoveFromBlacklistRequest& request) {
  RETURN_IF_ERROR(ValidateRequestId(request.request_id()));
  if (request.blacklist_entry_id() == 0) return InvalidField("blacklist_entry_id", "is required");
  return Required("REASON_REQUIRED", "reason", request.reason(), kMaxStatementChars);
}

absl::Status ValidateListBlacklist(const v1::ListBlacklistRequest& request) {
  RETURN_IF_ERROR(Known("subject_kind", request.subject_kind(), v1::SubjectKind_IsValid, false));
  RETURN_IF_ERROR(Known("state", request.state(), v1::BlacklistEntryState_IsValid, false));
  return Page(request.page());
}

absl::Status ValidateListFilings(const v1::ListFilingsRequest& request) {
  RETURN_IF_ERROR(Known("kind", request.kind(), v1::FilingKind_IsValid, false));
  RETURN_IF_ERROR(
      Known("delivery_state", request.delivery_state(), v1::FilingDeliveryState_IsValid, false));
  RETURN_IF_ERROR(Known("subject_kind", request.subject_kind(), v1::SubjectKind_IsValid, false));
  return Page(request.page());
}

}  // namespace qunzu::moderation
