#include "services/qunzuctl/compliance.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <functional>
#include <optional>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "qunzu/audit/v1/audit.pb.h"
#include "qunzu/credit/v1/credit.pb.h"
#include "qunzu/groups/v1/groups.pb.h"
#include "qunzu/identity/v1/identity.pb.h"
#include "qunzu/moderation/v1/moderation.pb.h"
#include "services/audit/signer.h"
#include "services/qunzuctl/audit_checks.h"
#include "services/qunzuctl/exit_codes.h"
#include "services/qunzuctl/field_setter.h"

namespace qunzu::ctl {
namespace {

namespace mod = moderation::v1;
using google::protobuf::util::TimeUtil;

constexpr char kModeration[] = "qunzu.moderation.v1.ModerationService.";
// Lists are counted up to this many entries; more is reported as "at least".
constexpr int kCountLimit = 10000;

std::string Time(const google::protobuf::Timestamp& time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(time.seconds()),
                          absl::UTCTimeZone());
}

std::string Days(const google::protobuf::Duration& duration) {
  return absl::StrCat(duration.seconds() / 86400, " days");
}

template <typename E>
std::string Short(const google::protobuf::EnumDescriptor* type, E value) {
  return ShortEnumName(*type, static_cast<int>(value));
}

ComplianceItem Item(int article, std::string requirements, std::string title) {
  ComplianceItem item;
  item.article = article;
  item.requirements = std::move(requirements);
  item.title = std::move(title);
  return item;
}

ComplianceItem Missing(ComplianceItem item, absl::string_view what, const absl::Status& status) {
  item.verdict = Verdict::kMissing;
  item.evidence = absl::StrCat(what, " failed: ", DescribeError(status));
  return item;
}

// Pages through a list RPC; on_page returns the number of entries it saw.
template <typename Request, typename Response>
absl::StatusOr<int> CountAll(RpcCaller& rpc, const std::string& method, Request request,
                             const std::function<int(const Response&)>& count) {
  int total = 0;
  request.mutable_page()->set_page_size(1000);
  for (;;) {
    Response response;
    RETURN_IF_ERROR(CallMethod(rpc, kModeration + method, request, &response));
    total += count(response);
    if (response.page().next_page_token().empty() || total >= kCountLimit) return total;
    request.mutable_page()->set_page_token(response.page().next_page_token());
  }
}

std::string AtLeast(int count) {
  return count >= kCountLimit ? absl::StrCat("at least ", count) : absl::StrCat(count);
}

// One call for an item's evidence; when it fails, *item becomes MISSING
// naming what failed.
bool Ask(RpcCaller& rpc, const std::string& method, const std::string& what,
         const google::protobuf::Message& request, google::protobuf::Message* response,
         ComplianceItem* item) {
  absl::Status called = CallMethod(rpc, method, request, response);
  if (!called.ok()) *item = Missing(*item, what, called);
  return called.ok();
}

ComplianceItem RuleSets(RpcCaller& rpc) {
  ComplianceItem item = Item(5, "R5.2, R10.1", "information review: content rules in force");
  std::vector<std::string> in_force;
  int failed = 0;
  absl::StatusOr<int> seen = CountAll<mod::ListRuleSetsRequest, mod::ListRuleSetsResponse>(
      rpc, "ListRuleSets", {}, [&](const mod::ListRuleSetsResponse& response) {
        for (const mod::RuleSet& set : response.rule_sets()) {
          if (set.compile_state() == mod::COMPILE_STATE_FAILED) ++failed;
          if (set.active_version() == 0) continue;
          in_force.push_back(absl::StrCat("\"", set.name(), "\" v", set.active_version(), " (",
                                          set.rule_count(), " rules)"));
        }
        return response.rule_sets_size();
      });
  if (!seen.ok()) return Missing(item, "moderation ListRuleSets", seen.status());
  if (in_force.empty()) {
    item.verdict = Verdict::kFail;
    item.evidence = "no rule set is in force: nothing is screened";
    return item;
  }
  item.evidence =
      absl::StrCat(in_force.size(), " rule set(s) in force: ", absl::StrJoin(in_force, ", "));
  if (failed > 0) {
    item.verdict = Verdict::kAttention;
    absl::StrAppend(&item.evidence, "; ", failed, " latest version(s) failed to compile");
  }
  return item;
}

ComplianceItem EmergencyModes(RpcCaller& rpc) {
  ComplianceItem item = Item(5, "R5.3", "emergency handling: modes in force");
  mod::ListEmergencyModesRequest request;
  request.set_in_force_only(true);
  std::vector<std::string> modes;
  absl::StatusOr<int> seen =
      CountAll<mod::ListEmergencyModesRequest, mod::ListEmergencyModesResponse>(
          rpc, "ListEmergencyModes", request, [&](const mod::ListEmergencyModesResponse& r) {
            for (const mod::EmergencyMode& mode : r.modes()) {
              modes.push_back(absl::StrCat(Short(mod::EmergencyLevel_descriptor(), mode.level()),
                                           " on ",
                                           Short(mod::EmergencyScope_descriptor(), mode.scope()),
                                           " until ", Time(mode.expires_at())));
            }
            return r.modes_size();
          });
  if (!seen.ok()) return Missing(item, "moderation ListEmergencyModes", seen.status());
  item.evidence = modes.empty()
                      ? "the switch answers; no mode in force"
                      : absl::StrCat(modes.size(), " in force: ", absl::StrJoin(modes, "; "));
  return item;
}

ComplianceItem Agreements(RpcCaller& rpc) {
  ComplianceItem item = Item(5, "R5.4", "service agreement in force; acceptance required");
  identity::v1::GetAgreementStatusResponse status;
  if (!Ask(rpc, "qunzu.identity.v1.IdentityService.GetAgreementStatus",
           "identity GetAgreementStatus", identity::v1::GetAgreementStatusRequest(), &status,
           &item)) {
    return item;
  }
  std::vector<std::string> current;
  for (const identity::v1::Agreement& agreement : status.current()) {
    current.push_back(
        absl::StrCat(Short(identity::v1::AgreementKind_descriptor(), agreement.kind()), " v",
                     agreement.version(), " \"", agreement.label(), "\" effective ",
                     Time(agreement.effective_at())));
  }
  if (current.empty()) {
    item.verdict = Verdict::kFail;
    item.evidence = "no agreement is in force";
    return item;
  }
  item.evidence = absl::StrCat(absl::StrJoin(current, "; "),
                               "; users who have not accepted the current versions cannot "
                               "publish");
  return item;
}

ComplianceItem Verification(const absl::StatusOr<credit::v1::CreditPolicy>& policy) {
  ComplianceItem item = Item(6, "R6.1", "publishing requires real-name verification");
  if (!policy.ok()) return Missing(item, "credit GetPolicy", policy.status());
  if (policy->level_rules().empty()) {
    item.verdict = Verdict::kFail;
    item.evidence = "the credit policy has no levels";
    return item;
  }
  const credit::v1::LevelRule& unrated = policy->level_rules(0);
  item.evidence = absl::StrCat(
      "always on (no setting turns it off): groups refuses unverified creators and members, "
      "the message screen unverified senders; unverified accounts are unrated, level 0 \"",
      unrated.name(), "\": may create ", unrated.entitlements().groups_may_create(), " groups");
  return item;
}

absl::StatusOr<groups::v1::GroupsPolicy> GroupsPolicy(RpcCaller& rpc, std::string* digest) {
  groups::v1::ExportFilingDocumentRequest request;
  request.set_format(groups::v1::DOCUMENT_FORMAT_JSON);
  groups::v1::ExportFilingDocumentResponse document;
  RETURN_IF_ERROR(
      CallMethod(rpc, "qunzu.groups.v1.GroupService.ExportFilingDocument", request, &document));
  groups::v1::GroupsPolicy policy;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  auto parsed = google::protobuf::util::JsonStringToMessage(document.content(), &policy, options);
  if (!parsed.ok()) {
    return absl::DataLossError(absl::StrCat("the filing document is not the policy JSON: ",
                                            std::string(parsed.message())));
  }
  *digest = absl::BytesToHexString(document.content_sha256());
  return policy;
}

std::vector<ComplianceItem> CapsItems(const absl::StatusOr<groups::v1::GroupsPolicy>& groups,
                                      const std::string& digest,
                                      const absl::StatusOr<credit::v1::CreditPolicy>& credit) {
  ComplianceItem filing = Item(7, "R7.2", "tier rules exported as a filing document");
  ComplianceItem levels = Item(7, "R7.3, R7.4", "credit levels decide what a user may do");
  ComplianceItem tiers = Item(8, "R8.1, R8.5, R8.6", "member caps per tier, info page, review");
  ComplianceItem personal = Item(8, "R8.2, R8.3", "groups one may create and join, by level");
  if (!groups.ok()) {
    filing = Missing(filing, "groups ExportFilingDocument", groups.status());
    tiers = Missing(tiers, "groups ExportFilingDocument", groups.status());
  } else {
    filing.evidence = absl::StrCat("policy \"", groups->version(), "\", JSON sha256 ", digest);
    std::vector<std::string> caps;
    for (const groups::v1::TierRule& tier : groups->tiers()) {
      caps.push_back(absl::StrCat(Short(common::v1::ScaleTier_descriptor(), tier.scale_tier()), " ",
                                  tier.member_cap(),
                                  " members, owner level >= ", tier.min_owner_credit_level(),
                                  tier.manual_review() ? ", reviewed" : ""));
    }
    tiers.evidence = absl::StrCat(absl::StrJoin(caps, "; "), "; info page from ",
                                  groups->info_page_min_members(), " members");
    if (caps.empty()) tiers.verdict = Verdict::kFail;
  }
  if (!credit.ok()) {
    levels = Missing(levels, "credit GetPolicy", credit.status());
    personal = Missing(personal, "credit GetPolicy", credit.status());
  } else {
    std::vector<std::string> by_level, caps;
    for (const credit::v1::LevelRule& level : credit->level_rules()) {
      const credit::v1::Entitlements& e = level.entitlements();
      by_level.push_back(
          absl::StrCat("L", level.level(), " \"", level.name(), "\" from ", level.min_score()));
      caps.push_back(absl::StrCat("L", level.level(), " create ", e.groups_may_create(), " join ",
                                  e.groups_may_join(), " up to ",
                                  Short(common::v1::ScaleTier_descriptor(), e.max_create_tier())));
    }
    levels.evidence =
        absl::StrCat("policy \"", credit->version(), "\": ", absl::StrJoin(by_level, ", "));
    personal.evidence = absl::StrJoin(caps, "; ");
  }
  return {filing, levels, tiers, personal};
}

ComplianceItem Dispositions(RpcCaller& rpc) {
  ComplianceItem item = Item(11, "R11.1, R11.2, R11.4", "dispositions recorded with basis");
  mod::ListDispositionsRequest request;
  request.set_state(mod::DISPOSITION_STATE_ACTIVE);
  absl::StatusOr<int> active =
      CountAll<mod::ListDispositionsRequest, mod::ListDispositionsResponse>(
          rpc, "ListDispositions", request,
          [](const mod::ListDispositionsResponse& r) { return r.dispositions_size(); });
  if (!active.ok()) return Missing(item, "moderation ListDispositions", active.status());
  item.evidence = absl::StrCat(AtLeast(*active), " active disposition(s) on record");
  return item;
}

ComplianceItem Blacklist(RpcCaller& rpc) {
  ComplianceItem item = Item(11, "R11.3", "blacklist in force");
  mod::ListBlacklistRequest request;
  request.set_state(mod::BLACKLIST_ENTRY_STATE_ACTIVE);
  absl::StatusOr<int> active = CountAll<mod::ListBlacklistRequest, mod::ListBlacklistResponse>(
      rpc, "ListBlacklist", request,
      [](const mod::ListBlacklistResponse& r) { return r.entries_size(); });
  if (!active.ok()) return Missing(item, "moderation ListBlacklist", active.status());
  item.evidence = absl::StrCat(AtLeast(*active), " active entr(ies)");
  return item;
}

ComplianceItem Filings(RpcCaller& rpc) {
  ComplianceItem item = Item(11, "R11.5", "filings to the authority delivered");
  std::vector<std::string> parts;
  int undelivered = 0;
  for (mod::FilingDeliveryState state :
       {mod::FILING_DELIVERY_STATE_PENDING, mod::FILING_DELIVERY_STATE_RETRYING}) {
    mod::ListFilingsRequest request;
    request.set_delivery_state(state);
    std::string oldest;
    absl::StatusOr<int> count = CountAll<mod::ListFilingsRequest, mod::ListFilingsResponse>(
        rpc, "ListFilings", request, [&](const mod::ListFilingsResponse& r) {
          for (const mod::Filing& filing : r.filings()) oldest = Time(filing.created_at());
          return r.filings_size();
        });
    if (!count.ok()) return Missing(item, "moderation ListFilings", count.status());
    undelivered += *count;
    parts.push_back(absl::StrCat(AtLeast(*count), " ",
                                 Short(mod::FilingDeliveryState_descriptor(), state),
                                 oldest.empty() ? "" : absl::StrCat(" (oldest ", oldest, ")")));
  }
  item.evidence = absl::StrCat("not yet delivered: ", absl::StrJoin(parts, ", "));
  if (undelivered > 0) item.verdict = Verdict::kAttention;
  return item;
}

ComplianceItem Reports(RpcCaller& rpc, const ComplianceOptions& options) {
  ComplianceItem item = Item(12, "R12.3, R12.4", "reports handled on time");
  mod::GetHandlingStatsRequest request;
  *request.mutable_start_time() =
      TimeUtil::SecondsToTimestamp(absl::ToUnixSeconds(options.now - options.stats_window));
  // To the nanosecond: reports are stamped to the microsecond, and an end
  // cut to the whole second would leave out those filed in this second.
  *request.mutable_end_time() = TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(options.now));
  mod::GetHandlingStatsResponse stats;
  if (!Ask(rpc, absl::StrCat(kModeration, "GetHandlingStats"), "moderation GetHandlingStats",
           request, &stats, &item)) {
    return item;
  }
  const mod::HandlingStats& t = stats.total();
  item.evidence = absl::StrCat(
      "last ", absl::FormatDuration(options.stats_window), ": received ", t.received(),
      ", handled ", t.handled(), ", open ", t.open(), ", overdue ", t.overdue(), ", handled late ",
      t.handled_late(), ", median ",
      absl::FormatDuration(absl::Seconds(t.median_time_to_handle().seconds())), ", worst ",
      absl::FormatDuration(absl::Seconds(t.worst_time_to_handle().seconds())));
  if (t.overdue() > 0) item.verdict = Verdict::kAttention;
  return item;
}

ComplianceItem Retention(RpcCaller& rpc) {
  ComplianceItem item = Item(13, "R13.2", "logs kept at least 180 days");
  audit::v1::GetRetentionStatusResponse status;
  if (!Ask(rpc, "qunzu.audit.v1.AuditService.GetRetentionStatus", "audit GetRetentionStatus",
           audit::v1::GetRetentionStatusRequest(), &status, &item)) {
    return item;
  }
  int holds = 0;
  for (const audit::v1::LegalHold& hold : status.legal_holds()) {
    if (!hold.has_released_at()) ++holds;
  }
  item.evidence = absl::StrCat(
      "retention ", Days(status.retention()), " (floor ", Days(status.minimum_retention()),
      "); oldest kept entry ",
      status.has_oldest_entry_time() ? Time(status.oldest_entry_time()) : std::string("none"),
      " (leaf ", status.oldest_leaf_index(), ") of ", status.tree_size(), "; ", holds,
      " active legal hold(s); last purge ",
      status.has_last_purge() ? Time(status.last_purge().time()) : std::string("never"));
  constexpr int64_t kFloorSeconds = int64_t{180} * 86400;
  if (status.retention().seconds() < kFloorSeconds ||
      status.retention().seconds() < status.minimum_retention().seconds()) {
    item.verdict = Verdict::kFail;
  }
  return item;
}

ComplianceItem Checkpoint(RpcCaller& rpc, const ComplianceOptions& options) {
  ComplianceItem item = Item(13, "R13.3", "newest audit checkpoint verified");
  absl::StatusOr<audit::v1::GetCheckpointResponse> latest = FetchCheckpoint(rpc, 0);
  if (!latest.ok()) return Missing(item, "audit GetCheckpoint", latest.status());
  std::string key = latest->signing_key().public_key();
  std::string key_source = "key from the audit API, not pinned";
  if (!options.audit_public_key.empty()) {
    absl::StatusOr<std::string> pinned = ReadPublicKeyPem(options.audit_public_key);
    if (!pinned.ok()) return Missing(item, "reading --audit-public-key", pinned.status());
    key = *pinned;
    key_source = "pinned key";
  }
  const audit::v1::Checkpoint& newest = latest->checkpoint();
  std::string head =
      absl::StrCat("checkpoint at size ", newest.tree_size(), " signed ", Time(newest.time()));
  if (absl::Status signature = VerifyCheckpoint(newest, key); !signature.ok()) {
    item.verdict = Verdict::kFail;
    item.evidence = absl::StrCat(head, ": ", signature.message());
    return item;
  }
  absl::StatusOr<audit::v1::Checkpoint> previous = PreviousCheckpoint(rpc, newest.tree_size());
  std::string consistency;
  if (previous.ok()) {
    absl::Status signed_ok = VerifyCheckpoint(*previous, key);
    absl::Status consistent =
        signed_ok.ok() ? VerifyConsistencyBetween(rpc, *previous, newest) : signed_ok;
    if (!consistent.ok() && consistent.code() != absl::StatusCode::kFailedPrecondition) {
      return Missing(item, "audit consistency proof", consistent);
    }
    if (!consistent.ok()) {
      item.verdict = Verdict::kFail;
      item.evidence = absl::StrCat(head, ": ", consistent.message());
      return item;
    }
    consistency =
        absl::StrCat("; consistent with the previous checkpoint at size ", previous->tree_size());
  } else if (absl::IsNotFound(previous.status())) {
    consistency = "; the first checkpoint (no earlier one to prove consistency with)";
  } else {
    return Missing(item, "audit ListCheckpoints", previous.status());
  }
  item.evidence = absl::StrCat(head, ": Ed25519 signature valid (", key_source, ")", consistency);
  return item;
}

const char* VerdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::kOk:
      return "OK";
    case Verdict::kAttention:
      return "ATTENTION";
    case Verdict::kFail:
      return "FAIL";
    case Verdict::kMissing:
      return "MISSING";
  }
  return "";
}

std::string Summary(const std::vector<ComplianceItem>& items) {
  int missing = 0, failed = 0;
  for (const ComplianceItem& item : items) {
    missing += item.verdict == Verdict::kMissing;
    failed += item.verdict == Verdict::kFail;
  }
  if (failed > 0) return absl::StrCat("FAILED: ", failed, " requirement(s) not met");
  if (missing > 0) {
    return absl::StrCat("INCOMPLETE: ", missing, " item(s) without evidence (see MISSING)");
  }
  return "COMPLETE: every item evidenced";
}

}  // namespace

std::vector<ComplianceItem> CollectCompliance(RpcCaller& rpc, const ComplianceOptions& options) {
  std::vector<ComplianceItem> items = {RuleSets(rpc), EmergencyModes(rpc), Agreements(rpc)};
  credit::v1::GetPolicyResponse credit_policy;
  absl::Status credit_status = CallMethod(rpc, "qunzu.credit.v1.CreditService.GetPolicy",
                                          credit::v1::GetPolicyRequest(), &credit_policy);
  absl::StatusOr<credit::v1::CreditPolicy> credit =
      credit_status.ok() ? absl::StatusOr<credit::v1::CreditPolicy>(credit_policy.policy())
                         : absl::StatusOr<credit::v1::CreditPolicy>(credit_status);
  items.push_back(Verification(credit));
  std::string digest;
  absl::StatusOr<groups::v1::GroupsPolicy> groups = GroupsPolicy(rpc, &digest);
  for (ComplianceItem& item : CapsItems(groups, digest, credit)) items.push_back(std::move(item));
  items.push_back(Dispositions(rpc));
  items.push_back(Blacklist(rpc));
  items.push_back(Filings(rpc));
  items.push_back(Reports(rpc, options));
  items.push_back(Retention(rpc));
  items.push_back(Checkpoint(rpc, options));
  return items;
}

int ComplianceExitCode(const std::vector<ComplianceItem>& items) {
  bool missing = false;
  for (const ComplianceItem& item : items) {
    if (item.verdict == Verdict::kFail) return kExitCheckFailed;
    missing = missing || item.verdict == Verdict::kMissing;
  }
  return missing ? kExitIncomplete : kExitOk;
}

void RenderCompliance(const std::vector<ComplianceItem>& items, const ComplianceOptions& options,
                      OutputFormat format, std::ostream& out) {
  std::string generated = absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", options.now, absl::UTCTimeZone());
  if (format == OutputFormat::kJson) {
    google::protobuf::Struct report;
    auto& fields = *report.mutable_fields();
    fields["generated_at"].set_string_value(generated);
    fields["complete"].set_bool_value(ComplianceExitCode(items) == kExitOk);
    fields["summary"].set_string_value(Summary(items));
    auto* list = fields["items"].mutable_list_value();
    for (const ComplianceItem& item : items) {
      auto& entry = *list->add_values()->mutable_struct_value()->mutable_fields();
      entry["article"].set_number_value(item.article);
      entry["requirements"].set_string_value(item.requirements);
      entry["title"].set_string_value(item.title);
      entry["verdict"].set_string_value(VerdictName(item.verdict));
      entry["evidence"].set_string_value(item.evidence);
    }
    google::protobuf::util::JsonPrintOptions print;
    print.add_whitespace = true;
    std::string json;
    (void)google::protobuf::util::MessageToJsonString(report, &json, print);
    out << json;
    return;
  }
  out << "Qunzu compliance report, " << generated
      << " (REGULATION.md: Provisions on the Administration of Internet Group Information "
         "Services)\n\n";
  int article = -1;
  for (const ComplianceItem& item : items) {
    if (item.article != article) {
      article = item.article;
      out << "Article " << article << "\n";
    }
    out << "  " << VerdictName(item.verdict)
        << std::string(10 - std::string(VerdictName(item.verdict)).size(), ' ') << item.requirements
        << "  " << item.title << "\n      " << item.evidence << "\n";
  }
  out << "\n" << Summary(items) << "\n";
}

int RunComplianceReport(RpcCaller& rpc, const std::vector<std::string>& args, OutputFormat format,
                        std::ostream& out, std::ostream& err) {
  ComplianceOptions options;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string name = args[i];
    std::string value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      err << "qunzuctl compliance report: " << name << " needs a value\n";
      return kExitUsage;
    }
    if (name == "--audit-public-key") {
      options.audit_public_key = value;
    } else if (name == "--window") {
      absl::StatusOr<absl::Duration> window = ParseDurationWithDays(value);
      if (!window.ok() || *window <= absl::ZeroDuration() || *window > absl::Hours(24 * 366)) {
        err << "qunzuctl compliance report: --window: \"" << value
            << "\" is not a duration up to 366d\n";
        return kExitUsage;
      }
      options.stats_window = *window;
    } else {
      err << "qunzuctl compliance report: unknown flag " << name
          << " (flags: --audit-public-key PEM, --window 30d)\n";
      return kExitUsage;
    }
  }
  std::vector<ComplianceItem> items = CollectCompliance(rpc, options);
  RenderCompliance(items, options, format, out);
  return ComplianceExitCode(items);
}

}  // namespace qunzu::ctl
