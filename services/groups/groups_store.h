// The groups schema (MySQL is the truth) and the statements on it, each in
// the caller's open transaction. Caps are guarded by row locks: the group
// row (member cap) and the account's row in groups_accounts (created and
// joined caps), always taken group first, then accounts.
#ifndef QUNZU_SERVICES_GROUPS_GROUPS_STORE_H_
#define QUNZU_SERVICES_GROUPS_GROUPS_STORE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/migrations.h"
#include "qunzu/groups/v1/groups.pb.h"

namespace sql {
class Connection;
}

namespace qunzu::groups {

const std::vector<Migration>& GroupsMigrations();

google::protobuf::Timestamp ToProtoTime(absl::Time time);
absl::Time FromProtoTime(const google::protobuf::Timestamp& time);

// NOT_FOUND GROUP_NOT_FOUND when missing. `for_update` locks the row.
absl::StatusOr<v1::Group> ReadGroup(sql::Connection& conn, uint64_t group_id, bool for_update);
absl::StatusOr<v1::Group> ReadGroupByCode(sql::Connection& conn, const std::string& code);
// Inserts with a fresh random code (retried on a code collision); returns
// the group with id and code set.
absl::StatusOr<v1::Group> InsertGroup(sql::Connection& conn, v1::Group group);
// Sets updated_at to `now`, or 1 µs past its previous value when that is
// not earlier: on a row read FOR UPDATE this orders the versions of a group
// by commit, so the projection can refuse to go back to an older one.
void Touch(v1::Group& group, absl::Time now);

// Writes every mutable column of the group.
absl::Status UpdateGroup(sql::Connection& conn, const v1::Group& group);

// Locks (creating if needed) the account's cap row.
absl::Status LockAccount(sql::Connection& conn, uint64_t account_id);
// Owned groups that count toward the created cap (not dissolved, rejected).
absl::StatusOr<uint32_t> CountCreated(sql::Connection& conn, uint64_t account_id);
// Memberships other than ownerships in live groups (the joined cap).
absl::StatusOr<uint32_t> CountJoined(sql::Connection& conn, uint64_t account_id);

absl::StatusOr<std::optional<v1::Member>> ReadMember(sql::Connection& conn, uint64_t group_id,
                                                     uint64_t account_id);
absl::Status InsertMember(sql::Connection& conn, const v1::Member& member);
absl::Status UpdateMember(sql::Connection& conn, const v1::Member& member);
absl::Status DeleteMember(sql::Connection& conn, uint64_t group_id, uint64_t account_id);
absl::Status DeleteAllMembers(sql::Connection& conn, uint64_t group_id);
absl::StatusOr<uint32_t> CountAdmins(sql::Connection& conn, uint64_t group_id);
// Members ordered owner, admins, members, then by join time and account id;
// starting after position `offset`.
absl::StatusOr<std::vector<v1::Member>> ListMembers(sql::Connection& conn, uint64_t group_id,
                                                    v1::MemberRole role, uint64_t offset,
                                                    int limit);

absl::StatusOr<v1::JoinRequest> InsertJoinRequest(sql::Connection& conn, v1::JoinRequest request);
absl::StatusOr<v1::JoinRequest> ReadJoinRequest(sql::Connection& conn, uint64_t id,
                                                bool for_update);
absl::Status UpdateJoinRequest(sql::Connection& conn, const v1::JoinRequest& request);
absl::StatusOr<bool> HasPendingJoinRequest(sql::Connection& conn, uint64_t group_id,
                                           uint64_t account_id, absl::Time now);
// Requests of a group (group_id != 0) or of an applicant, id > after_id.
absl::StatusOr<std::vector<v1::JoinRequest>> ListJoinRequests(sql::Connection& conn,
                                                              uint64_t group_id, uint64_t applicant,
                                                              v1::JoinRequestState state,
                                                              uint64_t after_id, int limit);

absl::StatusOr<v1::Invitation> InsertInvitation(sql::Connection& conn, v1::Invitation invitation);
absl::StatusOr<std::optional<v1::Invitation>> ReadInvitation(sql::Connection& conn, uint64_t id);
absl::Status MarkInvitationUsed(sql::Connection& conn, uint64_t id);

// Groups matching the filters, group_id > after_id, oldest first.
absl::StatusOr<std::vector<v1::Group>> ListGroups(sql::Connection& conn,
                                                  const v1::ListGroupsRequest& filter,
                                                  uint64_t after_id, int limit);
// Memberships of an account in live groups, group_id > after_id.
absl::StatusOr<std::vector<v1::Membership>> ListMemberships(sql::Connection& conn,
                                                            uint64_t account_id,
                                                            v1::MemberRole role, uint64_t after_id,
                                                            int limit);

}  // namespace qunzu::groups

#endif  // QUNZU_SERVICES_GROUPS_GROUPS_STORE_H_
