// Join requests, invitations and the list queries of the groups store.
#include <cppconn/resultset.h>

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/mysql.h"
#include "common/status.h"
#include "services/groups/groups_store.h"
#include "services/groups/store_rows.h"

namespace qunzu::groups {

using namespace store_internal;  // NOLINT(google-build-using-namespace)

absl::StatusOr<v1::JoinRequest> InsertJoinRequest(sql::Connection& conn, v1::JoinRequest request) {
  RETURN_IF_ERROR(Execute(conn,
                          absl::StrCat("INSERT INTO groups_join_requests (", kRequestColumns,
                                       ") VALUES (NULL, ?, ?, ?, ?, 0, '', ?, NULL, ?)"),
                          {request.group_id(), request.applicant_account_id(), request.message(),
                           static_cast<int>(request.state()), FromProtoTime(request.created_at()),
                           FromProtoTime(request.expires_at())})
                      .status());
  ASSIGN_OR_RETURN(uint64_t id, LastInsertId(conn));
  request.set_join_request_id(id);
  return request;
}

absl::StatusOr<v1::JoinRequest> ReadJoinRequest(sql::Connection& conn, uint64_t id,
                                                bool for_update) {
  std::optional<v1::JoinRequest> found;
  RETURN_IF_ERROR(Query(conn,
                        absl::StrCat("SELECT ", kRequestColumns,
                                     " FROM groups_join_requests WHERE join_request_id = ?",
                                     for_update ? " FOR UPDATE" : ""),
                        {id}, [&](const sql::ResultSet& row) -> absl::Status {
                          ASSIGN_OR_RETURN(found, RequestOf(row));
                          return absl::OkStatus();
                        }));
  if (!found) {
    return MakeError(absl::StatusCode::kNotFound, "JOIN_REQUEST_NOT_FOUND", "no such join request");
  }
  return *std::move(found);
}

absl::Status UpdateJoinRequest(sql::Connection& conn, const v1::JoinRequest& request) {
  return Execute(conn,
                 "UPDATE groups_join_requests SET state = ?, decided_by = ?, decision_reason = ?,"
                 " decided_at = ? WHERE join_request_id = ?",
                 {static_cast<int>(request.state()), request.decided_by_account_id(),
                  request.decision_reason(), OptionalTime(request.decided_at()),
                  request.join_request_id()})
      .status();
}

absl::StatusOr<bool> HasPendingJoinRequest(sql::Connection& conn, uint64_t group_id,
                                           uint64_t account_id, absl::Time now) {
  bool found = false;
  RETURN_IF_ERROR(
      Query(conn,
            "SELECT 1 FROM groups_join_requests WHERE group_id = ? AND applicant = ?"
            " AND state = ? AND expires_at > ? LIMIT 1",
            {group_id, account_id, static_cast<int>(v1::JOIN_REQUEST_STATE_PENDING), now},
            [&](const sql::ResultSet&) {
              found = true;
              return absl::OkStatus();
            }));
  return found;
}

absl::StatusOr<std::vector<v1::JoinRequest>> ListJoinRequests(sql::Connection& conn,
                                                              uint64_t group_id, uint64_t applicant,
                                                              v1::JoinRequestState state,
                                                              uint64_t after_id, int limit) {
  std::vector<v1::JoinRequest> out;
  const bool by_group = group_id != 0;
  RETURN_IF_ERROR(Query(
      conn,
      absl::StrCat("SELECT ", kRequestColumns, " FROM groups_join_requests WHERE ",
                   by_group ? "group_id" : "applicant",
                   " = ? AND state = ? AND join_request_id > ? ORDER BY join_request_id LIMIT ?"),
      {by_group ? group_id : applicant, static_cast<int>(state), after_id, limit},
      [&](const sql::ResultSet& row) -> absl::Status {
        ASSIGN_OR_RETURN(v1::JoinRequest r, RequestOf(row));
        out.push_back(std::move(r));
        return absl::OkStatus();
      }));
  return out;
}

absl::StatusOr<v1::Invitation> InsertInvitation(sql::Connection& conn, v1::Invitation invitation) {
  RETURN_IF_ERROR(Execute(conn,
                          "INSERT INTO groups_invitations (group_id, inviter, invitee, used,"
                          " created_at, expires_at) VALUES (?, ?, ?, FALSE, ?, ?)",
                          {invitation.group_id(), invitation.inviter_account_id(),
                           invitation.invitee_account_id(), FromProtoTime(invitation.created_at()),
                           FromProtoTime(invitation.expires_at())})
                      .status());
  ASSIGN_OR_RETURN(uint64_t id, LastInsertId(conn));
  invitation.set_invitation_id(id);
  return invitation;
}

absl::StatusOr<std::optional<v1::Invitation>> ReadInvitation(sql::Connection& conn, uint64_t id) {
  std::optional<v1::Invitation> found;
  absl::Status read =
      Query(conn,
            "SELECT invitation_id, group_id, inviter, invitee, created_at, expires_at"
            " FROM groups_invitations WHERE invitation_id = ? AND used = FALSE",
            {id}, [&](const sql::ResultSet& row) -> absl::Status {
              v1::Invitation inv;
              inv.set_invitation_id(row.getUInt64(1));
              inv.set_group_id(row.getUInt64(2));
              inv.set_inviter_account_id(row.getUInt64(3));
              inv.set_invitee_account_id(row.getUInt64(4));
              RETURN_IF_ERROR(SetTime(row, 5, inv.mutable_created_at()));
              RETURN_IF_ERROR(SetTime(row, 6, inv.mutable_expires_at()));
              found = std::move(inv);
              return absl::OkStatus();
            });
  if (!read.ok()) return read;
  return found;
}

absl::Status MarkInvitationUsed(sql::Connection& conn, uint64_t id) {
  return Execute(conn, "UPDATE groups_invitations SET used = TRUE WHERE invitation_id = ?", {id})
      .status();
}

absl::StatusOr<std::vector<v1::Group>> ListGroups(sql::Connection& conn,
                                                  const v1::ListGroupsRequest& filter,
                                                  uint64_t after_id, int limit) {
  std::string where = "WHERE group_id > ?";
  std::vector<SqlValue> params = {after_id};
  if (filter.state() != v1::GROUP_STATE_UNSPECIFIED) {
    where += " AND state = ?";
    params.emplace_back(static_cast<int>(filter.state()));
  }
  if (filter.category() != common::v1::GROUP_CATEGORY_UNSPECIFIED) {
    where += " AND category = ?";
    params.emplace_back(static_cast<int>(filter.category()));
  }
  if (filter.scale_tier() != common::v1::SCALE_TIER_UNSPECIFIED) {
    where += " AND scale_tier = ?";
    params.emplace_back(static_cast<int>(filter.scale_tier()));
  }
  if (filter.owner_account_id() != 0) {
    where += " AND owner_account_id = ?";
    params.emplace_back(filter.owner_account_id());
  }
  if (filter.has_created_after()) {
    where += " AND created_at >= ?";
    params.emplace_back(FromProtoTime(filter.created_after()));
  }
  if (filter.has_created_before()) {
    where += " AND created_at < ?";
    params.emplace_back(FromProtoTime(filter.created_before()));
  }
  params.emplace_back(limit);
  std::vector<v1::Group> out;
  RETURN_IF_ERROR(Query(conn,
                        absl::StrCat("SELECT ", kGroupColumns, " FROM groups_groups ", where,
                                     " ORDER BY group_id LIMIT ?"),
                        params, [&](const sql::ResultSet& row) -> absl::Status {
                          ASSIGN_OR_RETURN(v1::Group g, GroupOf(row));
                          out.push_back(std::move(g));
                          return absl::OkStatus();
                        }));
  return out;
}

absl::StatusOr<std::vector<v1::Membership>> ListMemberships(sql::Connection& conn,
                                                            uint64_t account_id,
                                                            v1::MemberRole role, uint64_t after_id,
                                                            int limit) {
  std::vector<std::pair<uint64_t, v1::Member>> members;
  std::string where = "WHERE account_id = ? AND group_id > ?";
  std::vector<SqlValue> params = {account_id, after_id};
  if (role != v1::MEMBER_ROLE_UNSPECIFIED) {
    where += " AND role = ?";
    params.emplace_back(static_cast<int>(role));
  }
  params.emplace_back(limit);
  RETURN_IF_ERROR(Query(conn,
                        absl::StrCat("SELECT ", kMemberColumns, " FROM groups_members ", where,
                                     " ORDER BY group_id LIMIT ?"),
                        params, [&](const sql::ResultSet& row) -> absl::Status {
                          ASSIGN_OR_RETURN(v1::Member m, MemberOf(row));
                          members.emplace_back(m.group_id(), std::move(m));
                          return absl::OkStatus();
                        }));
  std::vector<v1::Membership> out;
  for (auto& [group_id, member] : members) {
    ASSIGN_OR_RETURN(v1::Group group, ReadGroup(conn, group_id, false));
    v1::Membership ms;
    *ms.mutable_group() = std::move(group);
    ms.set_role(member.role());
    *ms.mutable_joined_at() = member.joined_at();
    if (member.has_muted_until()) *ms.mutable_muted_until() = member.muted_until();
    out.push_back(std::move(ms));
  }
  return out;
}

}  // namespace qunzu::groups
