// The groups policy (DESIGN §5): tier caps and qualification, review
// categories, info page threshold, mute and invitation limits, activity
// thresholds. Loaded from a text-format file and validated at start.
#ifndef QUNZU_SERVICES_GROUPS_GROUPS_POLICY_H_
#define QUNZU_SERVICES_GROUPS_GROUPS_POLICY_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "qunzu/groups/v1/groups.pb.h"

namespace qunzu::groups {

class GroupsPolicy {
 public:
  // Validates `proto`; errors are INVALID_ARGUMENT INVALID_POLICY naming
  // `source` and the field.
  static absl::StatusOr<GroupsPolicy> Create(v1::GroupsPolicy proto, const std::string& source);

  const v1::GroupsPolicy& proto() const { return proto_; }
  // The rule of a known tier (SMALL..HUGE).
  const v1::TierRule& Tier(common::v1::ScaleTier tier) const;
  bool CategoryNeedsReview(common::v1::GroupCategory category) const;
  absl::Duration max_mute() const { return absl::Hours(proto_.max_mute_hours()); }
  absl::Duration invitation_ttl() const { return absl::Hours(proto_.invitation_ttl_hours()); }
  absl::Duration activity_window() const { return absl::Hours(proto_.activity_window_hours()); }
  v1::ActivityLevel ActivityFor(uint64_t messages) const;

 private:
  explicit GroupsPolicy(v1::GroupsPolicy proto) : proto_(std::move(proto)) {}
  v1::GroupsPolicy proto_;
};

// Reads a text-format GroupsPolicy file.
absl::StatusOr<v1::GroupsPolicy> LoadGroupsPolicy(const std::string& path);

}  // namespace qunzu::groups

#endif  // QUNZU_SERVICES_GROUPS_GROUPS_POLICY_H_
