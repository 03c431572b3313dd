// Row mapping shared by the groups store files (internal to the store).
#ifndef QUNZU_SERVICES_GROUPS_STORE_ROWS_H_
#define QUNZU_SERVICES_GROUPS_STORE_ROWS_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/mysql.h"
#include "qunzu/groups/v1/groups.pb.h"

namespace sql {
class ResultSet;
}

namespace qunzu::groups::store_internal {

inline constexpr char kGroupColumns[] =
    "group_id, code, name, description, announcement, category, scale_tier, member_cap,"
    " member_count, join_policy, join_question, join_answer, state, state_reason, rectify_by,"
    " posting_suspended_until, disposition_id, owner_account_id, created_at, updated_at";

inline constexpr char kMemberColumns[] =
    "group_id, account_id, role, join_method, admitted_by, joined_at, muted_until";

inline constexpr char kRequestColumns[] =
    "join_request_id, group_id, applicant, message, state, decided_by, decision_reason,"
    " created_at, decided_at, expires_at";

// Live groups: not dissolved, rejected (their memberships and ownerships
// no longer count toward caps).
inline constexpr char kLiveStates[] = "(1, 2, 3, 4, 5)";

std::string Str(const sql::ResultSet& row, int column);
absl::Status SetTime(const sql::ResultSet& row, int column, google::protobuf::Timestamp* out);
// NULL for an unset timestamp.
SqlValue OptionalTime(const google::protobuf::Timestamp& t);
absl::StatusOr<v1::Group> GroupOf(const sql::ResultSet& row);
absl::StatusOr<v1::Member> MemberOf(const sql::ResultSet& row);
absl::StatusOr<v1::JoinRequest> RequestOf(const sql::ResultSet& row);

}  // namespace qunzu::groups::store_internal

#endif  // QUNZU_SERVICES_GROUPS_STORE_ROWS_H_
