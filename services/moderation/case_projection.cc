#include "services/moderation/case_projection.h"

#include <cppconn/resultset.h>

#include <algorithm>
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/projection_keys.h"
#include "common/status.h"
#include "services/moderation/case_util.h"

namespace qunzu::moderation {
namespace {

std::string BlacklistKey(v1::SubjectKind kind, uint64_t id) {
  return kind == v1::SUBJECT_KIND_GROUP ? projection::GroupBlacklistKey(id)
                                        : projection::AccountBlacklistKey(id);
}

std::string Seconds(absl::Time t) {
  return t == absl::InfiniteFuture() ? "0" : absl::StrCat(absl::ToUnixSeconds(t));
}

absl::Status RedisDown() {
  return MakeError(absl::StatusCode::kUnavailable, "PROJECTION_UNAVAILABLE",
                   "cannot write the moderation projections");
}

// Active entries: subject kind and id -> expiry (InfiniteFuture for none).
constexpr char kActiveBlacklist[] =
    "SELECT subject_kind, subject_id, expires_at FROM blacklist_entries WHERE state = 1 AND "
    "active_key IS NOT NULL AND (expires_at IS NULL OR expires_at > ?)";
// Active restrictions: account, kind -> latest end.
constexpr char kActiveRestrictions[] =
    "SELECT account_id, kind, MAX(until_at) FROM dispositions WHERE applied = 1 AND state = 1 "
    "AND kind IN (5, 6) AND until_at > ?";

}  // namespace

absl::Status CaseProjection::Track(absl::Status status) {
  if (!status.ok()) dirty_ = true;
  return status;
}

absl::Status CaseProjection::WriteBlacklist(const std::string& key, absl::Time expires) {
  if (redis_ == nullptr) return RedisDown();
  std::vector<RedisCommand> commands = {{"SET", key, Seconds(expires)}};
  if (expires != absl::InfiniteFuture()) {
    commands.push_back({"EXPIREAT", key, absl::StrCat(absl::ToUnixSeconds(expires))});
  }
  absl::StatusOr<std::vector<RedisReply>> replies = redis_->Pipeline(commands);
  if (!replies.ok()) return RedisDown();
  for (const RedisReply& reply : *replies) {
    if (reply.is_error()) return RedisDown();
  }
  return absl::OkStatus();
}

absl::Status CaseProjection::WriteRestrictions(uint64_t account_id, absl::Time admin,
                                               absl::Time creation) {
  if (redis_ == nullptr) return RedisDown();
  const std::string key = projection::AccountRestrictionsKey(account_id);
  std::vector<RedisCommand> commands = {{"DEL", key}};
  const absl::Time none = absl::InfinitePast();
  if (admin != none || creation != none) {
    RedisCommand hset = {"HSET", key};
    if (admin != none) {
      hset.insert(hset.end(), {"admin_suspended_until", absl::StrCat(absl::ToUnixSeconds(admin))});
    }
    if (creation != none) {
      hset.insert(hset.end(),
                  {"creation_revoked_until", absl::StrCat(absl::ToUnixSeconds(creation))});
    }
    commands.push_back(hset);
    commands.push_back(
        {"EXPIREAT", key, absl::StrCat(absl::ToUnixSeconds(std::max(admin, creation)))});
  }
  absl::StatusOr<std::vector<RedisReply>> replies = redis_->Pipeline(commands);
  if (!replies.ok()) return RedisDown();
  for (const RedisReply& reply : *replies) {
    if (reply.is_error()) return RedisDown();
  }
  return absl::OkStatus();
}

absl::Status CaseProjection::PublishBlacklist(v1::SubjectKind kind, uint64_t subject_id) {
  const absl::Time now = clock_.Now();
  absl::Time expires = absl::InfinitePast();
  {
    absl::StatusOr<MysqlPool::Lease> lease = pool_.Acquire(kCaseAcquireTimeout);
    if (!lease.ok()) return Track(lease.status());
    RETURN_IF_ERROR(Track(Query(**lease,
                                absl::StrCat(kActiveBlacklist,
                                             " AND subject_kind = ? AND "
                                             "subject_id = ?"),
                                {now, static_cast<int>(kind), subject_id},
                                [&](const sql::ResultSet& row) -> absl::Status {
                                  ASSIGN_OR_RETURN(absl::Time t, ReadOptionalTime(row, 3));
                                  expires = t == absl::InfinitePast() ? absl::InfiniteFuture() : t;
                                  return absl::OkStatus();
                                })));
  }
  const std::string key = BlacklistKey(kind, subject_id);
  if (expires == absl::InfinitePast()) {
    if (redis_ == nullptr) return Track(RedisDown());
    absl::StatusOr<RedisReply> reply = redis_->Command({"DEL", key});
    return Track(reply.ok() && !reply->is_error() ? absl::OkStatus() : RedisDown());
  }
  return Track(WriteBlacklist(key, expires));
}

absl::Status CaseProjection::PublishRestrictions(uint64_t account_id) {
  const absl::Time now = clock_.Now();
  absl::Time admin = absl::InfinitePast();
  absl::Time creation = absl::InfinitePast();
  {
    absl::StatusOr<MysqlPool::Lease> lease = pool_.Acquire(kCaseAcquireTimeout);
    if (!lease.ok()) return Track(lease.status());
    RETURN_IF_ERROR(Track(Query(
        **lease, absl::StrCat(kActiveRestrictions, " AND account_id = ? GROUP BY account_id, kind"),
        {now, account_id}, [&](const sql::ResultSet& row) -> absl::Status {
          ASSIGN_OR_RETURN(absl::Time until, ParseSqlDateTime(row.getString(3)));
          (row.getInt(2) == v1::DISPOSITION_KIND_SUSPEND_ADMIN ? admin : creation) = until;
          return absl::OkStatus();
        })));
  }
  return Track(WriteRestrictions(account_id, admin, creation));
}

absl::Status CaseProjection::DeleteStale(const std::string& pattern,
                                         const std::set<std::string>& keep) {
  std::string cursor = "0";
  do {
    absl::StatusOr<RedisReply> reply =
        redis_->Command({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"});
    if (!reply.ok() || reply->is_error() || reply->elements().size() != 2) return RedisDown();
    cursor = reply->elements()[0].str();
    for (const RedisReply& key : reply->elements()[1].elements()) {
      if (keep.count(key.str()) > 0) continue;
      absl::StatusOr<RedisReply> deleted = redis_->Command({"DEL", key.str()});
      if (!deleted.ok()) return RedisDown();
    }
  } while (cursor != "0");
  return absl::OkStatus();
}

absl::Status CaseProjection::Reconcile() {
  if (redis_ == nullptr) return RedisDown();
  const absl::Time now = clock_.Now();
  std::map<std::string, absl::Time> blacklist;
  std::map<uint64_t, std::pair<absl::Time, absl::Time>> restrictions;
  {
    ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(kCaseAcquireTimeout));
    RETURN_IF_ERROR(
        Query(*lease, kActiveBlacklist, {now}, [&](const sql::ResultSet& row) -> absl::Status {
          ASSIGN_OR_RETURN(absl::Time t, ReadOptionalTime(row, 3));
          blacklist[BlacklistKey(static_cast<v1::SubjectKind>(row.getInt(1)), row.getUInt64(2))] =
              t == absl::InfinitePast() ? absl::InfiniteFuture() : t;
          return absl::OkStatus();
        }));
    RETURN_IF_ERROR(Query(
        *lease, absl::StrCat(kActiveRestrictions, " GROUP BY account_id, kind"), {now},
        [&](const sql::ResultSet& row) -> absl::Status {
          ASSIGN_OR_RETURN(absl::Time until, ParseSqlDateTime(row.getString(3)));
          auto& entry =
              restrictions.try_emplace(row.getUInt64(1), absl::InfinitePast(), absl::InfinitePast())
                  .first->second;
          (row.getInt(2) == v1::DISPOSITION_KIND_SUSPEND_ADMIN ? entry.first : entry.second) =
              until;
          return absl::OkStatus();
        }));
  }
  std::set<std::string> keep_blacklist;
  for (const auto& [key, expires] : blacklist) {
    RETURN_IF_ERROR(WriteBlacklist(key, expires));
    keep_blacklist.insert(key);
  }
  std::set<std::string> keep_restrictions;
  for (const auto& [account, until] : restrictions) {
    RETURN_IF_ERROR(WriteRestrictions(account, until.first, until.second));
    keep_restrictions.insert(projection::AccountRestrictionsKey(account));
  }
  if (prune_) {
    RETURN_IF_ERROR(DeleteStale("{a:*}:blacklist", keep_blacklist));
    RETURN_IF_ERROR(DeleteStale("{g:*}:blacklist", keep_blacklist));
    RETURN_IF_ERROR(DeleteStale("{a:*}:restrictions", keep_restrictions));
  }
  dirty_ = false;
  return absl::OkStatus();
}

}  // namespace qunzu::moderation
