// Helpers shared by the groups logic files: idempotent transactions, audit
// events, role checks.
#ifndef QUNZU_SERVICES_GROUPS_LOGIC_UTIL_H_
#define QUNZU_SERVICES_GROUPS_LOGIC_UTIL_H_

#include <cppconn/connection.h>

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/audit_outbox.h"
#include "common/idempotency.h"
#include "common/mysql_pool.h"
#include "common/status.h"
#include "services/groups/groups_logic.h"
#include "services/groups/groups_store.h"

namespace qunzu::groups::internal {

// Runs body at most once per request_id, in one transaction.
template <typename Response, typename Request, typename Body>
absl::StatusOr<Response> Mutate(MysqlPool& mysql, const RequestContext& ctx, const Request& request,
                                Body body) {
  IdempotencyKey key{ctx.caller.principal, ctx.method, request.request_id()};
  return WithTransaction(mysql, [&](sql::Connection& conn) -> absl::StatusOr<Response> {
    return RunIdempotent<Response>(conn, key, request,
                                   [&]() -> absl::StatusOr<Response> { return body(conn); });
  });
}

// Records the audit event of a change to a group in conn's transaction.
inline absl::Status Audit(sql::Connection& conn, const RequestContext& ctx,
                          absl::string_view action, const std::string& request_id, uint64_t actor,
                          uint64_t group_id, uint64_t target_account = 0,
                          const std::map<std::string, std::string>& details = {}) {
  // The audit log takes UPPER_SNAKE actions: "group.set_state" is
  // recorded as GROUP_SET_STATE (a dotted name made audit refuse the batch).
  std::string upper_snake(action);
  for (char& c : upper_snake) c = c == '.' ? '_' : absl::ascii_toupper(c);
  audit::v1::AuditEvent event =
      AuditEventFor(ctx.caller, ctx.peer, ctx.method, upper_snake, request_id);
  event.set_service("groups");
  event.set_actor_account_id(actor);
  if (group_id != 0) {
    audit::v1::Subject* s = event.add_subjects();
    s->set_kind(audit::v1::SUBJECT_KIND_GROUP);
    s->set_id(group_id);
  }
  if (target_account != 0) {
    audit::v1::Subject* s = event.add_subjects();
    s->set_kind(audit::v1::SUBJECT_KIND_ACCOUNT);
    s->set_id(target_account);
  }
  for (const auto& [k, v] : details) (*event.mutable_details())[k] = v;
  return RecordAuditEvent(conn, event).status();
}

inline bool IsLive(v1::GroupState s) {
  return s == v1::GROUP_STATE_ACTIVE || s == v1::GROUP_STATE_WARNED ||
         s == v1::GROUP_STATE_POSTING_SUSPENDED;
}

// FAILED_PRECONDITION unless the group takes changes and joins.
inline absl::Status RequireOpen(const v1::Group& g) {
  if (g.state() == v1::GROUP_STATE_CLOSED) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "GROUP_CLOSED",
                     "the group was closed by a disposition");
  }
  if (g.state() == v1::GROUP_STATE_DISSOLVED) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "GROUP_DISSOLVED",
                     "the group was dissolved");
  }
  if (!IsLive(g.state())) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "GROUP_NOT_ACTIVE",
                     "the group is not active");
  }
  return absl::OkStatus();
}

// The actor's membership, or PERMISSION_DENIED `reason`.
inline absl::StatusOr<v1::Member> RequireMember(sql::Connection& conn, uint64_t group_id,
                                                uint64_t account_id, const char* reason) {
  ASSIGN_OR_RETURN(std::optional<v1::Member> m, ReadMember(conn, group_id, account_id));
  if (!m) {
    return MakeError(absl::StatusCode::kPermissionDenied, reason,
                     "the acting account may not do this in the group");
  }
  return *std::move(m);
}

inline absl::StatusOr<v1::Member> RequireAdmin(sql::Connection& conn, uint64_t group_id,
                                               uint64_t account_id) {
  ASSIGN_OR_RETURN(v1::Member m, RequireMember(conn, group_id, account_id, "NOT_GROUP_ADMIN"));
  if (m.role() != v1::MEMBER_ROLE_OWNER && m.role() != v1::MEMBER_ROLE_ADMIN) {
    return MakeError(absl::StatusCode::kPermissionDenied, "NOT_GROUP_ADMIN",
                     "only the owner or an admin may do this");
  }
  return m;
}

// A blacklisted account may not act in groups at all (R11.3).
// An account that has not accepted the agreements in force may not create
// or join groups (R5.4).
inline absl::Status RequireAgreementsAccepted(const AccountView& view) {
  if (!view.agreements_accepted) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "AGREEMENT_NOT_ACCEPTED",
                     "the account has not accepted the service agreement and platform "
                     "convention in force");
  }
  return absl::OkStatus();
}

inline absl::Status RequireNotBlacklisted(const AccountView& view) {
  if (view.blacklisted) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "ACCOUNT_BLACKLISTED",
                     "the account is blacklisted");
  }
  return absl::OkStatus();
}

// A blacklisted group takes no members (R11.3); fails closed.
inline absl::Status RequireGroupNotBlacklisted(AccountReader& reader, uint64_t group_id) {
  ASSIGN_OR_RETURN(bool blacklisted, reader.GroupBlacklisted(group_id));
  if (blacklisted) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "GROUP_BLACKLISTED",
                     "the group is blacklisted and takes no members");
  }
  return absl::OkStatus();
}

// The owner's and admins' powers are suspended while their credit
// entitlement may_be_admin is off, while a SUSPEND_ADMIN disposition is in
// force (R11.2), and while the account is blacklisted (R11.3).
inline absl::Status RequireAdminRights(const v1::Member& actor, const AccountView& view) {
  if (actor.role() == v1::MEMBER_ROLE_MEMBER) return absl::OkStatus();
  RETURN_IF_ERROR(RequireNotBlacklisted(view));
  if (!view.may_be_admin || view.admin_suspended) {
    return MakeError(absl::StatusCode::kPermissionDenied, "ADMIN_RIGHTS_SUSPENDED",
                     "the acting account's admin rights are suspended");
  }
  return absl::OkStatus();
}

inline absl::StatusOr<v1::Member> RequireOwner(sql::Connection& conn, uint64_t group_id,
                                               uint64_t account_id) {
  ASSIGN_OR_RETURN(v1::Member m, RequireMember(conn, group_id, account_id, "NOT_GROUP_OWNER"));
  if (m.role() != v1::MEMBER_ROLE_OWNER) {
    return MakeError(absl::StatusCode::kPermissionDenied, "NOT_GROUP_OWNER",
                     "only the owner may do this");
  }
  return m;
}

// The target must be a member the actor outranks (owner > admin > member).
inline absl::StatusOr<v1::Member> RequireOutranked(sql::Connection& conn, const v1::Member& actor,
                                                   uint64_t target_id) {
  ASSIGN_OR_RETURN(std::optional<v1::Member> target, ReadMember(conn, actor.group_id(), target_id));
  if (!target) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "NOT_GROUP_MEMBER",
                     "the target account is not a member of the group");
  }
  // Role enum values order by rank: OWNER(1) < ADMIN(2) < MEMBER(3).
  if (static_cast<int>(target->role()) <= static_cast<int>(actor.role())) {
    return MakeError(absl::StatusCode::kPermissionDenied, "TARGET_OUTRANKS_ACTOR",
                     "the target's role is not below the actor's");
  }
  return *std::move(target);
}

}  // namespace qunzu::groups::internal

#endif  // QUNZU_SERVICES_GROUPS_LOGIC_UTIL_H_
