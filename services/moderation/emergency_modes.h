// Emergency modes (R5.3): the platform, every group of one category, or one
// group switched into HOLD_ALL (every post held for review) or
// SUSPEND_POSTING (every post refused) until an expiry. MySQL holds them
// (EmergencyModeStore); each replica keeps the modes in force in process
// (EmergencyModes), refreshed by polling a generation counter, so step 1 of
// the hot path costs no Redis round trip and a change is in force on every
// replica within one poll interval. A mode past its expiry stops applying by
// itself: Find compares with the request's time.
#ifndef QUNZU_SERVICES_MODERATION_EMERGENCY_MODES_H_
#define QUNZU_SERVICES_MODERATION_EMERGENCY_MODES_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "qunzu/common/v1/domain.pb.h"
#include "qunzu/moderation/v1/moderation.pb.h"

namespace qunzu::moderation {

// Where the modes in force come from (MySQL in production).
class EmergencyModeSource {
 public:
  virtual ~EmergencyModeSource() = default;
  // A number that changes whenever a mode is set, replaced or ended.
  virtual absl::StatusOr<int64_t> Generation() = 0;
  // The generation and every mode not ended by hand (expired ones may be
  // included; Find skips them), read together.
  virtual absl::Status LoadOpen(int64_t* generation, std::vector<v1::EmergencyMode>* modes) = 0;
};

// The modes of this replica. Thread-safe.
class EmergencyModes {
 public:
  // Find fails closed once the last successful refresh is older than
  // `stale_after`: a mode set since could be missing.
  explicit EmergencyModes(EmergencyModeSource& source,
                          absl::Duration stale_after = absl::Seconds(10))
      : source_(source), stale_after_(stale_after) {}
  ~EmergencyModes();
  EmergencyModes(const EmergencyModes&) = delete;
  EmergencyModes& operator=(const EmergencyModes&) = delete;

  // Polls on a thread of its own (the destructor stops it).
  void Start(absl::Duration poll_interval);

  // One poll: reloads when the source's generation moved. An error keeps
  // the modes loaded before, until they are stale.
  absl::Status Refresh();

  // The mode that applies to a post in `group_id` of `category` at `now`:
  // SUSPEND_POSTING wins over HOLD_ALL; among equals the narrowest scope
  // (group, then category, then platform). nullopt when none applies.
  // UNAVAILABLE EMERGENCY_MODES_UNAVAILABLE before the first load and
  // while the modes are stale (the source unreachable for stale_after).
  absl::StatusOr<std::optional<v1::EmergencyMode>> Find(uint64_t group_id,
                                                        common::v1::GroupCategory category,
                                                        absl::Time now) const;

 private:
  struct Loaded {
    int64_t generation = 0;
    std::vector<v1::EmergencyMode> modes;
  };

  EmergencyModeSource& source_;
  const absl::Duration stale_after_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const Loaded> loaded_ ABSL_GUARDED_BY(mu_);
  // When the source last answered (real time, not the request's clock).
  absl::Time refreshed_at_ ABSL_GUARDED_BY(mu_);
  absl::Notification stop_;
  std::thread poller_;
};

// Input checks of SetEmergencyMode at `now` (expiry in the future, scope
// target, reason), each with its reason: INVALID_ARGUMENT EXPIRY_REQUIRED,
// EXPIRY_IN_PAST, SCOPE_TARGET_REQUIRED, REASON_REQUIRED, INVALID_FIELD.
absl::Status ValidateSetEmergencyMode(const v1::SetEmergencyModeRequest& request, absl::Time now);
absl::Status ValidateListEmergencyModes(const v1::ListEmergencyModesRequest& request);

// Whether `mode` is in force at `now` (not ended, not expired).
bool InForce(const v1::EmergencyMode& mode, absl::Time now);

}  // namespace qunzu::moderation

#endif  // QUNZU_SERVICES_MODERATION_EMERGENCY_MODES_H_
