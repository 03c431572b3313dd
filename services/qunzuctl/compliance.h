// `qunzuctl compliance report`: REGULATION.md article by article, the live
// evidence the running suite gives for each requirement. A check whose RPC
// fails (UNIMPLEMENTED, unreachable, denied) is reported as MISSING with the
// error, never guessed; the report is then incomplete (exit 3). Evidence
// that shows a requirement is not met is FAIL (exit 1). ATTENTION marks
// what an inspector should look at (overdue reports, undelivered filings)
// without failing the report.
#ifndef QUNZU_SERVICES_QUNZUCTL_COMPLIANCE_H_
#define QUNZU_SERVICES_QUNZUCTL_COMPLIANCE_H_

#include <ostream>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "services/qunzuctl/render.h"
#include "services/qunzuctl/rpc.h"

namespace qunzu::ctl {

enum class Verdict { kOk, kAttention, kFail, kMissing };

struct ComplianceItem {
  int article = 0;
  // "R13.2"; several ids joined with commas.
  std::string requirements;
  std::string title;
  Verdict verdict = Verdict::kOk;
  std::string evidence;
};

struct ComplianceOptions {
  // PEM file of the audit signing key pinned out of band; empty: use the
  // key the audit API reports (and say so).
  std::string audit_public_key;
  // Window of the report-handling statistics.
  absl::Duration stats_window = absl::Hours(24 * 30);
  absl::Time now = absl::Now();
};

// Collects every item; never fails as a whole.
std::vector<ComplianceItem> CollectCompliance(RpcCaller& rpc, const ComplianceOptions& options);

// 0 when every item is OK or ATTENTION, 1 when one FAILs, else 3 when one
// is MISSING.
int ComplianceExitCode(const std::vector<ComplianceItem>& items);

void RenderCompliance(const std::vector<ComplianceItem>& items, const ComplianceOptions& options,
                      OutputFormat format, std::ostream& out);

// The subcommand: parses --audit-public-key and --window, collects, renders.
int RunComplianceReport(RpcCaller& rpc, const std::vector<std::string>& args, OutputFormat format,
                        std::ostream& out, std::ostream& err);

}  // namespace qunzu::ctl

#endif  // QUNZU_SERVICES_QUNZUCTL_COMPLIANCE_H_
