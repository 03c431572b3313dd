// IdentityLogic: agreements (R5.4), projections and re-encryption.
#include <openssl/sha.h>

#include "absl/strings/str_cat.h"
#include "common/idempotency.h"
#include "common/log.h"
#include "services/identity/agreement_store.h"
#include "services/identity/identity_logic.h"
#include "services/identity/logic_util.h"
#include "services/identity/validators.h"

namespace qunzu::identity {
namespace {

constexpr size_t kMaxBodyBytes = 1 << 20;

std::string Sha256(const std::string& data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return std::string(reinterpret_cast<char*>(digest), sizeof(digest));
}

absl::Status ValidateKind(v1::AgreementKind kind) {
  if (kind != v1::AGREEMENT_KIND_SERVICE_AGREEMENT &&
      kind != v1::AGREEMENT_KIND_PLATFORM_CONVENTION) {
    return InvalidField("kind", "must be SERVICE_AGREEMENT or PLATFORM_CONVENTION");
  }
  return absl::OkStatus();
}

absl::Status ValidatePublish(const v1::PublishAgreementRequest& req) {
  RETURN_IF_ERROR(ValidateRequestId(req.request_id()));
  RETURN_IF_ERROR(ValidateKind(req.kind()));
  RETURN_IF_ERROR(ValidateText(req.label(), "label", 1, 64));
  RETURN_IF_ERROR(ValidateText(req.title(), "title", 1, 200));
  if (req.body().size() > kMaxBodyBytes) return InvalidField("body", "is larger than 1 MiB");
  RETURN_IF_ERROR(ValidateText(req.body(), "body", 1, kMaxBodyBytes, true));
  if (req.has_effective_at() &&
      (req.effective_at().seconds() < 0 || req.effective_at().seconds() > 253402300799 ||
       req.effective_at().nanos() < 0 || req.effective_at().nanos() > 999999999)) {
    return InvalidField("effective_at", "is not a valid timestamp");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::PublishAgreementResponse> IdentityLogic::PublishAgreement(
    const RequestContext& ctx, const v1::PublishAgreementRequest& req) {
  RETURN_IF_ERROR(ValidatePublish(req));
  const absl::Time now = d_.clock.Now();
  const absl::Time effective = req.has_effective_at() ? FromProto(req.effective_at()) : now;
  ASSIGN_OR_RETURN(
      v1::PublishAgreementResponse response, WithTransaction(d_.pool, [&](sql::Connection& conn) {
        return RunIdempotent<v1::PublishAgreementResponse>(
            conn, KeyOf(ctx, req.request_id()), req,
            [&]() -> absl::StatusOr<v1::PublishAgreementResponse> {
              // A minute of grace for clock skew between the operator and us.
              if (effective < now - absl::Minutes(1)) {
                return MakeError(absl::StatusCode::kFailedPrecondition, "EFFECTIVE_TIME_IN_PAST",
                                 "effective_at must not be in the past");
              }
              v1::PublishAgreementResponse out;
              v1::Agreement* a = out.mutable_agreement();
              a->set_kind(req.kind());
              ASSIGN_OR_RETURN(uint32_t version, NextAgreementVersion(conn, req.kind()));
              a->set_version(version);
              a->set_label(req.label());
              a->set_title(req.title());
              a->set_body(req.body());
              a->set_body_sha256(Sha256(req.body()));
              *a->mutable_published_at() = ToProto(now);
              *a->mutable_effective_at() = ToProto(std::max(effective, now));
              a->set_published_by(ctx.caller.principal);
              RETURN_IF_ERROR(InsertAgreement(conn, *a, now, std::max(effective, now)));
              RETURN_IF_ERROR(Audit(conn, ctx, now, "AGREEMENT_PUBLISHED", req.request_id(), 0, 0,
                                    {{"kind", v1::AgreementKind_Name(req.kind())},
                                     {"version", absl::StrCat(version)},
                                     {"label", req.label()}}));
              return out;
            });
      }));
  if (absl::Status status = ProjectAgreements(); !status.ok()) {
    // The next start's rebuild repairs it; until then the hot path keeps
    // the versions it had (or, with none, fails closed).
    if (d_.metrics != nullptr) d_.metrics->CountProjectionFailure();
    LogWarning("agreement_projection_write_failed", {{"reason", ErrorReason(status)}});
  }
  return response;
}

absl::StatusOr<v1::AcceptAgreementResponse> IdentityLogic::AcceptAgreement(
    const RequestContext& ctx, const v1::AcceptAgreementRequest& req) {
  RETURN_IF_ERROR(ValidateRequestId(req.request_id()));
  RETURN_IF_ERROR(Required(req.actor_account_id(), "actor_account_id"));
  RETURN_IF_ERROR(ValidateKind(req.kind()));
  RETURN_IF_ERROR(Required(req.version(), "version"));
  if (req.body_sha256().size() != 32) return InvalidField("body_sha256", "must be 32 bytes");
  RETURN_IF_ERROR(ValidateText(req.client_ip(), "client_ip", 0, 64));
  const absl::Time now = d_.clock.Now();
  ASSIGN_OR_RETURN(
      v1::AcceptAgreementResponse response, WithTransaction(d_.pool, [&](sql::Connection& conn) {
        return RunIdempotent<v1::AcceptAgreementResponse>(
            conn, KeyOf(ctx, req.request_id()), req,
            [&]() -> absl::StatusOr<v1::AcceptAgreementResponse> {
              ASSIGN_OR_RETURN(std::optional<AccountRow> row,
                               LoadAccount(conn, req.actor_account_id(), true));
              if (!row) return AccountNotFound(req.actor_account_id());
              ASSIGN_OR_RETURN(std::optional<v1::Agreement> agreement,
                               LoadAgreement(conn, req.kind(), req.version()));
              if (!agreement) {
                return MakeError(absl::StatusCode::kNotFound, "AGREEMENT_NOT_FOUND",
                                 "no such agreement version");
              }
              ASSIGN_OR_RETURN(std::vector<v1::Agreement> current,
                               CurrentAgreements(conn, now, false));
              for (const v1::Agreement& c : current) {
                if (c.kind() == req.kind() && c.version() > req.version()) {
                  return MakeError(absl::StatusCode::kFailedPrecondition, "AGREEMENT_SUPERSEDED",
                                   absl::StrCat("version ", c.version(), " is current"));
                }
              }
              if (agreement->body_sha256() != req.body_sha256()) {
                return MakeError(absl::StatusCode::kFailedPrecondition, "AGREEMENT_DIGEST_MISMATCH",
                                 "body_sha256 does not match the agreement text");
              }
              v1::Acceptance wanted;
              wanted.set_account_id(req.actor_account_id());
              wanted.set_kind(req.kind());
              wanted.set_version(req.version());
              wanted.set_client_ip(req.client_ip());
              v1::AcceptAgreementResponse out;
              ASSIGN_OR_RETURN(*out.mutable_acceptance(), AcceptOnce(conn, wanted, now));
              RETURN_IF_ERROR(Audit(conn, ctx, now, "AGREEMENT_ACCEPTED", req.request_id(),
                                    req.actor_account_id(), req.actor_account_id(),
                                    {{"kind", v1::AgreementKind_Name(req.kind())},
                                     {"version", absl::StrCat(req.version())}}));
              return out;
            });
      }));
  Project(req.actor_account_id());
  return response;
}

absl::StatusOr<v1::GetAgreementStatusResponse> IdentityLogic::GetAgreementStatus(
    const RequestContext& ctx, const v1::GetAgreementStatusRequest& req) {
  if (req.account_id() != 0) {
    RETURN_IF_ERROR(CheckOwnAccount(ctx.caller, req.account_id(), req.actor_account_id()));
  }
  return WithConnection(
      d_.pool, [&](sql::Connection& conn) -> absl::StatusOr<v1::GetAgreementStatusResponse> {
        v1::GetAgreementStatusResponse out;
        ASSIGN_OR_RETURN(std::vector<v1::Agreement> current,
                         CurrentAgreements(conn, d_.clock.Now(), req.include_body()));
        for (v1::Agreement& a : current) *out.add_current() = std::move(a);
        if (req.account_id() == 0) return out;
        ASSIGN_OR_RETURN(std::optional<AccountRow> row, LoadAccount(conn, req.account_id(), false));
        if (!row) return AccountNotFound(req.account_id());
        ASSIGN_OR_RETURN(std::vector<v1::Acceptance> list, ListAcceptances(conn, req.account_id()));
        for (v1::Acceptance& a : list) *out.add_acceptances() = std::move(a);
        ASSIGN_OR_RETURN(auto accepted, AcceptedVersions(conn, req.account_id()));
        out.set_accepted_current(AcceptedAllCurrent(
            std::vector<v1::Agreement>(out.current().begin(), out.current().end()), accepted));
        return out;
      });
}

void IdentityLogic::Project(uint64_t account_id) {
  if (d_.projections == nullptr) return;
  absl::Status status = WithConnection(d_.pool, [&](sql::Connection& conn) -> absl::Status {
    ASSIGN_OR_RETURN(std::optional<AccountRow> row, LoadAccount(conn, account_id, false));
    if (!row) return absl::OkStatus();
    ASSIGN_OR_RETURN(auto accepted, AcceptedVersions(conn, account_id));
    return d_.projections->Write(
        {{account_id, row->verification_state == v1::VERIFICATION_STATE_VERIFIED, row->state,
          accepted, row->nickname}});
  });
  if (!status.ok()) {
    if (d_.metrics != nullptr) d_.metrics->CountProjectionFailure();
    LogWarning("projection_write_failed",
               {{"account_id", account_id}, {"reason", ErrorReason(status)}});
  }
}

absl::Status IdentityLogic::ProjectAgreements() {
  if (d_.projections == nullptr) return absl::OkStatus();
  PlatformAgreements agreements;
  const absl::Time now = d_.clock.Now();
  RETURN_IF_ERROR(WithConnection(d_.pool, [&](sql::Connection& conn) -> absl::Status {
    ASSIGN_OR_RETURN(std::vector<v1::Agreement> current, CurrentAgreements(conn, now, false));
    for (const v1::Agreement& a : current) agreements.current[a.kind()] = a.version();
    ASSIGN_OR_RETURN(std::vector<v1::Agreement> pending, PendingAgreements(conn, now));
    for (const v1::Agreement& a : pending) {
      agreements.next[a.kind()] = {a.version(), FromProto(a.effective_at())};
    }
    return absl::OkStatus();
  }));
  return d_.projections->WritePlatformAgreements(agreements);
}

absl::Status IdentityLogic::RebuildProjections() {
  if (d_.projections == nullptr) return absl::OkStatus();
  RETURN_IF_ERROR(ProjectAgreements());
  uint64_t after = 0;
  while (true) {
    std::vector<AccountProjection> batch;
    RETURN_IF_ERROR(WithConnection(d_.pool, [&](sql::Connection& conn) -> absl::Status {
      ASSIGN_OR_RETURN(std::vector<AccountRow> rows, ListAccounts(conn, after, 500));
      for (const AccountRow& row : rows) {
        ASSIGN_OR_RETURN(auto accepted, AcceptedVersions(conn, row.account_id));
        batch.push_back({row.account_id, row.verification_state == v1::VERIFICATION_STATE_VERIFIED,
                         row.state, accepted, row.nickname});
      }
      return absl::OkStatus();
    }));
    if (batch.empty()) return absl::OkStatus();
    RETURN_IF_ERROR(d_.projections->Write(batch));
    after = batch.back().account_id;
  }
}

absl::StatusOr<int64_t> IdentityLogic::ReencryptAll() {
  const uint32_t newest = d_.crypto.newest_version();
  int64_t rewritten = 0;
  uint64_t after = 0;
  while (true) {
    ASSIGN_OR_RETURN(std::vector<AccountRow> page,
                     WithConnection(d_.pool, [&](sql::Connection& conn) {
                       return ListAccounts(conn, after, 200);
                     }));
    if (page.empty()) return rewritten;
    after = page.back().account_id;
    for (const AccountRow& listed : page) {
      ASSIGN_OR_RETURN(bool changed,
                       WithTransaction(d_.pool, [&](sql::Connection& conn) -> absl::StatusOr<bool> {
                         ASSIGN_OR_RETURN(std::optional<AccountRow> row,
                                          LoadAccount(conn, listed.account_id, true));
                         if (!row) return false;
                         bool changed = false;
                         const std::pair<std::string*, const char*> fields[] = {
                             {&row->contact_phone_enc, kFieldContactPhone},
                             {&row->legal_name_enc, kFieldLegalName},
                             {&row->resident_id_enc, kFieldResidentId},
                             {&row->verification_phone_enc, kFieldVerificationPhone}};
                         for (const auto& [sealed, field] : fields) {
                           if (sealed->empty() || PiiCrypto::VersionOf(*sealed) == newest) continue;
                           ASSIGN_OR_RETURN(std::string plain,
                                            d_.crypto.Decrypt(*sealed, row->account_id, field));
                           ASSIGN_OR_RETURN(*sealed,
                                            d_.crypto.Encrypt(plain, row->account_id, field));
                           changed = true;
                         }
                         if (changed) RETURN_IF_ERROR(SaveCiphertexts(conn, *row));
                         return changed;
                       }));
      if (changed) ++rewritten;
    }
  }
}

}  // namespace qunzu::identity
