#include "services/identity/logic_util.h"

namespace qunzu::identity {

absl::Status RequireActorForPlatform(const Caller& caller, uint64_t actor) {
  if (caller.role == common::v1::ROLE_PLATFORM && actor == 0) {
    return InvalidField("actor_account_id", "is required when the platform calls");
  }
  return absl::OkStatus();
}

absl::Status CheckOwnAccount(const Caller& caller, uint64_t account_id, uint64_t actor) {
  RETURN_IF_ERROR(RequireActorForPlatform(caller, actor));
  if (caller.role == common::v1::ROLE_PLATFORM && actor != account_id) {
    return MakeError(absl::StatusCode::kPermissionDenied, "NOT_OWN_ACCOUNT",
                     "the platform may read only the acting user's own account");
  }
  return absl::OkStatus();
}

absl::Status Audit(sql::Connection& conn, const RequestContext& ctx, absl::Time now,
                   absl::string_view action, const std::string& request_id, uint64_t account_id,
                   uint64_t actor_account_id, const std::map<std::string, std::string>& details) {
  audit::v1::AuditEvent event = AuditEventFor(ctx.caller, ctx.peer, ctx.method, action, request_id);
  event.set_service("identity");
  *event.mutable_time() = ToProto(now);
  event.set_actor_account_id(actor_account_id);
  if (account_id != 0) {
    audit::v1::Subject* subject = event.add_subjects();
    subject->set_kind(audit::v1::SUBJECT_KIND_ACCOUNT);
    subject->set_id(account_id);
  }
  for (const auto& [key, value] : details) (*event.mutable_details())[key] = value;
  return RecordAuditEvent(conn, event).status();
}

}  // namespace qunzu::identity
