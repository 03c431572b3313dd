#include "services/groups/groups_policy.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/config.h"
#include "common/status.h"

namespace qunzu::groups {
namespace {

absl::Status Bad(const std::string& source, const std::string& field, const std::string& problem) {
  return MakeError(absl::StatusCode::kInvalidArgument, "INVALID_POLICY",
                   absl::StrCat(source, ": ", field, " ", problem), {{"field", field}});
}

}  // namespace

absl::StatusOr<GroupsPolicy> GroupsPolicy::Create(v1::GroupsPolicy proto,
                                                  const std::string& source) {
  if (proto.version().empty() || proto.version().size() > 64) {
    return Bad(source, "version", "must be 1..64 characters");
  }
  if (proto.tiers_size() != 4) {
    return Bad(source, "tiers", "must list exactly the four tiers SMALL, MEDIUM, LARGE, HUGE");
  }
  uint32_t previous_cap = 0;
  for (int i = 0; i < proto.tiers_size(); ++i) {
    const v1::TierRule& rule = proto.tiers(i);
    const std::string field = absl::StrCat("tiers[", i, "]");
    if (static_cast<int>(rule.scale_tier()) != i + 1) {
      return Bad(source, field + ".scale_tier", "must be the tiers in order SMALL..HUGE");
    }
    if (rule.member_cap() < 2 || rule.member_cap() > 100000 || rule.member_cap() <= previous_cap) {
      return Bad(source, field + ".member_cap", "must be 2..100000 and increase with the tier");
    }
    previous_cap = rule.member_cap();
    if (rule.min_owner_credit_level() > 4) {
      return Bad(source, field + ".min_owner_credit_level", "must be 0..4");
    }
    if (rule.max_admins() == 0 || rule.max_admins() >= rule.member_cap()) {
      return Bad(source, field + ".max_admins", "must be 1..member_cap-1");
    }
  }
  for (int i = 0; i < proto.review_categories_size(); ++i) {
    if (proto.review_categories(i) == common::v1::GROUP_CATEGORY_UNSPECIFIED) {
      return Bad(source, absl::StrCat("review_categories[", i, "]"), "must be a category");
    }
  }
  if (proto.info_page_min_members() == 0) {
    return Bad(source, "info_page_min_members", "must be at least 1");
  }
  if (proto.max_mute_hours() == 0 || proto.max_mute_hours() > 24 * 366) {
    return Bad(source, "max_mute_hours", "must be 1..8784");
  }
  if (proto.invitation_ttl_hours() == 0 || proto.invitation_ttl_hours() > 24 * 366) {
    return Bad(source, "invitation_ttl_hours", "must be 1..8784");
  }
  if (proto.activity_window_hours() == 0 || proto.activity_window_hours() > 24 * 31) {
    return Bad(source, "activity_window_hours", "must be 1..744");
  }
  if (proto.activity_low_messages() == 0 ||
      proto.activity_moderate_messages() <= proto.activity_low_messages() ||
      proto.activity_high_messages() <= proto.activity_moderate_messages()) {
    return Bad(source, "activity_low_messages",
               "activity thresholds must be positive and increase LOW < MODERATE < HIGH");
  }
  return GroupsPolicy(std::move(proto));
}

const v1::TierRule& GroupsPolicy::Tier(common::v1::ScaleTier tier) const {
  int index = static_cast<int>(tier) - 1;
  if (index < 0 || index >= proto_.tiers_size()) index = 0;
  return proto_.tiers(index);
}

bool GroupsPolicy::CategoryNeedsReview(common::v1::GroupCategory category) const {
  for (int c : proto_.review_categories()) {
    if (c == category) return true;
  }
  return false;
}

v1::ActivityLevel GroupsPolicy::ActivityFor(uint64_t messages) const {
  if (messages >= proto_.activity_high_messages()) return v1::ACTIVITY_LEVEL_HIGH;
  if (messages >= proto_.activity_moderate_messages()) return v1::ACTIVITY_LEVEL_MODERATE;
  if (messages >= proto_.activity_low_messages()) return v1::ACTIVITY_LEVEL_LOW;
  return v1::ACTIVITY_LEVEL_DORMANT;
}

absl::StatusOr<v1::GroupsPolicy> LoadGroupsPolicy(const std::string& path) {
  v1::GroupsPolicy proto;
  RETURN_IF_ERROR(LoadTextProtoFile(path, &proto));
  return proto;
}

}  // namespace qunzu::groups
