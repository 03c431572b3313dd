// Finishes dispositions whose process died between applying them at the
// enforcing service and recording them (dispositions.h): the effect is in
// force at groups or credit while the disposition is an invisible PENDING
// reservation. A background pass takes reservations older than the grace
// period (longer than the dependency deadline, so a call in flight is never
// raced), applies each again under its idempotency key (the enforcing
// service returns the first result) and records it exactly as a caller
// would (one credit event, one filing, one audit row). A definitive refusal
// there (NOT_FOUND, FAILED_PRECONDITION, INVALID_ARGUMENT, ALREADY_EXISTS,
// OUT_OF_RANGE) abandons the reservation with the reason, audited, never
// retried; anything else is retried on the next pass. A replica's pass and a
// caller's retry that race record once: the recording locks the row and
// only the one that finds it PENDING writes. Revocations are reserved on the
// row the same way and finished alike: lifted again under "revoke-<id>" and
// recorded, or, refused for good (or expired meanwhile), dropped with an
// audited REVOCATION_ABANDONED, the disposition staying in force.
#ifndef QUNZU_SERVICES_MODERATION_DISPOSITION_RECOVERY_H_
#define QUNZU_SERVICES_MODERATION_DISPOSITION_RECOVERY_H_

#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/mysql_pool.h"
#include "services/moderation/case_metrics.h"
#include "services/moderation/dispositions.h"

namespace qunzu::moderation {

struct RecoveryOptions {
  // Between passes (real time: the pass itself reads the injected clock).
  absl::Duration interval = absl::Seconds(30);
  // Age (by the injected clock, from decided_at) before a PENDING
  // reservation is taken over. Must exceed the dependency deadline.
  absl::Duration grace = absl::Minutes(1);
  // Reservations one pass takes at most.
  int batch = 100;
};

// What one pass did.
struct RecoveryPass {
  // Applied and recorded by this pass.
  int recovered = 0;
  // Refused for good and marked ABANDONED by this pass.
  int abandoned = 0;
  // Failed transiently (left PENDING for the next pass).
  int retrying = 0;
  // Recorded or abandoned by someone else meanwhile.
  int raced = 0;
};

class DispositionRecovery {
 public:
  // `metrics` may be null.
  DispositionRecovery(MysqlPool& pool, DispositionLogic& dispositions, CaseMetrics* metrics,
                      const Clock& clock, RecoveryOptions options)
      : pool_(pool),
        dispositions_(dispositions),
        metrics_(metrics),
        clock_(clock),
        options_(options) {}
  ~DispositionRecovery() { Stop(); }
  DispositionRecovery(const DispositionRecovery&) = delete;
  DispositionRecovery& operator=(const DispositionRecovery&) = delete;

  // Runs a pass now and then every interval until Stop.
  void Start();
  // Waits for a running pass to end. Idempotent.
  void Stop();

  // One pass; UNAVAILABLE when MySQL could not be read (nothing done).
  absl::StatusOr<RecoveryPass> RunOnce();

 private:
  // Finishes reservation `id` (stored under `request_key`: principal,
  // method and request_id of its caller); adds its outcome to `pass`.
  absl::Status Finish(uint64_t id, const std::string& request_key, RecoveryPass& pass);
  // Finishes the revocation of `id` pending under `revoke_key`.
  absl::Status FinishRevocation(uint64_t id, const std::string& revoke_key, RecoveryPass& pass);
  using AbandonStep = absl::FunctionRef<absl::StatusOr<bool>(sql::Connection&, absl::Time)>;
  using RecordStep =
      absl::FunctionRef<absl::StatusOr<DispositionLogic::Recorded>(sql::Connection&, absl::Time)>;
  // After applying (or lifting) `d` gave `effect`: abandons it on a
  // definitive refusal, records it on success, returns other failures;
  // counts the outcome (`disposed`: in dispositions_total too).
  absl::Status Conclude(uint64_t id, const v1::Disposition& d, const absl::Status& effect,
                        AbandonStep abandon, RecordStep record, bool disposed, RecoveryPass& pass);
  void Loop();

  MysqlPool& pool_;
  DispositionLogic& dispositions_;
  CaseMetrics* metrics_;
  const Clock& clock_;
  RecoveryOptions options_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// True for the codes an enforcing service gives for a request it will
// never accept (NOT_FOUND, FAILED_PRECONDITION, INVALID_ARGUMENT,
// ALREADY_EXISTS, OUT_OF_RANGE); the rest may pass on a later try.
bool IsDefinitiveRefusal(const absl::Status& status);

}  // namespace qunzu::moderation

#endif  // QUNZU_SERVICES_MODERATION_DISPOSITION_RECOVERY_H_
