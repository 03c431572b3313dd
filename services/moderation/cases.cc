#include "services/moderation/cases.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <utility>

#include "common/log.h"
#include "common/status.h"
#include "services/moderation/case_util.h"
#include "services/moderation/report_rows.h"

namespace qunzu::moderation {

void AddCaseFlags(FlagSet& flags, CaseFlags* out_flags) {
  CaseFlags& out = *out_flags;
  flags.AddDuration({"report-deadline", "QUNZU_MODERATION_REPORT_DEADLINE",
                     "Handling deadline of a report (R12.3)."},
                    &out.reports.deadline, absl::Hours(24), absl::Seconds(1), absl::Hours(24 * 30));
  flags.AddDuration({"report-deadline-urgent", "QUNZU_MODERATION_REPORT_DEADLINE_URGENT",
                     "Handling deadline of FRAUD and VIOLENCE_TERROR reports."},
                    &out.reports.urgent_deadline, absl::Hours(2), absl::Seconds(1),
                    absl::Hours(24 * 30));
  flags.AddInt64({"report-escalation-reporters", "QUNZU_MODERATION_REPORT_ESCALATION_REPORTERS",
                  "Distinct reporters within the window that escalate a case."},
                 &out.reports.escalation_reporters, 5, 2, 1000000);
  flags.AddDuration({"report-escalation-window", "QUNZU_MODERATION_REPORT_ESCALATION_WINDOW",
                     "Window the escalation counts reporters in."},
                    &out.reports.escalation_window, absl::Hours(1), absl::Minutes(1),
                    absl::Hours(24 * 30));
  flags.AddInt64({"report-rate-limit", "QUNZU_MODERATION_REPORT_RATE_LIMIT",
                  "Reports one reporter (or client IP, anonymously) may submit per window."},
                 &out.reports.reporter_limit, 10, 1, 1000000);
  flags.AddDuration({"report-rate-window", "QUNZU_MODERATION_REPORT_RATE_WINDOW",
                     "Window of the reporter rate limit."},
                    &out.reports.reporter_window, absl::Hours(1), absl::Seconds(1),
                    absl::Hours(24 * 30));
  flags.AddString({"groups-target", "QUNZU_GROUPS_TARGET",
                   "host:port of the groups service (SetGroupState for group dispositions)."},
                  &out.groups_target, "127.0.0.1:50052");
  flags.AddString({"credit-target", "QUNZU_CREDIT_TARGET",
                   "host:port of the credit service (ApplyPenalty for account dispositions)."},
                  &out.credit_target, "127.0.0.1:50053");
  flags.AddString({"authority-target", "QUNZU_MODERATION_AUTHORITY_TARGET",
                   "host:port of the authority's FilingReceiver; empty: filings wait."},
                  &out.authority_target, "");
  flags.AddString({"authority-provider-name", "QUNZU_MODERATION_AUTHORITY_PROVIDER_NAME",
                   "The provider name filings are sent under."},
                  &out.provider_name, "example-chat");
  flags.AddDuration({"dependency-deadline", "QUNZU_MODERATION_DEPENDENCY_DEADLINE",
                     "Deadline of each call to groups, credit and the authority."},
                    &out.call_deadline, absl::Seconds(5), absl::Milliseconds(10),
                    absl::Seconds(60));
  flags.AddDuration({"filing-max-backoff", "QUNZU_MODERATION_FILING_MAX_BACKOFF",
                     "Longest wait between delivery attempts of a filing."},
                    &out.filing_max_backoff, absl::Seconds(30), absl::Milliseconds(10),
                    absl::Hours(1));
  flags.AddDuration(
      {"disposition-recovery-interval", "QUNZU_MODERATION_DISPOSITION_RECOVERY_INTERVAL",
       "Time between passes of the recovery of dispositions left PENDING."},
      &out.recovery.interval, absl::Seconds(30), absl::Milliseconds(10), absl::Hours(1));
  flags.AddDuration({"disposition-recovery-grace", "QUNZU_MODERATION_DISPOSITION_RECOVERY_GRACE",
                     "Age of a PENDING disposition before the recovery finishes it; must exceed "
                     "--dependency-deadline."},
                    &out.recovery.grace, absl::Minutes(1), absl::Seconds(1), absl::Hours(24));
}

Cases::Cases(CaseDeps deps)
    : deps_(std::move(deps)),
      subjects_(deps_.redis),
      metrics_(deps_.metrics),
      projection_(deps_.mysql, deps_.redis, deps_.clock, deps_.prune_stale_keys),
      reports_(deps_.mysql, subjects_, &metrics_, deps_.clock, deps_.reports),
      dispositions_(deps_.mysql, subjects_, *deps_.groups, *deps_.credit, projection_, &metrics_,
                    deps_.clock),
      recovery_(deps_.mysql, dispositions_, &metrics_, deps_.clock, deps_.recovery),
      blacklist_(deps_.mysql, subjects_, projection_, deps_.clock),
      filings_(deps_.mysql) {}

absl::StatusOr<std::unique_ptr<Cases>> Cases::Create(CaseDeps deps) {
  if (deps.groups == nullptr || deps.credit == nullptr) {
    return absl::InvalidArgumentError("case handling needs the groups and credit clients");
  }
  std::unique_ptr<Cases> cases(new Cases(std::move(deps)));
  if (cases->deps_.authority != nullptr) {
    OutboxRelayOptions options;
    options.topic = kFilingTopic;
    options.batch_size = 20;
    options.poll_interval = absl::Milliseconds(500);
    options.min_backoff = std::min(absl::Milliseconds(200), cases->deps_.filing_max_backoff);
    options.max_backoff = cases->deps_.filing_max_backoff;
    ASSIGN_OR_RETURN(cases->relay_, OutboxRelay::Create(cases->deps_.mysql, *cases->deps_.authority,
                                                        cases->deps_.metrics, options));
    cases->relay_->Start();
  }
  cases->credit_events_ = std::make_unique<CreditEventDelivery>(*cases->deps_.credit);
  OutboxRelayOptions credit;
  credit.topic = kCreditTopic;
  credit.poll_interval = absl::Milliseconds(500);
  credit.max_backoff = cases->deps_.filing_max_backoff;
  credit.min_backoff = std::min(credit.min_backoff, credit.max_backoff);
  ASSIGN_OR_RETURN(cases->credit_relay_,
                   OutboxRelay::Create(cases->deps_.mysql, *cases->credit_events_,
                                       cases->deps_.metrics, credit));
  cases->credit_relay_->Start();
  if (cases->deps_.run_recovery) cases->recovery_.Start();
  cases->thread_ = std::thread([c = cases.get()] { c->Loop(); });
  return cases;
}

Cases::~Cases() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
  recovery_.Stop();
  if (relay_ != nullptr) relay_->Stop();
  if (credit_relay_ != nullptr) credit_relay_->Stop();
}

absl::Status Cases::RecordInspection(const RequestContext& context) {
  return WithTransaction(deps_.mysql, [&](sql::Connection& conn) {
    return AuditChange(conn, context, "REGULATOR_INSPECTED", "", deps_.clock.Now(), {}, {});
  });
}

void Cases::Loop() {
  bool reconciled = false;
  for (;;) {
    if (!reconciled || projection_.dirty()) {
      absl::Status status = projection_.Reconcile();
      if (!status.ok()) {
        LogWarning("case_projection_reconcile_failed", {{"error", status.ToString()}});
      }
      reconciled = status.ok();
    }
    (void)metrics_.Refresh(deps_.mysql, deps_.clock.Now());
    absl::MutexLock lock(&mu_);
    auto stop = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
    if (mu_.AwaitWithTimeout(absl::Condition(&stop), deps_.background_interval)) return;
  }
}

absl::StatusOr<std::unique_ptr<Cases>> MakeCases(ServiceDeps& deps, const CaseFlags& flags) {
  if (flags.recovery.grace <= flags.call_deadline) {
    return absl::InvalidArgumentError(
        "--disposition-recovery-grace must exceed --dependency-deadline, or the recovery could "
        "race a call still in flight");
  }
  CaseDeps cd{deps.mysql,    deps.redis, deps.metrics, SystemClock::Get(),
              flags.reports, nullptr,    nullptr,      nullptr};
  cd.groups = std::make_unique<GrpcGroupsClient>(
      grpc::CreateChannel(flags.groups_target, grpc::InsecureChannelCredentials()),
      deps.service_token, flags.call_deadline);
  cd.credit = std::make_unique<GrpcCreditClient>(
      grpc::CreateChannel(flags.credit_target, grpc::InsecureChannelCredentials()),
      deps.service_token, flags.call_deadline);
  if (!flags.authority_target.empty()) {
    cd.authority = std::make_unique<FilingDelivery>(
        deps.mysql, grpc::CreateChannel(flags.authority_target, grpc::InsecureChannelCredentials()),
        flags.provider_name, flags.call_deadline, SystemClock::Get());
  }
  cd.filing_max_backoff = flags.filing_max_backoff;
  cd.recovery = flags.recovery;
  return Cases::Create(std::move(cd));
}

}  // namespace qunzu::moderation
