#include "services/credit/policy.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/config.h"
#include "common/status.h"

namespace qunzu::credit {
namespace {

using v1::CreditEventType;
using v1::CreditPolicy;
using v1::Entitlements;

constexpr absl::Duration kMaxPenaltyDurationBound = absl::Hours(24 * 3660);

absl::Status Bad(const std::string& source, const std::string& field, const std::string& problem) {
  return MakeError(absl::StatusCode::kInvalidArgument, "CREDIT_POLICY_INVALID",
                   absl::StrCat(source, ": ", field, ": ", problem), {{"field", field}});
}

absl::Duration ToDuration(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

absl::Status ValidateEventRules(const CreditPolicy& policy, const std::string& source) {
  absl::flat_hash_set<int> seen;
  for (int i = 0; i < policy.event_rules_size(); ++i) {
    const v1::EventRule& rule = policy.event_rules(i);
    const std::string field = absl::StrCat("event_rules[", i, "]");
    const int type = rule.event_type();
    if (!v1::CreditEventType_IsValid(type) || type == v1::CREDIT_EVENT_TYPE_UNSPECIFIED) {
      return Bad(source, field + ".event_type", absl::StrCat("unknown event type ", type));
    }
    if (type == v1::CREDIT_EVENT_TYPE_REVERSAL) {
      return Bad(source, field + ".event_type",
                 "REVERSAL takes no rule: its delta is the cancelled event's, negated");
    }
    if (!seen.insert(type).second) {
      return Bad(source, field + ".event_type",
                 absl::StrCat(CreditEventType_Name(rule.event_type()), " has two rules"));
    }
    if (rule.delta() < -kMaxScore || rule.delta() > kMaxScore) {
      return Bad(source, field + ".delta", absl::StrCat(rule.delta(), " is outside -1000..1000"));
    }
    if (type == v1::CREDIT_EVENT_TYPE_IDENTITY_VERIFIED && rule.delta() <= 0) {
      return Bad(source, field + ".delta", "IDENTITY_VERIFIED must give a positive starting score");
    }
    if (rule.description().size() > 500) {
      return Bad(source, field + ".description", "longer than 500 bytes");
    }
  }
  for (int type = v1::CreditEventType_MIN; type <= v1::CreditEventType_MAX; ++type) {
    if (!v1::CreditEventType_IsValid(type) || type == v1::CREDIT_EVENT_TYPE_UNSPECIFIED ||
        type == v1::CREDIT_EVENT_TYPE_REVERSAL || seen.contains(type)) {
      continue;
    }
    return Bad(
        source, "event_rules",
        absl::StrCat("no rule for ", CreditEventType_Name(static_cast<CreditEventType>(type))));
  }
  return absl::OkStatus();
}

// A higher level must grant at least what a lower one does.
absl::Status ValidateMonotonic(const Entitlements& lower, const Entitlements& higher,
                               const std::string& source, const std::string& field) {
  if (higher.groups_may_create() < lower.groups_may_create()) {
    return Bad(source, field + ".groups_may_create", "less than the level below grants");
  }
  if (higher.groups_may_join() < lower.groups_may_join()) {
    return Bad(source, field + ".groups_may_join", "less than the level below grants");
  }
  if (higher.max_create_tier() < lower.max_create_tier()) {
    return Bad(source, field + ".max_create_tier", "smaller than the level below grants");
  }
  if (lower.may_be_admin() && !higher.may_be_admin()) {
    return Bad(source, field + ".may_be_admin", "false while the level below grants it");
  }
  if (higher.messages_per_minute() < lower.messages_per_minute()) {
    return Bad(source, field + ".messages_per_minute", "less than the level below grants");
  }
  return absl::OkStatus();
}

absl::Status ValidateLevelRules(const CreditPolicy& policy, const std::string& source) {
  if (policy.level_rules_size() < 2) {
    return Bad(source, "level_rules", "at least two levels are needed");
  }
  for (int i = 0; i < policy.level_rules_size(); ++i) {
    const v1::LevelRule& rule = policy.level_rules(i);
    const std::string field = absl::StrCat("level_rules[", i, "]");
    if (rule.level() != static_cast<uint32_t>(i)) {
      return Bad(source, field + ".level", absl::StrCat("is ", rule.level(), ", expected ", i));
    }
    if (i == 0 && rule.min_score() != 0) {
      return Bad(source, field + ".min_score", "level 0 must start at score 0");
    }
    if (rule.min_score() > static_cast<uint32_t>(kMaxScore)) {
      return Bad(source, field + ".min_score", absl::StrCat(rule.min_score(), " is above 1000"));
    }
    if (i > 0 && rule.min_score() <= policy.level_rules(i - 1).min_score()) {
      return Bad(source, field + ".min_score",
                 absl::StrCat(rule.min_score(), " overlaps level ", i - 1, " (min_score ",
                              policy.level_rules(i - 1).min_score(), "): thresholds must rise"));
    }
    const int tier = rule.entitlements().max_create_tier();
    if (!common::v1::ScaleTier_IsValid(tier)) {
      return Bad(source, field + ".entitlements.max_create_tier",
                 absl::StrCat("unknown tier ", tier));
    }
    if (i > 0) {
      RETURN_IF_ERROR(ValidateMonotonic(policy.level_rules(i - 1).entitlements(),
                                        rule.entitlements(), source, field + ".entitlements"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateRules(const CreditPolicy& policy, const std::string& source) {
  const v1::PenaltyRule& penalty = policy.penalty_rule();
  if (penalty.max_levels() == 0) {
    return Bad(source, "penalty_rule.max_levels", "must be at least 1");
  }
  const absl::Duration max_duration = ToDuration(penalty.max_duration());
  if (max_duration <= absl::ZeroDuration() || max_duration > kMaxPenaltyDurationBound) {
    return Bad(source, "penalty_rule.max_duration", "must be positive and at most ten years");
  }
  const v1::RecoveryRule& recovery = policy.recovery_rule();
  const absl::Duration period = ToDuration(recovery.clean_period());
  if (period < absl::Hours(1)) {
    return Bad(source, "recovery_rule.clean_period", "must be at least one hour");
  }
  if (recovery.max_score() > static_cast<uint32_t>(kMaxScore)) {
    return Bad(source, "recovery_rule.max_score", "is above 1000");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateCreditPolicy(const CreditPolicy& policy, const std::string& source) {
  if (policy.version().empty() || policy.version().size() > 64) {
    return Bad(source, "version", "must be 1..64 bytes");
  }
  RETURN_IF_ERROR(ValidateEventRules(policy, source));
  RETURN_IF_ERROR(ValidateLevelRules(policy, source));
  return ValidateRules(policy, source);
}

absl::StatusOr<CreditPolicy> LoadCreditPolicy(const std::string& path) {
  CreditPolicy policy;
  RETURN_IF_ERROR(LoadTextProtoFile(path, &policy));
  RETURN_IF_ERROR(ValidateCreditPolicy(policy, path));
  return policy;
}

absl::StatusOr<Policy> Policy::Create(CreditPolicy policy, const std::string& source) {
  RETURN_IF_ERROR(ValidateCreditPolicy(policy, source));
  return Policy(std::move(policy));
}

Policy::Policy(CreditPolicy policy) : proto_(std::move(policy)) {
  for (const v1::EventRule& rule : proto_.event_rules()) deltas_[rule.event_type()] = rule.delta();
  clean_period_ = ToDuration(proto_.recovery_rule().clean_period());
  max_penalty_duration_ = ToDuration(proto_.penalty_rule().max_duration());
}

absl::StatusOr<int32_t> Policy::DeltaOf(CreditEventType type) const {
  auto it = deltas_.find(type);
  if (it == deltas_.end()) {
    return MakeError(absl::StatusCode::kInvalidArgument, "EVENT_TYPE_UNKNOWN",
                     absl::StrCat("event type ", static_cast<int>(type), " has no policy rule"),
                     {{"field", "event_type"}});
  }
  return it->second;
}

std::string Policy::DescriptionOf(CreditEventType type) const {
  for (const v1::EventRule& rule : proto_.event_rules()) {
    if (rule.event_type() == type) return rule.description();
  }
  return "";
}

uint32_t Policy::LevelOf(int32_t score) const {
  uint32_t level = 0;
  for (const v1::LevelRule& rule : proto_.level_rules()) {
    if (score >= static_cast<int32_t>(rule.min_score())) level = rule.level();
  }
  return level;
}

uint32_t Policy::MaxLevel() const { return static_cast<uint32_t>(proto_.level_rules_size() - 1); }

const Entitlements& Policy::EntitlementsOf(uint32_t level) const {
  return proto_.level_rules(static_cast<int>(std::min(level, MaxLevel()))).entitlements();
}

uint32_t Policy::NextLevelMinScore(uint32_t level) const {
  if (level >= MaxLevel()) return 0;
  return proto_.level_rules(static_cast<int>(level + 1)).min_score();
}

}  // namespace qunzu::credit
