// The Redis projections moderation owns for the hot path and groups
// (common/projection_keys.h): AccountBlacklistKey and GroupBlacklistKey
// (value = expiry in unix seconds, "0" for none, Redis TTL = expiry, so an
// entry lifts by itself) and AccountRestrictionsKey (admin_suspended_until,
// creation_revoked_until from active SUSPEND_ADMIN and REVOKE_CREATION
// dispositions). Each write derives the key from MySQL, the truth, so a
// late or repeated write never leaves a stale value; Reconcile rebuilds
// them all (on start, and after a failed write).
#ifndef QUNZU_SERVICES_MODERATION_CASE_PROJECTION_H_
#define QUNZU_SERVICES_MODERATION_CASE_PROJECTION_H_

#include <atomic>
#include <cstdint>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "common/clock.h"
#include "common/mysql_pool.h"
#include "common/redis.h"
#include "qunzu/moderation/v1/moderation.pb.h"

namespace qunzu::moderation {

class CaseProjection {
 public:
  // `prune`: Reconcile also deletes keys MySQL does not back.
  CaseProjection(MysqlPool& pool, RedisClient* redis, const Clock& clock, bool prune = true)
      : pool_(pool), redis_(redis), clock_(clock), prune_(prune) {}

  // Rewrites one subject's blacklist key from its active entry (or deletes it).
  absl::Status PublishBlacklist(v1::SubjectKind kind, uint64_t subject_id);
  // Rewrites one account's restrictions from its active dispositions.
  absl::Status PublishRestrictions(uint64_t account_id);
  // Rebuilds every key and deletes those no longer backed by MySQL.
  absl::Status Reconcile();
  // Whether a write failed since the last successful Reconcile.
  bool dirty() const { return dirty_.load(); }

 private:
  absl::Status WriteBlacklist(const std::string& key, absl::Time expires);
  absl::Status WriteRestrictions(uint64_t account_id, absl::Time admin, absl::Time creation);
  absl::Status DeleteStale(const std::string& pattern, const std::set<std::string>& keep);
  absl::Status Track(absl::Status status);

  MysqlPool& pool_;
  RedisClient* redis_;
  const Clock& clock_;
  const bool prune_;
  std::atomic<bool> dirty_{false};
};

}  // namespace qunzu::moderation

#endif  // QUNZU_SERVICES_MODERATION_CASE_PROJECTION_H_
