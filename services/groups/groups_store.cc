#include "services/groups/groups_store.h"

#include <cppconn/resultset.h>

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/mysql.h"
#include "common/status.h"
#include "services/groups/group_code.h"
#include "services/groups/store_rows.h"

namespace qunzu::groups {
namespace store_internal {

std::string Str(const sql::ResultSet& row, int column) {
  return std::string(row.getString(static_cast<uint32_t>(column)));
}

absl::StatusOr<std::optional<absl::Time>> TimeAt(const sql::ResultSet& row, int column) {
  if (row.isNull(static_cast<uint32_t>(column))) return std::nullopt;
  ASSIGN_OR_RETURN(absl::Time t, ParseSqlDateTime(Str(row, column)));
  return t;
}

absl::Status SetTime(const sql::ResultSet& row, int column, google::protobuf::Timestamp* out) {
  ASSIGN_OR_RETURN(std::optional<absl::Time> t, TimeAt(row, column));
  if (t) *out = ToProtoTime(*t);
  return absl::OkStatus();
}

SqlValue OptionalTime(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return nullptr;
  return SqlValue(FromProtoTime(t));
}

absl::StatusOr<v1::Group> GroupOf(const sql::ResultSet& row) {
  v1::Group g;
  g.set_group_id(row.getUInt64(1));
  g.set_code(Str(row, 2));
  g.set_name(Str(row, 3));
  g.set_description(Str(row, 4));
  g.set_announcement(Str(row, 5));
  g.set_category(static_cast<common::v1::GroupCategory>(row.getInt(6)));
  g.set_scale_tier(static_cast<common::v1::ScaleTier>(row.getInt(7)));
  g.set_member_cap(row.getUInt(8));
  g.set_member_count(row.getUInt(9));
  g.set_join_policy(static_cast<v1::JoinPolicy>(row.getInt(10)));
  g.set_join_question(Str(row, 11));
  g.set_join_answer(Str(row, 12));
  g.set_state(static_cast<v1::GroupState>(row.getInt(13)));
  g.set_state_reason(Str(row, 14));
  RETURN_IF_ERROR(SetTime(row, 15, g.mutable_rectify_by()));
  RETURN_IF_ERROR(SetTime(row, 16, g.mutable_posting_suspended_until()));
  g.set_disposition_id(row.getUInt64(17));
  g.set_owner_account_id(row.getUInt64(18));
  RETURN_IF_ERROR(SetTime(row, 19, g.mutable_created_at()));
  RETURN_IF_ERROR(SetTime(row, 20, g.mutable_updated_at()));
  return g;
}

absl::StatusOr<v1::Member> MemberOf(const sql::ResultSet& row) {
  v1::Member m;
  m.set_group_id(row.getUInt64(1));
  m.set_account_id(row.getUInt64(2));
  m.set_role(static_cast<v1::MemberRole>(row.getInt(3)));
  m.set_join_method(static_cast<v1::JoinMethod>(row.getInt(4)));
  m.set_admitted_by_account_id(row.getUInt64(5));
  RETURN_IF_ERROR(SetTime(row, 6, m.mutable_joined_at()));
  RETURN_IF_ERROR(SetTime(row, 7, m.mutable_muted_until()));
  return m;
}

absl::StatusOr<v1::JoinRequest> RequestOf(const sql::ResultSet& row) {
  v1::JoinRequest r;
  r.set_join_request_id(row.getUInt64(1));
  r.set_group_id(row.getUInt64(2));
  r.set_applicant_account_id(row.getUInt64(3));
  r.set_message(Str(row, 4));
  r.set_state(static_cast<v1::JoinRequestState>(row.getInt(5)));
  r.set_decided_by_account_id(row.getUInt64(6));
  r.set_decision_reason(Str(row, 7));
  RETURN_IF_ERROR(SetTime(row, 8, r.mutable_created_at()));
  RETURN_IF_ERROR(SetTime(row, 9, r.mutable_decided_at()));
  RETURN_IF_ERROR(SetTime(row, 10, r.mutable_expires_at()));
  return r;
}

absl::StatusOr<std::optional<v1::Group>> FindGroup(sql::Connection& conn, const std::string& where,
                                                   const std::vector<SqlValue>& params) {
  std::optional<v1::Group> found;
  RETURN_IF_ERROR(Query(conn, absl::StrCat("SELECT ", kGroupColumns, " FROM groups_groups ", where),
                        params, [&](const sql::ResultSet& row) -> absl::Status {
                          ASSIGN_OR_RETURN(found, GroupOf(row));
                          return absl::OkStatus();
                        }));
  return found;
}

absl::Status GroupNotFound() {
  return MakeError(absl::StatusCode::kNotFound, "GROUP_NOT_FOUND", "no such group");
}

}  // namespace store_internal

using namespace store_internal;  // NOLINT(google-build-using-namespace)

google::protobuf::Timestamp ToProtoTime(absl::Time time) {
  google::protobuf::Timestamp t;
  const int64_t nanos = absl::ToUnixNanos(time);
  t.set_seconds(nanos / 1000000000);
  t.set_nanos(static_cast<int32_t>(nanos % 1000000000));
  if (t.nanos() < 0) {
    t.set_seconds(t.seconds() - 1);
    t.set_nanos(t.nanos() + 1000000000);
  }
  return t;
}

absl::Time FromProtoTime(const google::protobuf::Timestamp& time) {
  return absl::FromUnixSeconds(time.seconds()) + absl::Nanoseconds(time.nanos());
}

const std::vector<Migration>& GroupsMigrations() {
  static const auto* migrations = new std::vector<Migration>{
      {1,
       "groups, members, accounts, join requests, invitations",
       {R"sql(CREATE TABLE IF NOT EXISTS groups_groups (
  group_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  code CHAR(10) NOT NULL,
  name VARCHAR(200) NOT NULL,
  description TEXT NOT NULL,
  announcement TEXT NOT NULL,
  category INT NOT NULL,
  scale_tier INT NOT NULL,
  member_cap INT UNSIGNED NOT NULL,
  member_count INT UNSIGNED NOT NULL,
  join_policy INT NOT NULL,
  join_question VARCHAR(1000) NOT NULL,
  join_answer VARCHAR(1000) NOT NULL,
  state INT NOT NULL,
  state_reason TEXT NOT NULL,
  rectify_by DATETIME(6) NULL,
  posting_suspended_until DATETIME(6) NULL,
  disposition_id BIGINT UNSIGNED NOT NULL,
  owner_account_id BIGINT UNSIGNED NOT NULL,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  UNIQUE KEY uk_code (code),
  KEY k_owner (owner_account_id, state),
  KEY k_state (state, group_id)
) ENGINE=InnoDB)sql",
        R"sql(CREATE TABLE IF NOT EXISTS groups_members (
  group_id BIGINT UNSIGNED NOT NULL,
  account_id BIGINT UNSIGNED NOT NULL,
  role INT NOT NULL,
  join_method INT NOT NULL,
  admitted_by BIGINT UNSIGNED NOT NULL,
  joined_at DATETIME(6) NOT NULL,
  muted_until DATETIME(6) NULL,
  PRIMARY KEY (group_id, account_id),
  KEY k_account (account_id, group_id)
) ENGINE=InnoDB)sql",
        R"sql(CREATE TABLE IF NOT EXISTS groups_accounts (
  account_id BIGINT UNSIGNED NOT NULL PRIMARY KEY
) ENGINE=InnoDB)sql",
        R"sql(CREATE TABLE IF NOT EXISTS groups_join_requests (
  join_request_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  group_id BIGINT UNSIGNED NOT NULL,
  applicant BIGINT UNSIGNED NOT NULL,
  message VARCHAR(1000) NOT NULL,
  state INT NOT NULL,
  decided_by BIGINT UNSIGNED NOT NULL,
  decision_reason VARCHAR(2000) NOT NULL,
  created_at DATETIME(6) NOT NULL,
  decided_at DATETIME(6) NULL,
  expires_at DATETIME(6) NOT NULL,
  KEY k_group (group_id, state, join_request_id),
  KEY k_applicant (applicant, state, join_request_id)
) ENGINE=InnoDB)sql",
        R"sql(CREATE TABLE IF NOT EXISTS groups_invitations (
  invitation_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  group_id BIGINT UNSIGNED NOT NULL,
  inviter BIGINT UNSIGNED NOT NULL,
  invitee BIGINT UNSIGNED NOT NULL,
  used BOOLEAN NOT NULL,
  created_at DATETIME(6) NOT NULL,
  expires_at DATETIME(6) NOT NULL,
  KEY k_group_invitee (group_id, invitee)
) ENGINE=InnoDB)sql"}},
  };
  return *migrations;
}

absl::StatusOr<v1::Group> ReadGroup(sql::Connection& conn, uint64_t group_id, bool for_update) {
  ASSIGN_OR_RETURN(
      std::optional<v1::Group> group,
      FindGroup(conn, for_update ? "WHERE group_id = ? FOR UPDATE" : "WHERE group_id = ?",
                {group_id}));
  if (!group) return GroupNotFound();
  return *std::move(group);
}

absl::StatusOr<v1::Group> ReadGroupByCode(sql::Connection& conn, const std::string& code) {
  ASSIGN_OR_RETURN(std::optional<v1::Group> group, FindGroup(conn, "WHERE code = ?", {code}));
  if (!group) return GroupNotFound();
  return *std::move(group);
}

absl::StatusOr<v1::Group> InsertGroup(sql::Connection& conn, v1::Group group) {
  for (int attempt = 0;; ++attempt) {
    group.set_code(NewGroupCode());
    absl::StatusOr<int64_t> inserted = Execute(
        conn,
        absl::StrCat("INSERT INTO groups_groups (", kGroupColumns,
                     ") VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        {group.code(), group.name(), group.description(), group.announcement(),
         static_cast<int>(group.category()), static_cast<int>(group.scale_tier()),
         group.member_cap(), group.member_count(), static_cast<int>(group.join_policy()),
         group.join_question(), group.join_answer(), static_cast<int>(group.state()),
         group.state_reason(), OptionalTime(group.rectify_by()),
         OptionalTime(group.posting_suspended_until()), group.disposition_id(),
         group.owner_account_id(), FromProtoTime(group.created_at()),
         FromProtoTime(group.updated_at())});
    if (inserted.ok()) break;
    // A code collision fails only the statement; draw another code.
    if (ErrorReason(inserted.status()) != kMysqlDuplicate || attempt >= 5) {
      return inserted.status();
    }
  }
  ASSIGN_OR_RETURN(uint64_t id, LastInsertId(conn));
  group.set_group_id(id);
  return group;
}

void Touch(v1::Group& group, absl::Time now) {
  const absl::Time previous = FromProtoTime(group.updated_at());
  *group.mutable_updated_at() = ToProtoTime(std::max(now, previous + absl::Microseconds(1)));
}

absl::Status UpdateGroup(sql::Connection& conn, const v1::Group& group) {
  return Execute(conn,
                 "UPDATE groups_groups SET name = ?, description = ?, announcement = ?,"
                 " scale_tier = ?, member_cap = ?, member_count = ?, join_policy = ?,"
                 " join_question = ?, join_answer = ?, state = ?, state_reason = ?,"
                 " rectify_by = ?, posting_suspended_until = ?, disposition_id = ?,"
                 " owner_account_id = ?, updated_at = ? WHERE group_id = ?",
                 {group.name(), group.description(), group.announcement(),
                  static_cast<int>(group.scale_tier()), group.member_cap(), group.member_count(),
                  static_cast<int>(group.join_policy()), group.join_question(), group.join_answer(),
                  static_cast<int>(group.state()), group.state_reason(),
                  OptionalTime(group.rectify_by()), OptionalTime(group.posting_suspended_until()),
                  group.disposition_id(), group.owner_account_id(),
                  FromProtoTime(group.updated_at()), group.group_id()})
      .status();
}

absl::Status LockAccount(sql::Connection& conn, uint64_t account_id) {
  // One statement that creates the row or, when it exists, takes its
  // exclusive lock at once. INSERT IGNORE followed by SELECT ... FOR UPDATE
  // would first take a shared lock on an existing row, and racing
  // transactions that each hold it and each want the exclusive one deadlock.
  return Execute(conn,
                 "INSERT INTO groups_accounts (account_id) VALUES (?)"
                 " ON DUPLICATE KEY UPDATE account_id = account_id",
                 {account_id})
      .status();
}

absl::StatusOr<uint32_t> CountCreated(sql::Connection& conn, uint64_t account_id) {
  uint32_t count = 0;
  RETURN_IF_ERROR(Query(conn,
                        absl::StrCat("SELECT COUNT(*) FROM groups_groups WHERE owner_account_id = ?"
                                     " AND state IN ",
                                     kLiveStates),
                        {account_id}, [&](const sql::ResultSet& row) {
                          count = row.getUInt(1);
                          return absl::OkStatus();
                        }));
  return count;
}

absl::StatusOr<uint32_t> CountJoined(sql::Connection& conn, uint64_t account_id) {
  uint32_t count = 0;
  RETURN_IF_ERROR(Query(conn,
                        absl::StrCat("SELECT COUNT(*) FROM groups_members m JOIN groups_groups g"
                                     " ON g.group_id = m.group_id WHERE m.account_id = ?"
                                     " AND m.role <> ? AND g.state IN ",
                                     kLiveStates),
                        {account_id, static_cast<int>(v1::MEMBER_ROLE_OWNER)},
                        [&](const sql::ResultSet& row) {
                          count = row.getUInt(1);
                          return absl::OkStatus();
                        }));
  return count;
}

absl::StatusOr<std::optional<v1::Member>> ReadMember(sql::Connection& conn, uint64_t group_id,
                                                     uint64_t account_id) {
  std::optional<v1::Member> found;
  RETURN_IF_ERROR(Query(conn,
                        absl::StrCat("SELECT ", kMemberColumns,
                                     " FROM groups_members WHERE group_id = ? AND account_id = ?"),
                        {group_id, account_id}, [&](const sql::ResultSet& row) -> absl::Status {
                          ASSIGN_OR_RETURN(found, MemberOf(row));
                          return absl::OkStatus();
                        }));
  return found;
}

absl::Status InsertMember(sql::Connection& conn, const v1::Member& member) {
  return Execute(conn,
                 absl::StrCat("INSERT INTO groups_members (", kMemberColumns,
                              ") VALUES (?, ?, ?, ?, ?, ?, ?)"),
                 {member.group_id(), member.account_id(), static_cast<int>(member.role()),
                  static_cast<int>(member.join_method()), member.admitted_by_account_id(),
                  FromProtoTime(member.joined_at()), OptionalTime(member.muted_until())})
      .status();
}

absl::Status UpdateMember(sql::Connection& conn, const v1::Member& member) {
  return Execute(conn,
                 "UPDATE groups_members SET role = ?, muted_until = ?"
                 " WHERE group_id = ? AND account_id = ?",
                 {static_cast<int>(member.role()), OptionalTime(member.muted_until()),
                  member.group_id(), member.account_id()})
      .status();
}

absl::Status DeleteMember(sql::Connection& conn, uint64_t group_id, uint64_t account_id) {
  return Execute(conn, "DELETE FROM groups_members WHERE group_id = ? AND account_id = ?",
                 {group_id, account_id})
      .status();
}

absl::Status DeleteAllMembers(sql::Connection& conn, uint64_t group_id) {
  return Execute(conn, "DELETE FROM groups_members WHERE group_id = ?", {group_id}).status();
}

absl::StatusOr<uint32_t> CountAdmins(sql::Connection& conn, uint64_t group_id) {
  uint32_t count = 0;
  RETURN_IF_ERROR(Query(conn, "SELECT COUNT(*) FROM groups_members WHERE group_id = ? AND role = ?",
                        {group_id, static_cast<int>(v1::MEMBER_ROLE_ADMIN)},
                        [&](const sql::ResultSet& row) {
                          count = row.getUInt(1);
                          return absl::OkStatus();
                        }));
  return count;
}

absl::StatusOr<std::vector<v1::Member>> ListMembers(sql::Connection& conn, uint64_t group_id,
                                                    v1::MemberRole role, uint64_t offset,
                                                    int limit) {
  std::vector<v1::Member> out;
  std::vector<SqlValue> params = {group_id};
  std::string where = "WHERE group_id = ?";
  if (role != v1::MEMBER_ROLE_UNSPECIFIED) {
    where += " AND role = ?";
    params.emplace_back(static_cast<int>(role));
  }
  params.emplace_back(limit);
  params.emplace_back(offset);
  RETURN_IF_ERROR(Query(conn,
                        absl::StrCat("SELECT ", kMemberColumns, " FROM groups_members ", where,
                                     " ORDER BY role, joined_at, account_id LIMIT ? OFFSET ?"),
                        params, [&](const sql::ResultSet& row) -> absl::Status {
                          ASSIGN_OR_RETURN(v1::Member m, MemberOf(row));
                          out.push_back(std::move(m));
                          return absl::OkStatus();
                        }));
  return out;
}

}  // namespace qunzu::groups
