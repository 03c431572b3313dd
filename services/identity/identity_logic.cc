#include "services/identity/identity_logic.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/outbox.h"
#include "qunzu/credit/v1/credit.pb.h"
#include "services/identity/agreement_store.h"
#include "services/identity/logic_util.h"
#include "services/identity/validators.h"

namespace qunzu::identity {
namespace {

constexpr int kVerified = v1::VERIFICATION_STATE_VERIFIED;

absl::Status ValidateClientIp(const std::string& ip) {
  return ValidateText(ip, "client_ip", 0, 64);
}

// The evidence of a SubmitRealName request, validated and normalised.
absl::StatusOr<Evidence> EvidenceOf(const v1::SubmitRealNameRequest& req, absl::Time now) {
  Evidence e;
  if (req.has_resident_identity()) {
    e.method = v1::VERIFICATION_METHOD_RESIDENT_ID;
    ASSIGN_OR_RETURN(e.legal_name, ValidateLegalName(req.resident_identity().legal_name(),
                                                     "resident_identity.legal_name"));
    ASSIGN_OR_RETURN(e.resident_id_number,
                     ValidateResidentId(req.resident_identity().resident_id_number(), now,
                                        "resident_identity.resident_id_number"));
    return e;
  }
  if (req.has_real_name_phone()) {
    e.method = v1::VERIFICATION_METHOD_REAL_NAME_PHONE;
    ASSIGN_OR_RETURN(e.phone,
                     ValidatePhone(req.real_name_phone().phone(), "real_name_phone.phone"));
    return e;
  }
  return InvalidField("evidence", "one of resident_identity or real_name_phone is required");
}

// The request as fingerprinted for idempotency: personal fields replaced by
// their blind index, so the idempotency table never holds them.
void Scrub(std::string* field, const PiiCrypto& crypto, absl::string_view kind) {
  if (!field->empty()) *field = absl::BytesToHexString(crypto.BlindIndex(kind, *field));
}

std::string CreditEventPayload(uint64_t account_id, absl::Time now) {
  credit::v1::RecordEventRequest event;
  event.set_request_id(absl::StrCat("identity:verified:", account_id));
  event.set_account_id(account_id);
  event.set_event_type(credit::v1::CREDIT_EVENT_TYPE_IDENTITY_VERIFIED);
  *event.mutable_occurred_at() = ToProto(now);
  event.set_reference(absl::StrCat("account:", account_id));
  event.set_reason("real-name verification");
  return event.SerializeAsString();
}

}  // namespace

absl::StatusOr<v1::CreateAccountResponse> IdentityLogic::CreateAccount(
    const RequestContext& ctx, const v1::CreateAccountRequest& req) {
  RETURN_IF_ERROR(ValidateRequestId(req.request_id()));
  RETURN_IF_ERROR(ValidateText(req.nickname(), "nickname", 1, 32));
  if (!req.phone().empty()) RETURN_IF_ERROR(ValidatePhone(req.phone(), "phone").status());
  RETURN_IF_ERROR(ValidateText(req.platform_user_id(), "platform_user_id", 0, 128));
  RETURN_IF_ERROR(ValidateClientIp(req.client_ip()));
  v1::CreateAccountRequest scrubbed = req;
  Scrub(scrubbed.mutable_phone(), d_.crypto, "phone");
  const absl::Time now = d_.clock.Now();
  ASSIGN_OR_RETURN(
      v1::CreateAccountResponse response, WithTransaction(d_.pool, [&](sql::Connection& conn) {
        return RunIdempotent<v1::CreateAccountResponse>(
            conn, KeyOf(ctx, req.request_id()), scrubbed,
            [&]() -> absl::StatusOr<v1::CreateAccountResponse> {
              absl::StatusOr<uint64_t> id =
                  InsertAccount(conn, req.nickname(), req.platform_user_id(), now);
              if (!id.ok() && id.status().code() == absl::StatusCode::kAlreadyExists) {
                return MakeError(absl::StatusCode::kAlreadyExists, "PLATFORM_USER_ID_TAKEN",
                                 "another account has this platform_user_id");
              }
              RETURN_IF_ERROR(id.status());
              if (!req.phone().empty()) {
                ASSIGN_OR_RETURN(std::string sealed,
                                 d_.crypto.Encrypt(req.phone(), *id, kFieldContactPhone));
                RETURN_IF_ERROR(
                    SetContactPhone(conn, *id, sealed, d_.crypto.BlindIndex("phone", req.phone())));
              }
              RETURN_IF_ERROR(Audit(conn, ctx, now, "ACCOUNT_CREATED", req.request_id(), *id, *id,
                                    {{"contact_phone_given", req.phone().empty() ? "no" : "yes"}}));
              ASSIGN_OR_RETURN(std::optional<AccountRow> row, LoadAccount(conn, *id, false));
              v1::CreateAccountResponse out;
              ASSIGN_OR_RETURN(*out.mutable_account(), ToAccount(conn, *row));
              return out;
            });
      }));
  Project(response.account().account_id());
  return response;
}

absl::StatusOr<v1::GetAccountResponse> IdentityLogic::GetAccount(const RequestContext& /*ctx*/,
                                                                 const v1::GetAccountRequest& req) {
  if (req.key_case() == v1::GetAccountRequest::kAccountId) {
    RETURN_IF_ERROR(Required(req.account_id(), "account_id"));
  } else if (req.key_case() == v1::GetAccountRequest::kPlatformUserId) {
    RETURN_IF_ERROR(ValidateText(req.platform_user_id(), "platform_user_id", 1, 128));
  } else {
    return InvalidField("key", "account_id or platform_user_id is required");
  }
  return WithConnection(
      d_.pool, [&](sql::Connection& conn) -> absl::StatusOr<v1::GetAccountResponse> {
        std::optional<AccountRow> row;
        if (req.key_case() == v1::GetAccountRequest::kAccountId) {
          ASSIGN_OR_RETURN(row, LoadAccount(conn, req.account_id(), false));
        } else {
          ASSIGN_OR_RETURN(row, LoadAccountByPlatformUserId(conn, req.platform_user_id()));
        }
        if (!row && req.key_case() == v1::GetAccountRequest::kAccountId) {
          return AccountNotFound(req.account_id());
        }
        if (!row) {
          return MakeError(absl::StatusCode::kNotFound, "ACCOUNT_NOT_FOUND",
                           "no account has this platform_user_id");
        }
        v1::GetAccountResponse out;
        ASSIGN_OR_RETURN(*out.mutable_account(), ToAccount(conn, *row));
        return out;
      });
}

absl::StatusOr<v1::SubmitRealNameResponse> IdentityLogic::SubmitRealName(
    const RequestContext& ctx, const v1::SubmitRealNameRequest& req) {
  RETURN_IF_ERROR(ValidateRequestId(req.request_id()));
  RETURN_IF_ERROR(Required(req.actor_account_id(), "actor_account_id"));
  const absl::Time now = d_.clock.Now();
  ASSIGN_OR_RETURN(Evidence evidence, EvidenceOf(req, now));
  RETURN_IF_ERROR(ValidateClientIp(req.client_ip()));
  v1::SubmitRealNameRequest scrubbed = req;
  if (scrubbed.has_resident_identity()) {
    Scrub(scrubbed.mutable_resident_identity()->mutable_legal_name(), d_.crypto, "name");
    Scrub(scrubbed.mutable_resident_identity()->mutable_resident_id_number(), d_.crypto, "id");
  } else {
    Scrub(scrubbed.mutable_real_name_phone()->mutable_phone(), d_.crypto, "phone");
  }
  absl::StatusOr<v1::SubmitRealNameResponse> result =
      WithTransaction(d_.pool, [&](sql::Connection& conn) {
        return RunIdempotent<v1::SubmitRealNameResponse>(
            conn, KeyOf(ctx, req.request_id()), scrubbed,
            [&] { return SubmitLocked(conn, ctx, req, evidence); });
      });
  if (d_.metrics != nullptr) {
    d_.metrics->CountVerification(
        evidence.method,
        result.ok() ? result->verification().state() : v1::VERIFICATION_STATE_UNSPECIFIED,
        result.status());
  }
  ASSIGN_OR_RETURN(v1::SubmitRealNameResponse response, std::move(result));
  Project(req.actor_account_id());
  if (response.verification().state() == kVerified && d_.on_credit_event) d_.on_credit_event();
  return response;
}

absl::Status IdentityLogic::CheckAttemptAllowed(AccountRow& row) {
  const absl::Time now = d_.clock.Now();
  if (!row.attempt_window_start || now - *row.attempt_window_start >= d_.options.attempt_window) {
    row.attempt_window_start = now;
    row.attempt_count = 0;
  }
  if (row.attempt_count >= d_.options.attempts_per_window) {
    const absl::Duration wait = *row.attempt_window_start + d_.options.attempt_window - now;
    const int64_t seconds = absl::ToInt64Seconds(absl::Ceil(wait, absl::Seconds(1)));
    return MakeError(absl::StatusCode::kResourceExhausted, "VERIFICATION_RATE_LIMITED",
                     absl::StrCat("too many verification attempts; retry in ", seconds, "s"),
                     {{"retry_after_seconds", absl::StrCat(seconds)}});
  }
  ++row.attempt_count;
  row.last_attempt_at = now;
  return absl::OkStatus();
}

absl::StatusOr<v1::SubmitRealNameResponse> IdentityLogic::SubmitLocked(
    sql::Connection& conn, const RequestContext& ctx, const v1::SubmitRealNameRequest& req,
    const Evidence& evidence) {
  const uint64_t account_id = req.actor_account_id();
  ASSIGN_OR_RETURN(std::optional<AccountRow> row, LoadAccount(conn, account_id, true));
  if (!row) return AccountNotFound(account_id);
  if (row->verification_state == kVerified) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "ALREADY_VERIFIED",
                     "the account is already verified");
  }
  RETURN_IF_ERROR(CheckAttemptAllowed(*row));
  if (evidence.method == v1::VERIFICATION_METHOD_RESIDENT_ID) {
    row->id_index = d_.crypto.BlindIndex("id", evidence.resident_id_number);
    ASSIGN_OR_RETURN(int64_t others, LockAndCountIdNumber(conn, row->id_index, account_id));
    if (others >= d_.options.max_accounts_per_id_number) {
      return MakeError(absl::StatusCode::kResourceExhausted, "ID_NUMBER_ACCOUNT_LIMIT_REACHED",
                       absl::StrCat("this ID number already verified ", others, " accounts"));
    }
  }
  absl::StatusOr<Decision> decision =
      d_.verifier.Verify(evidence, absl::StrCat("identity:", account_id, ":", req.request_id()));
  if (!decision.ok()) {
    LogWarning("verifier_failed", {{"reason", ErrorReason(decision.status())}});
    return MakeError(absl::StatusCode::kUnavailable, "VERIFIER_UNAVAILABLE",
                     "the verification provider could not decide; try again later");
  }
  row->method = evidence.method;
  row->verifier = d_.verifier.name();
  if (decision->match) {
    RETURN_IF_ERROR(StoreVerified(conn, *row, evidence));
    RETURN_IF_ERROR(OutboxWriter()
                        .Add(conn, kCreditTopic, CreditEventPayload(account_id, d_.clock.Now()))
                        .status());
  } else {
    row->verification_state = v1::VERIFICATION_STATE_REJECTED;
    row->rejection_reason = decision->rejection_reason;
    row->legal_name_enc.clear();
    row->resident_id_enc.clear();
    row->verification_phone_enc.clear();
    row->id_index.clear();
  }
  RETURN_IF_ERROR(SaveVerification(conn, *row));
  RETURN_IF_ERROR(Audit(conn, ctx, d_.clock.Now(),
                        decision->match ? "IDENTITY_VERIFIED" : "IDENTITY_REJECTED",
                        req.request_id(), account_id, account_id,
                        {{"method", v1::VerificationMethod_Name(evidence.method)},
                         {"verifier", row->verifier},
                         {"rejection_reason", v1::RejectionReason_Name(decision->rejection_reason)},
                         {"provider_reference", decision->provider_reference}}));
  v1::SubmitRealNameResponse out;
  ASSIGN_OR_RETURN(*out.mutable_verification(), ToVerification(*row, true));
  return out;
}

absl::Status IdentityLogic::StoreVerified(sql::Connection& /*conn*/, AccountRow& row,
                                          const Evidence& evidence) {
  row.verification_state = kVerified;
  row.rejection_reason = 0;
  row.verified_at = d_.clock.Now();
  row.legal_name_enc.clear();
  row.resident_id_enc.clear();
  row.verification_phone_enc.clear();
  if (evidence.method == v1::VERIFICATION_METHOD_RESIDENT_ID) {
    ASSIGN_OR_RETURN(row.legal_name_enc,
                     d_.crypto.Encrypt(evidence.legal_name, row.account_id, kFieldLegalName));
    ASSIGN_OR_RETURN(row.resident_id_enc, d_.crypto.Encrypt(evidence.resident_id_number,
                                                            row.account_id, kFieldResidentId));
  } else {
    row.id_index.clear();
    ASSIGN_OR_RETURN(row.verification_phone_enc,
                     d_.crypto.Encrypt(evidence.phone, row.account_id, kFieldVerificationPhone));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::GetVerificationResponse> IdentityLogic::GetVerification(
    const RequestContext& ctx, const v1::GetVerificationRequest& req) {
  RETURN_IF_ERROR(Required(req.account_id(), "account_id"));
  RETURN_IF_ERROR(CheckOwnAccount(ctx.caller, req.account_id(), req.actor_account_id()));
  return WithConnection(
      d_.pool, [&](sql::Connection& conn) -> absl::StatusOr<v1::GetVerificationResponse> {
        ASSIGN_OR_RETURN(std::optional<AccountRow> row, LoadAccount(conn, req.account_id(), false));
        if (!row) return AccountNotFound(req.account_id());
        v1::GetVerificationResponse out;
        ASSIGN_OR_RETURN(*out.mutable_verification(), ToVerification(*row, true));
        return out;
      });
}

absl::StatusOr<v1::RevealIdentityResponse> IdentityLogic::RevealIdentity(
    const RequestContext& ctx, const v1::RevealIdentityRequest& req) {
  RETURN_IF_ERROR(Required(req.account_id(), "account_id"));
  RETURN_IF_ERROR(ValidateText(req.case_reference(), "case_reference", 1, 128));
  RETURN_IF_ERROR(ValidateText(req.reason(), "reason", 1, 500));
  const absl::Time now = d_.clock.Now();
  absl::StatusOr<v1::RevealIdentityResponse> revealed = WithTransaction(
      d_.pool, [&](sql::Connection& conn) -> absl::StatusOr<v1::RevealIdentityResponse> {
        ASSIGN_OR_RETURN(std::optional<AccountRow> row, LoadAccount(conn, req.account_id(), false));
        if (!row) return AccountNotFound(req.account_id());
        if (row->verification_state != kVerified) {
          return MakeError(absl::StatusCode::kFailedPrecondition, "NOT_VERIFIED",
                           "the account has no verified identity to reveal");
        }
        v1::RevealIdentityResponse out;
        out.set_account_id(row->account_id);
        out.set_method(static_cast<v1::VerificationMethod>(row->method));
        v1::RevealedIdentity* id = out.mutable_identity();
        const std::pair<const std::string*, std::string*> fields[] = {
            {&row->legal_name_enc, id->mutable_legal_name()},
            {&row->resident_id_enc, id->mutable_resident_id_number()},
            {&row->verification_phone_enc, id->mutable_verification_phone()},
            {&row->contact_phone_enc, id->mutable_contact_phone()}};
        const char* names[] = {kFieldLegalName, kFieldResidentId, kFieldVerificationPhone,
                               kFieldContactPhone};
        for (size_t i = 0; i < 4; ++i) {
          if (fields[i].first->empty()) continue;
          ASSIGN_OR_RETURN(*fields[i].second,
                           d_.crypto.Decrypt(*fields[i].first, row->account_id, names[i]));
        }
        if (row->verified_at) *out.mutable_verified_at() = ToProto(*row->verified_at);
        *out.mutable_revealed_at() = ToProto(now);
        RETURN_IF_ERROR(
            Audit(conn, ctx, now, "IDENTITY_REVEALED", "", row->account_id, 0,
                  {{"case_reference", req.case_reference()}, {"reason", req.reason()}}));
        return out;
      });
  if (revealed.ok() && d_.metrics != nullptr) d_.metrics->CountReveal(ctx.caller.role);
  return revealed;
}

absl::StatusOr<v1::Verification> IdentityLogic::ToVerification(const AccountRow& row,
                                                               bool masked) const {
  v1::Verification v;
  v.set_account_id(row.account_id);
  v.set_state(static_cast<v1::VerificationState>(row.verification_state));
  v.set_method(static_cast<v1::VerificationMethod>(row.method));
  v.set_rejection_reason(static_cast<v1::RejectionReason>(row.rejection_reason));
  v.set_verifier(row.verifier);
  if (row.verified_at) *v.mutable_verified_at() = ToProto(*row.verified_at);
  if (row.last_attempt_at) *v.mutable_last_attempt_at() = ToProto(*row.last_attempt_at);
  if (masked && row.verification_state == kVerified) {
    v1::MaskedIdentity* m = v.mutable_masked();
    if (!row.legal_name_enc.empty()) {
      ASSIGN_OR_RETURN(std::string name,
                       d_.crypto.Decrypt(row.legal_name_enc, row.account_id, kFieldLegalName));
      m->set_legal_name(MaskLegalName(name));
    }
    if (!row.resident_id_enc.empty()) {
      ASSIGN_OR_RETURN(std::string id,
                       d_.crypto.Decrypt(row.resident_id_enc, row.account_id, kFieldResidentId));
      m->set_resident_id_number(MaskResidentId(id));
    }
    if (!row.verification_phone_enc.empty()) {
      ASSIGN_OR_RETURN(
          std::string phone,
          d_.crypto.Decrypt(row.verification_phone_enc, row.account_id, kFieldVerificationPhone));
      m->set_phone(MaskPhone(phone));
    }
  }
  return v;
}

absl::StatusOr<v1::Account> IdentityLogic::ToAccount(sql::Connection& conn, const AccountRow& row) {
  v1::Account a;
  a.set_account_id(row.account_id);
  a.set_nickname(row.nickname);
  a.set_verified(row.verification_state == kVerified);
  *a.mutable_created_at() = ToProto(row.created_at);
  ASSIGN_OR_RETURN(std::vector<v1::Agreement> current,
                   CurrentAgreements(conn, d_.clock.Now(), false));
  ASSIGN_OR_RETURN(auto accepted, AcceptedVersions(conn, row.account_id));
  a.set_agreements_current(AcceptedAllCurrent(current, accepted));
  return a;
}

}  // namespace qunzu::identity
