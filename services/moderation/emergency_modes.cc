#include "services/moderation/emergency_modes.h"

#include <string>
#include <utility>

#include "common/idempotency.h"
#include "common/log.h"
#include "common/status.h"
#include "services/moderation/proto_time.h"
#include "services/moderation/rule_validation.h"

namespace qunzu::moderation {
namespace {

constexpr size_t kMaxReasonChars = 1000;

// Higher is stronger: SUSPEND_POSTING over HOLD_ALL, then the narrower scope.
int Strength(const v1::EmergencyMode& mode) {
  return (mode.level() == v1::EMERGENCY_LEVEL_SUSPEND_POSTING ? 10 : 0) +
         static_cast<int>(mode.scope());
}

bool Applies(const v1::EmergencyMode& mode, uint64_t group_id, common::v1::GroupCategory category) {
  switch (mode.scope()) {
    case v1::EMERGENCY_SCOPE_PLATFORM:
      return true;
    case v1::EMERGENCY_SCOPE_CATEGORY:
      return mode.group_category() == category;
    case v1::EMERGENCY_SCOPE_GROUP:
      return mode.group_id() == group_id;
    default:
      return false;
  }
}

absl::Status BadInput(absl::string_view reason, absl::string_view field,
                      absl::string_view message) {
  return MakeError(absl::StatusCode::kInvalidArgument, reason, message,
                   {{"field", std::string(field)}});
}

}  // namespace

bool InForce(const v1::EmergencyMode& mode, absl::Time now) {
  return !mode.has_ended_at() && FromProtoTime(mode.expires_at()) > now;
}

EmergencyModes::~EmergencyModes() {
  stop_.Notify();
  if (poller_.joinable()) poller_.join();
}

void EmergencyModes::Start(absl::Duration poll_interval) {
  poller_ = std::thread([this, poll_interval] {
    do {
      absl::Status status = Refresh();
      if (!status.ok()) LogError("emergency_mode_refresh_failed", {{"error", status.ToString()}});
    } while (!stop_.WaitForNotificationWithTimeout(poll_interval));
  });
}

absl::Status EmergencyModes::Refresh() {
  ASSIGN_OR_RETURN(int64_t generation, source_.Generation());
  {
    absl::MutexLock lock(&mu_);
    if (loaded_ != nullptr && loaded_->generation == generation) {
      refreshed_at_ = absl::Now();
      return absl::OkStatus();
    }
  }
  auto loaded = std::make_shared<Loaded>();
  RETURN_IF_ERROR(source_.LoadOpen(&loaded->generation, &loaded->modes));
  absl::MutexLock lock(&mu_);
  loaded_ = std::move(loaded);
  refreshed_at_ = absl::Now();
  return absl::OkStatus();
}

absl::StatusOr<std::optional<v1::EmergencyMode>> EmergencyModes::Find(
    uint64_t group_id, common::v1::GroupCategory category, absl::Time now) const {
  std::shared_ptr<const Loaded> loaded;
  absl::Time refreshed_at;
  {
    absl::ReaderMutexLock lock(&mu_);
    loaded = loaded_;
    refreshed_at = refreshed_at_;
  }
  if (loaded == nullptr) {
    return MakeError(absl::StatusCode::kUnavailable, "EMERGENCY_MODES_UNAVAILABLE",
                     "the emergency modes are not loaded yet");
  }
  if (absl::Now() - refreshed_at > stale_after_) {
    return MakeError(absl::StatusCode::kUnavailable, "EMERGENCY_MODES_UNAVAILABLE",
                     "the emergency modes could not be refreshed for " +
                         absl::FormatDuration(absl::Now() - refreshed_at));
  }
  const v1::EmergencyMode* best = nullptr;
  for (const v1::EmergencyMode& mode : loaded->modes) {
    if (!InForce(mode, now) || !Applies(mode, group_id, category)) continue;
    if (best == nullptr || Strength(mode) > Strength(*best)) best = &mode;
  }
  if (best == nullptr) return std::optional<v1::EmergencyMode>();
  return std::optional<v1::EmergencyMode>(*best);
}

absl::Status ValidateSetEmergencyMode(const v1::SetEmergencyModeRequest& request, absl::Time now) {
  RETURN_IF_ERROR(ValidateRequestId(request.request_id()));
  if (!v1::EmergencyScope_IsValid(request.scope()) ||
      request.scope() == v1::EMERGENCY_SCOPE_UNSPECIFIED) {
    return InvalidField("scope", "must be PLATFORM, CATEGORY or GROUP");
  }
  if (!v1::EmergencyLevel_IsValid(request.level()) ||
      request.level() == v1::EMERGENCY_LEVEL_UNSPECIFIED) {
    return InvalidField("level", "must be OFF, HOLD_ALL or SUSPEND_POSTING");
  }
  if (!common::v1::GroupCategory_IsValid(request.group_category())) {
    return InvalidField("group_category", "is not a known GroupCategory");
  }
  const bool category = request.scope() == v1::EMERGENCY_SCOPE_CATEGORY;
  const bool group = request.scope() == v1::EMERGENCY_SCOPE_GROUP;
  if (category && request.group_category() == common::v1::GROUP_CATEGORY_UNSPECIFIED) {
    return BadInput("SCOPE_TARGET_REQUIRED", "group_category",
                    "CATEGORY scope needs group_category");
  }
  if (!category && request.group_category() != common::v1::GROUP_CATEGORY_UNSPECIFIED) {
    return InvalidField("group_category", "applies to CATEGORY scope only");
  }
  if (group && request.group_id() == 0) {
    return BadInput("SCOPE_TARGET_REQUIRED", "group_id", "GROUP scope needs group_id");
  }
  if (!group && request.group_id() != 0) {
    return InvalidField("group_id", "applies to GROUP scope only");
  }
  if (request.reason().empty()) {
    return BadInput("REASON_REQUIRED", "reason", "an emergency mode needs a reason");
  }
  RETURN_IF_ERROR(ValidateText("reason", request.reason(), kMaxReasonChars));
  if (request.level() == v1::EMERGENCY_LEVEL_OFF) {
    if (request.has_expires_at()) return InvalidField("expires_at", "does not apply to OFF");
    return absl::OkStatus();
  }
  if (!request.has_expires_at()) {
    return BadInput("EXPIRY_REQUIRED", "expires_at", "HOLD_ALL and SUSPEND_POSTING need an expiry");
  }
  const google::protobuf::Timestamp& expires = request.expires_at();
  if (expires.nanos() < 0 || expires.nanos() > 999999999 || expires.seconds() < 0 ||
      expires.seconds() > int64_t{253402300799}) {
    return InvalidField("expires_at", "is not a valid timestamp");
  }
  if (FromProtoTime(expires) <= now) {
    return BadInput("EXPIRY_IN_PAST", "expires_at", "expires_at must be in the future");
  }
  return absl::OkStatus();
}

absl::Status ValidateListEmergencyModes(const v1::ListEmergencyModesRequest& request) {
  if (!v1::EmergencyScope_IsValid(request.scope())) {
    return InvalidField("scope", "is not a known EmergencyScope");
  }
  return ValidatePage(request.page());
}

}  // namespace qunzu::moderation
