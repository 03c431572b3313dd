// Emergency modes in MySQL (R5.3): one row per mode with its scope, level,
// reason, expiry and end; a generation counter that every change bumps and
// every replica polls (EmergencyModes). SetEmergencyMode is idempotent by
// request_id and writes its audit outbox row in the same transaction.
#ifndef QUNZU_SERVICES_MODERATION_MYSQL_EMERGENCY_STORE_H_
#define QUNZU_SERVICES_MODERATION_MYSQL_EMERGENCY_STORE_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/migrations.h"
#include "common/mysql_pool.h"
#include "qunzu/moderation/v1/moderation.pb.h"
#include "services/moderation/emergency_modes.h"
#include "services/moderation/mysql_rule_store.h"

namespace qunzu::moderation {

// Whether a group exists (groups' Redis projection in production); an
// error when that cannot be told.
using GroupExistsFn = std::function<absl::StatusOr<bool>(uint64_t group_id)>;

class MysqlEmergencyStore final : public EmergencyModeSource {
 public:
  MysqlEmergencyStore(MysqlPool& pool, const Clock& clock, GroupExistsFn group_exists)
      : pool_(pool), clock_(clock), group_exists_(std::move(group_exists)) {}

  absl::StatusOr<int64_t> Generation() override;
  absl::Status LoadOpen(int64_t* generation, std::vector<v1::EmergencyMode>* modes) override;

  // Sets, replaces or ends (OFF) the mode of a scope, from a validated
  // request. Errors: NOT_FOUND GROUP_NOT_FOUND; FAILED_PRECONDITION
  // NO_MODE_IN_FORCE; ALREADY_EXISTS REQUEST_ID_REUSED.
  absl::StatusOr<v1::SetEmergencyModeResponse> Set(const RequestContext& context,
                                                   const v1::SetEmergencyModeRequest& request);

  // Modes newest first, from a validated request.
  absl::StatusOr<v1::ListEmergencyModesResponse> List(const v1::ListEmergencyModesRequest& request);

 private:
  MysqlPool& pool_;
  const Clock& clock_;
  GroupExistsFn group_exists_;
};

// Moderation's migrations for emergency modes (versions 10..49).
const std::vector<Migration>& EmergencyModeMigrations();

}  // namespace qunzu::moderation

#endif  // QUNZU_SERVICES_MODERATION_MYSQL_EMERGENCY_STORE_H_
