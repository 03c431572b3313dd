#include "services/credit/credit_engine.h"

#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/audit_outbox.h"
#include "common/idempotency.h"
#include "common/log.h"
#include "common/status.h"
#include "services/credit/credit_model.h"

namespace qunzu::credit {
namespace {

constexpr int kDefaultPageSize = 50;
constexpr int kRebuildBatch = 500;
// How far a caller's clock may run ahead of ours.
constexpr absl::Duration kClockSkew = absl::Minutes(5);

audit::v1::AuditEvent AuditFor(const RequestContext& context, absl::string_view action,
                               absl::string_view request_id, const AccountUpdate& update) {
  audit::v1::AuditEvent event =
      AuditEventFor(context.caller, context.peer, context.method, action, request_id);
  event.set_service(kCreditSource);
  *event.mutable_time() = ToProtoTime(update.now());
  audit::v1::Subject* subject = event.add_subjects();
  subject->set_kind(audit::v1::SUBJECT_KIND_ACCOUNT);
  subject->set_id(update.Status().account_id());
  (*event.mutable_details())["score"] = absl::StrCat(update.Status().score());
  (*event.mutable_details())["level"] = absl::StrCat(update.Status().level());
  return event;
}

void AddPenaltySubject(audit::v1::AuditEvent& event, const v1::Penalty& penalty) {
  audit::v1::Subject* subject = event.add_subjects();
  subject->set_kind(audit::v1::SUBJECT_KIND_CREDIT_PENALTY);
  subject->set_id(penalty.penalty_id());
  audit::v1::Subject* disposition = event.add_subjects();
  disposition->set_kind(audit::v1::SUBJECT_KIND_DISPOSITION);
  disposition->set_id(penalty.disposition_id());
}

std::string PageToken(uint64_t before_entry_id) {
  return absl::WebSafeBase64Escape(absl::StrCat("h1:", before_entry_id));
}

absl::StatusOr<uint64_t> ParsePageToken(const std::string& token) {
  if (token.empty()) return 0;
  std::string raw;
  uint64_t id = 0;
  if (!absl::WebSafeBase64Unescape(token, &raw) || !absl::StartsWith(raw, "h1:") ||
      !absl::SimpleAtoi(raw.substr(3), &id) || id == 0) {
    return InvalidField("page.page_token", "is not a token this RPC returned");
  }
  return id;
}

// A replayed ApplyPenalty/LiftPenalty response, or nullopt on a fresh key.
template <typename Response>
absl::StatusOr<std::optional<Response>> BeginIdempotent(CreditTransaction& tx,
                                                        const IdempotencyKey& key,
                                                        const google::protobuf::Message& request) {
  ASSIGN_OR_RETURN(IdempotencyBegin begin, tx.BeginRequest(key, FingerprintMessage(request)));
  if (begin.fresh) return std::optional<Response>();
  Response response;
  if (!response.ParseFromString(begin.response)) {
    return MakeError(absl::StatusCode::kInternal, "IDEMPOTENCY_CORRUPT",
                     "a stored response does not parse");
  }
  return std::optional<Response>(std::move(response));
}

// The delta of a REVERSAL: the cancelled event's applied delta, negated.
absl::StatusOr<int32_t> ReversalDelta(CreditTransaction& tx, const RequestContext& context,
                                      const v1::RecordEventRequest& request) {
  ASSIGN_OR_RETURN(std::optional<StoredEvent> original, tx.FindEvent(request.reverses_event_id()));
  if (!original || original->entry.account_id() != request.account_id() ||
      original->entry.event_type() == v1::CREDIT_EVENT_TYPE_REVERSAL) {
    return MakeError(absl::StatusCode::kNotFound, "REVERSED_EVENT_NOT_FOUND",
                     "no reversible event " + request.reverses_event_id() + " on this account",
                     {{"field", "reverses_event_id"}});
  }
  if (original->entry.source_service() != context.caller.service) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "EVENT_NOT_REVERSIBLE",
                     "only the service that recorded an event may reverse it",
                     {{"field", "reverses_event_id"}});
  }
  ASSIGN_OR_RETURN(const bool reversed, tx.IsReversed(request.reverses_event_id()));
  if (reversed) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "EVENT_ALREADY_REVERSED",
                     "event " + request.reverses_event_id() + " was already reversed");
  }
  return -original->entry.delta();
}

// The ledger entry of a recorded event, explained by the caller's reason or
// else the policy rule's description.
v1::LedgerEntry EventEntry(const RequestContext& context, const v1::RecordEventRequest& request,
                           const Policy& policy) {
  v1::LedgerEntry entry;
  entry.set_kind(v1::CHANGE_KIND_EVENT);
  entry.set_event_type(request.event_type());
  entry.set_event_id(request.request_id());
  entry.set_source_service(context.caller.service);
  entry.set_reference(request.reference());
  entry.set_reason(request.reason().empty() ? policy.DescriptionOf(request.event_type())
                                            : request.reason());
  entry.set_reverses_event_id(request.reverses_event_id());
  if (request.has_occurred_at()) *entry.mutable_occurred_at() = request.occurred_at();
  return entry;
}

}  // namespace

bool ServiceMayRecord(const std::string& service, v1::CreditEventType type) {
  switch (type) {
    case v1::CREDIT_EVENT_TYPE_IDENTITY_VERIFIED:
      return service == "identity";
    case v1::CREDIT_EVENT_TYPE_GROUP_CREATION_REJECTED:
      return service == "groups";
    case v1::CREDIT_EVENT_TYPE_CLEAN_PERIOD:
      return false;
    default:
      return service == "moderation";
  }
}

absl::StatusOr<v1::RecordEventResponse> CreditEngine::RecordEvent(
    const RequestContext& context, const v1::RecordEventRequest& request) {
  if (!ServiceMayRecord(context.caller.service, request.event_type())) {
    return MakeError(absl::StatusCode::kPermissionDenied, "EVENT_TYPE_NOT_ALLOWED_FOR_CALLER",
                     absl::StrCat(v1::CreditEventType_Name(request.event_type()),
                                  " is not recorded by service '", context.caller.service, "'"),
                     {{"field", "event_type"}});
  }
  const absl::Time now = clock_.Now();
  if (request.has_occurred_at() && FromProtoTime(request.occurred_at()) > now + kClockSkew) {
    return InvalidField("occurred_at", "is in the future");
  }
  int32_t rule_delta = 0;
  if (request.event_type() != v1::CREDIT_EVENT_TYPE_REVERSAL) {
    ASSIGN_OR_RETURN(rule_delta, policy_.DeltaOf(request.event_type()));
  }
  const std::string fingerprint = FingerprintMessage(request);
  v1::RecordEventResponse response;
  bool fresh = false;
  int caught_up = 0;
  const absl::Status committed = store_.InTransaction([&](CreditTransaction& tx) -> absl::Status {
    ASSIGN_OR_RETURN(AccountUpdate update,
                     AccountUpdate::Open(tx, policy_, request.account_id(), now));
    caught_up = update.caught_up();
    fresh = false;
    ASSIGN_OR_RETURN(std::optional<StoredEvent> existing, tx.FindEvent(request.request_id()));
    if (existing) {
      if (existing->fingerprint != fingerprint) {
        return MakeError(absl::StatusCode::kAlreadyExists, "REQUEST_ID_REUSED",
                         "event id " + request.request_id() + " was recorded with other content",
                         {{"field", "request_id"}});
      }
      RETURN_IF_ERROR(update.Save());
      *response.mutable_entry() = existing->entry;
      *response.mutable_status() = update.Status();
      return absl::OkStatus();
    }
    int32_t delta = rule_delta;
    if (request.event_type() == v1::CREDIT_EVENT_TYPE_IDENTITY_VERIFIED && update.row().verified) {
      return MakeError(absl::StatusCode::kFailedPrecondition, "IDENTITY_ALREADY_VERIFIED",
                       "the account's verification was already recorded");
    }
    if (request.event_type() == v1::CREDIT_EVENT_TYPE_REVERSAL) {
      ASSIGN_OR_RETURN(delta, ReversalDelta(tx, context, request));
    }
    ASSIGN_OR_RETURN(*response.mutable_entry(),
                     update.Append(EventEntry(context, request, policy_), delta, fingerprint));
    if (request.event_type() == v1::CREDIT_EVENT_TYPE_IDENTITY_VERIFIED) {
      update.row().verified = true;
    }
    RETURN_IF_ERROR(update.Save());
    audit::v1::AuditEvent audit =
        AuditFor(context, "CREDIT_EVENT_RECORDED", request.request_id(), update);
    (*audit.mutable_details())["event_type"] = v1::CreditEventType_Name(request.event_type());
    (*audit.mutable_details())["delta"] = absl::StrCat(response.entry().delta());
    RETURN_IF_ERROR(tx.RecordAudit(audit));
    *response.mutable_status() = update.Status();
    fresh = true;
    return absl::OkStatus();
  });
  RETURN_IF_ERROR(committed);
  if (metrics_ != nullptr) {
    if (fresh) metrics_->EventRecorded(request.event_type());
    metrics_->CaughtUp(caught_up);
  }
  RETURN_IF_ERROR(Publish(response.status()));
  return response;
}

absl::StatusOr<v1::ApplyPenaltyResponse> CreditEngine::ApplyPenalty(
    const RequestContext& context, const v1::ApplyPenaltyRequest& request) {
  const absl::Time now = clock_.Now();
  const absl::Time until = FromProtoTime(request.until());
  const IdempotencyKey key{context.caller.principal, context.method, request.request_id()};
  v1::ApplyPenaltyResponse response;
  bool fresh = false;
  int caught_up = 0;
  const absl::Status committed = store_.InTransaction([&](CreditTransaction& tx) -> absl::Status {
    ASSIGN_OR_RETURN(auto replay, BeginIdempotent<v1::ApplyPenaltyResponse>(tx, key, request));
    if (replay) {
      response = *std::move(replay);
      return absl::OkStatus();
    }
    if (until <= now) {
      return MakeError(absl::StatusCode::kInvalidArgument, "PENALTY_UNTIL_IN_PAST",
                       "until must be in the future", {{"field", "until"}});
    }
    if (until > now + policy_.MaxPenaltyDuration()) {
      return InvalidField("until", "is further ahead than the policy's max_duration");
    }
    ASSIGN_OR_RETURN(AccountUpdate update,
                     AccountUpdate::Open(tx, policy_, request.account_id(), now));
    caught_up = update.caught_up();
    v1::Penalty penalty;
    penalty.set_account_id(request.account_id());
    penalty.set_kind(request.kind());
    penalty.set_levels(request.levels());
    if (request.kind() == v1::PENALTY_KIND_LEVEL_DOWNGRADE) {
      const uint32_t level = update.Status().level();
      penalty.set_level_cap(level > request.levels() ? level - request.levels() : 0);
    }
    *penalty.mutable_until() = request.until();
    penalty.set_disposition_id(request.disposition_id());
    penalty.set_reason(request.reason());
    penalty.set_state(v1::PENALTY_STATE_ACTIVE);
    *penalty.mutable_applied_at() = ToProtoTime(now);
    ASSIGN_OR_RETURN(const uint64_t penalty_id, tx.InsertPenalty(penalty));
    penalty.set_penalty_id(penalty_id);
    update.penalties().push_back(penalty);
    v1::LedgerEntry entry;
    entry.set_kind(v1::CHANGE_KIND_PENALTY_APPLIED);
    entry.set_penalty_id(penalty_id);
    entry.set_source_service(context.caller.service);
    entry.set_reference(absl::StrCat("disposition:", request.disposition_id()));
    entry.set_reason(request.reason());
    RETURN_IF_ERROR(update.Append(std::move(entry), 0).status());
    RETURN_IF_ERROR(update.Save());
    audit::v1::AuditEvent audit =
        AuditFor(context, "CREDIT_PENALTY_APPLIED", request.request_id(), update);
    AddPenaltySubject(audit, penalty);
    (*audit.mutable_details())["kind"] = v1::PenaltyKind_Name(request.kind());
    RETURN_IF_ERROR(tx.RecordAudit(audit));
    *response.mutable_penalty() = penalty;
    *response.mutable_status() = update.Status();
    fresh = true;
    return tx.FinishRequest(key, response.SerializeAsString());
  });
  RETURN_IF_ERROR(committed);
  if (metrics_ != nullptr && fresh) {
    metrics_->PenaltyApplied(request.kind());
    metrics_->CaughtUp(caught_up);
  }
  RETURN_IF_ERROR(Publish(response.status()));
  return response;
}

absl::StatusOr<v1::LiftPenaltyResponse> CreditEngine::LiftPenalty(
    const RequestContext& context, const v1::LiftPenaltyRequest& request) {
  const IdempotencyKey key{context.caller.principal, context.method, request.request_id()};
  v1::LiftPenaltyResponse response;
  bool fresh = false;
  int caught_up = 0;
  const absl::Status committed = store_.InTransaction([&](CreditTransaction& tx) -> absl::Status {
    ASSIGN_OR_RETURN(auto replay, BeginIdempotent<v1::LiftPenaltyResponse>(tx, key, request));
    if (replay) {
      response = *std::move(replay);
      return absl::OkStatus();
    }
    ASSIGN_OR_RETURN(std::optional<v1::Penalty> found, tx.FindPenalty(request.penalty_id()));
    if (!found) {
      return MakeError(absl::StatusCode::kNotFound, "PENALTY_NOT_FOUND",
                       absl::StrCat("no penalty ", request.penalty_id()),
                       {{"field", "penalty_id"}});
    }
    ASSIGN_OR_RETURN(AccountUpdate update,
                     AccountUpdate::Open(tx, policy_, found->account_id(), clock_.Now()));
    caught_up = update.caught_up();
    v1::Penalty* penalty = nullptr;
    for (v1::Penalty& p : update.penalties()) {
      if (p.penalty_id() == request.penalty_id()) penalty = &p;
    }
    if (penalty == nullptr || penalty->state() != v1::PENALTY_STATE_ACTIVE) {
      return MakeError(absl::StatusCode::kFailedPrecondition, "PENALTY_NOT_ACTIVE",
                       absl::StrCat("penalty ", request.penalty_id(), " already ended"));
    }
    penalty->set_state(v1::PENALTY_STATE_LIFTED);
    *penalty->mutable_ended_at() = ToProtoTime(update.now());
    penalty->set_lift_reason(request.reason());
    RETURN_IF_ERROR(tx.UpdatePenalty(*penalty));
    *response.mutable_penalty() = *penalty;
    v1::LedgerEntry entry;
    entry.set_kind(v1::CHANGE_KIND_PENALTY_LIFTED);
    entry.set_penalty_id(request.penalty_id());
    entry.set_source_service(context.caller.service);
    entry.set_reference(absl::StrCat("disposition:", penalty->disposition_id()));
    entry.set_reason(request.reason());
    RETURN_IF_ERROR(update.Append(std::move(entry), 0).status());
    RETURN_IF_ERROR(update.Save());
    audit::v1::AuditEvent audit =
        AuditFor(context, "CREDIT_PENALTY_LIFTED", request.request_id(), update);
    AddPenaltySubject(audit, response.penalty());
    RETURN_IF_ERROR(tx.RecordAudit(audit));
    *response.mutable_status() = update.Status();
    fresh = true;
    return tx.FinishRequest(key, response.SerializeAsString());
  });
  RETURN_IF_ERROR(committed);
  if (metrics_ != nullptr && fresh) {
    metrics_->PenaltyLifted(response.penalty().kind());
    metrics_->CaughtUp(caught_up);
  }
  RETURN_IF_ERROR(Publish(response.status()));
  return response;
}

absl::StatusOr<v1::CreditStatus> CreditEngine::GetCredit(uint64_t account_id) {
  return Refresh(account_id);
}

absl::StatusOr<v1::ListCreditHistoryResponse> CreditEngine::ListHistory(
    const v1::ListCreditHistoryRequest& request) {
  HistoryQuery query;
  query.account_id = request.account_id();
  if (request.has_start_time()) query.start = FromProtoTime(request.start_time());
  if (request.has_end_time()) query.end = FromProtoTime(request.end_time());
  ASSIGN_OR_RETURN(query.before_entry_id, ParsePageToken(request.page().page_token()));
  const int page_size =
      request.page().page_size() == 0 ? kDefaultPageSize : request.page().page_size();
  query.limit = page_size + 1;
  ASSIGN_OR_RETURN(std::vector<v1::LedgerEntry> entries, store_.History(query));
  v1::ListCreditHistoryResponse response;
  const bool more = static_cast<int>(entries.size()) > page_size;
  if (more) entries.resize(static_cast<size_t>(page_size));
  if (more) {
    response.mutable_page()->set_next_page_token(PageToken(entries.back().entry_id()));
  }
  for (v1::LedgerEntry& entry : entries) *response.add_entries() = std::move(entry);
  return response;
}

absl::Status CreditEngine::VerifyLedger(uint64_t account_id) {
  ASSIGN_OR_RETURN(std::vector<v1::LedgerEntry> ledger, store_.Ledger(account_id));
  ASSIGN_OR_RETURN(const int32_t replayed, ReplayLedger(ledger));
  ASSIGN_OR_RETURN(std::optional<AccountRow> row, store_.GetAccount(account_id));
  const int32_t materialised = row ? row->score : 0;
  const uint64_t last_entry = row ? row->last_entry_id : 0;
  const uint64_t ledger_last = ledger.empty() ? 0 : ledger.back().entry_id();
  if (replayed != materialised || last_entry != ledger_last) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "LEDGER_MISMATCH",
                     absl::StrCat("account ", account_id, ": the ledger replays to ", replayed,
                                  " but the row holds ", materialised));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> CreditEngine::CatchUpDue(int limit) {
  const absl::Time now = clock_.Now();
  ASSIGN_OR_RETURN(std::vector<uint64_t> due,
                   store_.DueAccounts(now, now - policy_.CleanPeriod(), limit));
  for (uint64_t account_id : due) RETURN_IF_ERROR(Refresh(account_id).status());
  return static_cast<int>(due.size());
}

absl::StatusOr<CreditEngine::RebuildReport> CreditEngine::Rebuild() {
  RebuildReport report;
  uint64_t after = 0;
  while (true) {
    ASSIGN_OR_RETURN(std::vector<uint64_t> ids, store_.ListAccounts(after, kRebuildBatch));
    if (ids.empty()) return report;
    std::vector<v1::CreditStatus> statuses;
    statuses.reserve(ids.size());
    for (uint64_t id : ids) {
      ASSIGN_OR_RETURN(v1::CreditStatus status, Refresh(id));
      statuses.push_back(std::move(status));
      absl::Status verified = VerifyLedger(id);
      if (ErrorReason(verified) == "LEDGER_MISMATCH" ||
          ErrorReason(verified) == "LEDGER_INCONSISTENT") {
        report.mismatched.push_back(id);
      } else {
        RETURN_IF_ERROR(verified);
      }
      ++report.accounts;
    }
    RETURN_IF_ERROR(projection_.Publish(statuses));
    after = ids.back();
  }
}

absl::StatusOr<v1::CreditStatus> CreditEngine::Refresh(uint64_t account_id) {
  const absl::Time now = clock_.Now();
  ASSIGN_OR_RETURN(std::optional<AccountRow> row, store_.GetAccount(account_id));
  if (!row) {
    AccountRow unrated;
    unrated.account_id = account_id;
    return ComputeStatus(policy_, unrated, {}, now);
  }
  ASSIGN_OR_RETURN(std::vector<v1::Penalty> penalties, store_.ActivePenalties(account_id));
  const bool level_moved = EffectiveLevel(policy_, row->score, penalties, now) != row->level;
  if (!level_moved && !CatchUpIsDue(policy_, *row, penalties, now)) {
    return ComputeStatus(policy_, *row, penalties, now);
  }
  v1::CreditStatus status;
  int caught_up = 0;
  const absl::Status committed = store_.InTransaction([&](CreditTransaction& tx) -> absl::Status {
    ASSIGN_OR_RETURN(AccountUpdate update, AccountUpdate::Open(tx, policy_, account_id, now));
    if (update.Status().level() != update.row().level) {
      v1::LedgerEntry entry;
      entry.set_kind(v1::CHANGE_KIND_POLICY_CHANGED);
      entry.set_source_service(kCreditSource);
      entry.set_reason(
          absl::StrCat("Policy ", policy_.version(), " sets another level for this score."));
      RETURN_IF_ERROR(update.Append(std::move(entry), 0).status());
    }
    if (update.caught_up() > 0 || update.Status().level() != row->level) {
      RETURN_IF_ERROR(AuditSystemChange(tx, update, "CREDIT_CAUGHT_UP"));
    }
    RETURN_IF_ERROR(update.Save());
    status = update.Status();
    caught_up = update.caught_up();
    return absl::OkStatus();
  });
  RETURN_IF_ERROR(committed);
  if (metrics_ != nullptr) metrics_->CaughtUp(caught_up);
  RETURN_IF_ERROR(Publish(status));
  return status;
}

absl::Status CreditEngine::AuditSystemChange(CreditTransaction& tx, AccountUpdate& update,
                                             const std::string& action) {
  RequestContext system{Caller{"service:credit", common::v1::ROLE_SERVICE, kCreditSource}, "", ""};
  audit::v1::AuditEvent audit = AuditFor(system, action, "", update);
  (*audit.mutable_details())["policy_version"] = policy_.version();
  return tx.RecordAudit(audit);
}

absl::Status CreditEngine::Publish(const v1::CreditStatus& status) {
  absl::Status published = projection_.Publish({status});
  if (published.ok()) return published;
  if (metrics_ != nullptr) metrics_->ProjectionFailed();
  LogWarning("credit_projection_failed", {{"error", std::string(published.message())}});
  return MakeError(absl::StatusCode::kUnavailable, "PROJECTION_UNAVAILABLE",
                   "the change is committed but its Redis projection failed; retry with the same "
                   "request_id to republish");
}

}  // namespace qunzu::credit
