// The Redis key layout of the projections services publish for the hot path
// (DESIGN §1, §2). Every key carries the hash tag of the entity it belongs
// to, so one script or pipeline over an account's or a group's keys touches
// one Redis Cluster slot. Only the owning service writes a key; the others
// read it. Everything here can be rebuilt from MySQL.
#ifndef QUNZU_COMMON_PROJECTION_KEYS_H_
#define QUNZU_COMMON_PROJECTION_KEYS_H_

#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"

namespace qunzu::projection {

// Hash written by identity: fields `verified` ("0"/"1"), `agreement_version`
// (the service agreement version accepted, "" when none),
// `convention_version` (the platform convention version accepted, "" when
// none), `state` (account state name), `nickname` (the public nickname, R6.2;
// never the real name).
inline std::string AccountIdentityKey(uint64_t account_id) {
  return absl::StrCat("{a:", account_id, "}:identity");
}

// Hash written by credit: fields `score`, `level`, and one field per
// entitlement (`groups_may_create`, `groups_may_join`, `max_create_tier`,
// `may_be_admin`, `messages_per_minute`).
inline std::string AccountCreditKey(uint64_t account_id) {
  return absl::StrCat("{a:", account_id, "}:credit");
}

// Hash written by groups: fields `state` (GroupState name, e.g.
// "GROUP_STATE_ACTIVE"), `category` (GroupCategory name), `tier` (ScaleTier
// name), `member_count`, `posting_suspended_until` (unix seconds, "0" when
// none), `version` (the group row's updated_at in unix microseconds; groups
// never overwrites a newer version with an older one).
inline std::string GroupKey(uint64_t group_id) { return absl::StrCat("{g:", group_id, "}:group"); }

// Hash written by groups: member account id -> role name (MemberRole name,
// e.g. "MEMBER_ROLE_ADMIN"); mutes live in GroupMutesKey as account id ->
// muted-until unix seconds (an expired entry may linger: compare with now).
inline std::string GroupMembersKey(uint64_t group_id) {
  return absl::StrCat("{g:", group_id, "}:members");
}
inline std::string GroupMutesKey(uint64_t group_id) {
  return absl::StrCat("{g:", group_id, "}:mutes");
}

// Hash written by moderation's hot path and read by groups for the activity
// level (R7.1): field = hour since the Unix epoch (unix seconds / 3600),
// value = messages allowed in that hour (the hot path counts every screened
// message in its one pipeline and takes back the blocked and held ones off
// the hot path). The writer EXPIREs the key a little beyond the activity
// window.
inline std::string GroupActivityKey(uint64_t group_id) {
  return absl::StrCat("{g:", group_id, "}:activity");
}

// Written by identity: the agreement versions currently in force, fields
// `agreement_version` (service agreement) and `convention_version`
// (platform convention), "" when none is published; and the newest version
// published to take effect later, `next_agreement_version` /
// `next_agreement_effective_at` and `next_convention_version` /
// `next_convention_effective_at` (unix seconds; "" when none), so the
// required version moves at its effective time without anyone acting. A
// sender whose AccountIdentityKey version is lower than the version in
// force has not accepted the current one (R5.4). identity writes the key
// on every PublishAgreement and at start; a missing key means "unknown"
// (readers fail closed). The `{platform}` tag keeps every platform-wide
// key in one slot.
inline std::string PlatformAgreementKey() { return "{platform}:agreement"; }

// Written by moderation (dispositions, R11.2), read by groups and the hot
// path: hash with `admin_suspended_until` (SUSPEND_ADMIN) and
// `creation_revoked_until` (REVOKE_CREATION), unix seconds; an absent field
// or a time in the past means no restriction.
inline std::string AccountRestrictionsKey(uint64_t account_id) {
  return absl::StrCat("{a:", account_id, "}:restrictions");
}

// Written by moderation (R11.3): a string whose value is the entry's expiry
// in unix seconds ("0" for none); the key also carries that expiry as its
// Redis TTL, so an entry lifts at expiry without anyone acting. Readers
// still compare the value with now.
inline std::string AccountBlacklistKey(uint64_t account_id) {
  return absl::StrCat("{a:", account_id, "}:blacklist");
}
inline std::string GroupBlacklistKey(uint64_t group_id) {
  return absl::StrCat("{g:", group_id, "}:blacklist");
}

// Written by moderation's hot path: fixed one-minute windows of messages
// screened per sender and per group (INCR, EXPIRE after two minutes), for
// the rate limits by credit level and group tier (R7.4). `minute` is unix
// seconds / 60.
inline std::string AccountRateKey(uint64_t account_id, int64_t minute) {
  return absl::StrCat("{a:", account_id, "}:rate:", minute);
}
inline std::string GroupRateKey(uint64_t group_id, int64_t minute) {
  return absl::StrCat("{g:", group_id, "}:rate:", minute);
}

// Written by moderation's ScreenMessage: the first verdict of one request
// id (idempotency), a short-lived string "pending" while the first call
// runs and then a 32-byte request fingerprint followed by the serialized
// ScreenMessageResponse. Only moderation reads it.
inline std::string ScreenRequestKey(uint64_t sender_id, const std::string& principal,
                                    const std::string& request_id) {
  return absl::StrCat("{a:", sender_id, "}:screen:", principal, ":", request_id);
}

}  // namespace qunzu::projection

#endif  // QUNZU_COMMON_PROJECTION_KEYS_H_
