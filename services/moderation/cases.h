// Case handling in the moderation service (issue 8): reports and held
// messages, dispositions, the blacklist and filings to the authority, their
// Redis projections, metrics and background work, built from the shared
// resources and this service's flags.
#ifndef QUNZU_SERVICES_MODERATION_CASES_H_
#define QUNZU_SERVICES_MODERATION_CASES_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/migrations.h"
#include "common/outbox.h"
#include "common/service_main.h"
#include "services/moderation/blacklist_store.h"
#include "services/moderation/case_clients.h"
#include "services/moderation/case_metrics.h"
#include "services/moderation/case_projection.h"
#include "services/moderation/disposition_recovery.h"
#include "services/moderation/dispositions.h"
#include "services/moderation/filings.h"
#include "services/moderation/report_store.h"
#include "services/moderation/subjects.h"

namespace qunzu::moderation {

// This service's case flags (see README, "Configuration").
struct CaseFlags {
  ReportOptions reports;
  std::string groups_target = "127.0.0.1:50052";
  std::string credit_target = "127.0.0.1:50053";
  // Empty: filings are recorded and wait (PENDING) until one is configured.
  std::string authority_target;
  std::string provider_name = "example-chat";
  absl::Duration call_deadline = absl::Seconds(5);
  absl::Duration filing_max_backoff = absl::Seconds(30);
  // DispositionRecovery's pass interval and grace period (the grace must
  // exceed call_deadline; MakeCases refuses otherwise).
  RecoveryOptions recovery{};
};

// Registers the case flags into `out`.
void AddCaseFlags(FlagSet& flags, CaseFlags* out);

// The case tables, versions 50..99 of the "moderation" component.
const std::vector<Migration>& CaseMigrations();

// What case handling is built from; tests pass fakes for the services.
struct CaseDeps {
  MysqlPool& mysql;
  RedisClient* redis;
  prometheus::Registry& metrics;
  const Clock& clock;
  ReportOptions reports;
  std::unique_ptr<GroupsClient> groups;
  std::unique_ptr<CreditClient> credit;
  // Null: filings wait undelivered.
  std::unique_ptr<OutboxReceiver> authority;
  absl::Duration filing_max_backoff = absl::Seconds(30);
  // Background passes (reconcile after a failed write, gauges).
  absl::Duration background_interval = absl::Seconds(1);
  // Reconcile deletes blacklist and restriction keys MySQL does not back.
  // Off only in tests, whose schemas share one Redis.
  bool prune_stale_keys = true;
  // The disposition recovery; run_recovery false leaves it to the test
  // (recovery()->RunOnce()).
  RecoveryOptions recovery{};
  bool run_recovery = true;
};

class Cases {
 public:
  // Starts the filing relay, the disposition recovery and the background
  // thread, which reconciles the projections at once (retrying until it
  // succeeds). The destructor stops them.
  static absl::StatusOr<std::unique_ptr<Cases>> Create(CaseDeps deps);
  ~Cases();
  Cases(const Cases&) = delete;
  Cases& operator=(const Cases&) = delete;

  ReportStore& reports() { return reports_; }
  DispositionLogic& dispositions() { return dispositions_; }
  DispositionRecovery& recovery() { return recovery_; }
  BlacklistStore& blacklist() { return blacklist_; }
  FilingStore& filings() { return filings_; }
  CaseProjection& projection() { return projection_; }
  // Null when no authority is configured.
  OutboxRelay* filing_relay() { return relay_.get(); }
  // Delivers the credit events of resolutions.
  OutboxRelay* credit_relay() { return credit_relay_.get(); }
  const Clock& clock() const { return deps_.clock; }
  // Audits a read by the regulator (R13.1): action REGULATOR_INSPECTED.
  absl::Status RecordInspection(const RequestContext& context);

 private:
  explicit Cases(CaseDeps deps);
  void Loop();

  CaseDeps deps_;
  RedisSubjectDirectory subjects_;
  CaseMetrics metrics_;
  CaseProjection projection_;
  ReportStore reports_;
  DispositionLogic dispositions_;
  DispositionRecovery recovery_;
  BlacklistStore blacklist_;
  FilingStore filings_;
  std::unique_ptr<OutboxRelay> relay_;
  std::unique_ptr<CreditEventDelivery> credit_events_;
  std::unique_ptr<OutboxRelay> credit_relay_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// Builds case handling for the running service from its flags.
// INVALID_ARGUMENT when the recovery's grace does not exceed the dependency
// deadline.
absl::StatusOr<std::unique_ptr<Cases>> MakeCases(ServiceDeps& deps, const CaseFlags& flags);

}  // namespace qunzu::moderation

#endif  // QUNZU_SERVICES_MODERATION_CASES_H_
