#include "services/qunzuctl/commands.h"

#include <google/protobuf/descriptor.h>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "qunzu/audit/v1/audit.pb.h"
#include "qunzu/credit/v1/credit.pb.h"
#include "qunzu/groups/v1/groups.pb.h"
#include "qunzu/identity/v1/identity.pb.h"
#include "qunzu/moderation/v1/moderation.pb.h"

namespace qunzu::ctl {
namespace {

using Strings = std::vector<std::string>;

// Builds one descriptor; each setter returns *this so the table reads as a
// list.
class Def {
 public:
  Def(std::string words, std::string service, std::string method, std::string summary) {
    command_.words = std::move(words);
    command_.method = std::move(service) + "." + std::move(method);
    command_.summary = std::move(summary);
  }
  Def& Pos(Strings fields) {
    command_.positional = std::move(fields);
    return *this;
  }
  Def& Req(Strings fields) {
    command_.required = std::move(fields);
    return *this;
  }
  Def& Default(std::string field, std::string value) {
    command_.defaults.emplace_back(std::move(field), std::move(value));
    return *this;
  }
  Def& Alias(std::string flag, std::string field) {
    command_.aliases[std::move(flag)] = std::move(field);
    return *this;
  }
  Def& Extra(std::string flag) {
    command_.extra_flags.push_back(std::move(flag));
    return *this;
  }
  Def& Columns(Strings columns) {
    command_.columns = std::move(columns);
    return *this;
  }
  Def& Raw(std::string field) {
    command_.raw_field = std::move(field);
    return *this;
  }
  Def& Prepare(PrepareHook hook) {
    command_.prepare = hook;
    return *this;
  }
  Def& Check(CheckHook hook) {
    command_.check = hook;
    return *this;
  }
  operator Command() const { return command_; }  // NOLINT(google-explicit-constructor)

 private:
  Command command_;
};

constexpr char kIdentity[] = "qunzu.identity.v1.IdentityService";
constexpr char kGroups[] = "qunzu.groups.v1.GroupService";
constexpr char kCredit[] = "qunzu.credit.v1.CreditService";
constexpr char kModeration[] = "qunzu.moderation.v1.ModerationService";
constexpr char kAudit[] = "qunzu.audit.v1.AuditService";

std::vector<Command> IdentityCommands() {
  return {
      Def("accounts create", kIdentity, "CreateAccount",
          "Create an account under a public nickname (platform).")
          .Pos({"nickname"})
          .Req({"nickname"}),
      Def("accounts get", kIdentity, "GetAccount",
          "The public view of an account: nickname, verified, agreements current.")
          .Pos({"account_id"})
          .Req({"account_id|platform_user_id"}),
      Def("accounts verify", kIdentity, "SubmitRealName",
          "Submit a user's real identity for verification (platform, for the user).")
          .Pos({"actor_account_id"})
          .Alias("name", "resident_identity.legal_name")
          .Alias("id-number", "resident_identity.resident_id_number")
          .Alias("phone", "real_name_phone.phone")
          .Req({"actor_account_id", "resident_identity|real_name_phone"}),
      Def("accounts verification get", kIdentity, "GetVerification",
          "Verification state and the masked identity.")
          .Pos({"account_id"})
          .Req({"account_id"}),
      Def("accounts reveal", kIdentity, "RevealIdentity",
          "The clear identity for a case and a reason; audited.")
          .Pos({"account_id"})
          .Alias("case", "case_reference")
          .Req({"account_id", "case_reference", "reason"}),
      Def("agreements publish", kIdentity, "PublishAgreement",
          "Publish a new version of the service agreement or platform convention.")
          .Req({"kind", "title", "body"}),
      Def("agreements status", kIdentity, "GetAgreementStatus",
          "The agreements in force and, for an account, its acceptances.")
          .Pos({"account_id"}),
      Def("agreements accept", kIdentity, "AcceptAgreement",
          "Record that a user accepted the current version (platform, for the user); the "
          "version and digest default to the current ones.")
          .Pos({"actor_account_id"})
          .Req({"actor_account_id", "kind"})
          .Prepare(PrepareAgreementAccept),
  };
}

std::vector<Command> GroupsCommands() {
  const Strings group_columns = {"group_id",   "code",     "name",         "state",
                                 "scale_tier", "category", "member_count", "owner_account_id"};
  return {
      Def("groups create", kGroups, "CreateGroup", "Create a group owned by the acting user.")
          .Alias("tier", "scale_tier")
          .Default("join_policy", "OPEN")
          .Req({"actor_account_id", "name", "category", "scale_tier"}),
      Def("groups review", kGroups, "ReviewGroupCreation",
          "Approve or reject a group waiting for creation review.")
          .Pos({"group_id"})
          .Req({"group_id", "decision", "reason"}),
      Def("groups get", kGroups, "GetGroup", "A group by id (or --code).")
          .Pos({"group_id"})
          .Req({"group_id|code"}),
      Def("groups list", kGroups, "ListGroups", "Groups with filters (review queue, states).")
          .Columns(group_columns),
      Def("groups info-page", kGroups, "GetGroupInfoPage", "The public information page.")
          .Pos({"group_id"})
          .Req({"group_id|code"}),
      Def("groups join", kGroups, "JoinGroup", "The acting user joins or applies to join.")
          .Pos({"group_id"})
          .Req({"actor_account_id", "group_id"}),
      Def("groups members list", kGroups, "ListMembers", "Members with their role labels.")
          .Pos({"group_id"})
          .Req({"group_id"})
          .Columns({"account_id", "role", "join_method", "joined_at", "muted_until"}),
      Def("groups of-account", kGroups, "ListGroupsOfAccount",
          "The groups of an account and its counts against both caps.")
          .Pos({"account_id"})
          .Req({"account_id"})
          .Columns({"group.group_id", "group.code", "group.name", "role", "group.state"}),
      Def("groups state set", kGroups, "SetGroupState",
          "Set a group's state (moderation's service token only; staff use dispositions).")
          .Pos({"group_id"})
          .Req({"group_id", "state", "reason"}),
      Def("groups tier", kGroups, "GetManagementTier", "A group's management tier and why.")
          .Pos({"group_id"})
          .Req({"group_id"}),
      Def("groups filing-document", kGroups, "ExportFilingDocument",
          "The tier rules as a filing document (MARKDOWN or JSON).")
          .Default("format", "MARKDOWN")
          .Raw("content"),
  };
}

std::vector<Command> CreditCommands() {
  return {
      Def("credit get", kCredit, "GetCredit",
          "Score, level, entitlements and active penalties of an account.")
          .Pos({"account_id"})
          .Req({"account_id"}),
      Def("credit history", kCredit, "ListCreditHistory", "Every change of score or level.")
          .Pos({"account_id"})
          .Req({"account_id"})
          .Columns({"entry_id", "kind", "event_type", "delta", "score_after", "level_after",
                    "reference", "recorded_at"}),
      Def("credit penalty apply", kCredit, "ApplyPenalty",
          "Apply a penalty (moderation's service token only; staff use dispositions account).")
          .Pos({"account_id"})
          .Req({"account_id", "kind", "until", "disposition_id"}),
      Def("credit penalty lift", kCredit, "LiftPenalty",
          "Lift a penalty early (moderation's service token only).")
          .Pos({"penalty_id"})
          .Req({"penalty_id", "reason"}),
      Def("credit policy", kCredit, "GetPolicy", "The credit policy in force."),
  };
}

std::vector<Command> ModerationCommands() {
  return {
      Def("rules upsert", kModeration, "UpsertRuleSet",
          "Create or replace a rule set from a file of terms (--file), and activate it.")
          .Extra("file")
          .Default("mode", "REPLACE")
          .Default("activate", "true")
          .Req({"name|rule_set_id"})
          .Prepare(PrepareRuleSetUpsert),
      Def("rules list", kModeration, "ListRuleSets", "Rule sets, versions and compile state.")
          .Columns({"rule_set_id", "name", "latest_version", "active_version", "rule_count",
                    "compile_state", "updated_at"}),
      Def("rules test", kModeration, "TestRules", "What would match in a text, and why.")
          .Pos({"text"})
          .Columns({"rule.rule_id", "rule.pattern", "rule.category", "rule.action", "matched_text",
                    "span.start", "span.end", "suppressed_by_rule_id"})
          .Req({"text"}),
      Def("emergency set", kModeration, "SetEmergencyMode",
          "Put the platform, a category or a group into HOLD_ALL or SUSPEND_POSTING, or OFF.")
          .Req({"scope", "level", "reason"}),
      Def("emergency list", kModeration, "ListEmergencyModes", "Emergency modes.")
          .Columns({"emergency_mode_id", "scope", "group_category", "group_id", "level", "in_force",
                    "started_at", "expires_at"}),
      Def("reports submit", kModeration, "SubmitReport",
          "Report a message, a group or an account (platform, for the reporter).")
          .Alias("kind", "target.kind")
          .Alias("group", "target.group_id")
          .Alias("account", "target.account_id")
          .Alias("message-id", "target.message_id")
          .Req({"target.kind", "category"}),
      Def("reports list", kModeration, "ListReports", "The report queue, earliest deadline first.")
          .Columns({"report_id", "state", "category", "target.kind", "target.group_id",
                    "target.account_id", "deadline", "overdue", "assignee"}),
      Def("reports get", kModeration, "GetReport", "One report.")
          .Pos({"report_id"})
          .Req({"report_id"}),
      Def("reports claim", kModeration, "ClaimReport", "Claim, take over or release a report.")
          .Pos({"report_id"})
          .Default("action", "CLAIM")
          .Req({"report_id"}),
      Def("reports resolve", kModeration, "ResolveReport",
          "Resolve a claimed report with an outcome and a statement of reasons.")
          .Pos({"report_id"})
          .Alias("statement", "statement_of_reasons")
          .Req({"report_id", "outcome", "statement_of_reasons"}),
      Def("reports stats", kModeration, "GetHandlingStats",
          "Handling statistics (default: the last 30 days).")
          .Default("start_time", "-30d")
          .Default("end_time", "now"),
      Def("dispositions group", kModeration, "DisposeGroup",
          "WARN, SUSPEND_POSTING or CLOSE a group, on a basis of reports or rules.")
          .Pos({"group_id"})
          .Alias("statement", "statement_of_reasons")
          .Alias("report", "basis.report_ids")
          .Alias("rule", "basis.rule_ids")
          .Req({"group_id", "kind", "statement_of_reasons"}),
      Def("dispositions account", kModeration, "DisposeAccount",
          "CREDIT_DOWNGRADE, SUSPEND_ADMIN or REVOKE_CREATION for an account.")
          .Pos({"account_id"})
          .Alias("statement", "statement_of_reasons")
          .Alias("report", "basis.report_ids")
          .Alias("rule", "basis.rule_ids")
          .Req({"account_id", "kind", "statement_of_reasons"}),
      Def("dispositions revoke", kModeration, "RevokeDisposition",
          "Revoke an active disposition, with a reason.")
          .Pos({"disposition_id"})
          .Req({"disposition_id", "reason"}),
      Def("dispositions get", kModeration, "GetDisposition", "One disposition.")
          .Pos({"disposition_id"})
          .Req({"disposition_id"}),
      Def("dispositions list", kModeration, "ListDispositions", "Dispositions, newest first.")
          .Columns({"disposition_id", "kind", "state", "group_id", "account_id", "decided_by",
                    "decided_at", "filing_id"}),
      Def("blacklist add", kModeration, "AddToBlacklist",
          "Blacklist an account or a group, with a reason and optional expiry.")
          .Alias("kind", "subject_kind")
          .Req({"subject_kind", "subject_id", "reason"}),
      Def("blacklist remove", kModeration, "RemoveFromBlacklist",
          "Lift a blacklist entry, with a reason.")
          .Pos({"blacklist_entry_id"})
          .Req({"blacklist_entry_id", "reason"}),
      Def("blacklist list", kModeration, "ListBlacklist", "Blacklist entries.")
          .Columns({"blacklist_entry_id", "subject_kind", "subject_id", "state", "reason",
                    "added_at", "expires_at"}),
      Def("filings list", kModeration, "ListFilings",
          "Filings to the authority and their delivery state.")
          .Columns({"filing_id", "kind", "subject_kind", "subject_id", "delivery_state", "attempts",
                    "created_at", "receipt_id"}),
      Def("held get", kModeration, "GetHeldMessage", "The review state of a held message.")
          .Pos({"report_id"})
          .Req({"report_id"}),
      Def("held list", kModeration, "ListHeldMessages", "Held messages.")
          .Columns({"report_id", "message_id", "group_id", "sender_account_id", "state", "held_at",
                    "deadline"}),
      Def("screen message", kModeration, "ScreenMessage",
          "Screen one message as the platform would before delivery.")
          .Pos({"text"})
          .Alias("group", "group_id")
          .Req({"actor_account_id", "group_id", "text"}),
      Def("screen text", kModeration, "ScreenText", "Screen a name or announcement text.")
          .Pos({"text"})
          .Default("purpose", "OTHER")
          .Req({"text"}),
  };
}

std::vector<Command> AuditCommands() {
  return {
      Def("audit query", kAudit, "Query", "Audit entries by time, service, action, subject...")
          .Alias("service", "filter.service")
          .Alias("action", "filter.action")
          .Alias("principal", "filter.principal")
          .Alias("actor", "filter.actor_account_id")
          .Alias("since", "filter.start_time")
          .Alias("until", "filter.end_time")
          .Columns({"leaf_index", "event.time", "event.service", "event.action", "event.principal",
                    "event.result_code", "event.result_reason"}),
      Def("audit checkpoint", kAudit, "GetCheckpoint",
          "The latest signed checkpoint (or --tree-size), its signature verified.")
          .Pos({"tree_size"})
          .Extra("public-key")
          .Check(CheckCheckpointSignature),
      Def("audit checkpoints list", kAudit, "ListCheckpoints", "Every checkpoint and key."),
      Def("audit proof inclusion", kAudit, "GetInclusionProof",
          "Prove a leaf is in the log, verified against the signed checkpoint.")
          .Pos({"leaf_index", "tree_size"})
          .Extra("public-key")
          .Check(CheckInclusionProof),
      Def("audit proof consistency", kAudit, "GetConsistencyProof",
          "Prove an older checkpoint is a prefix of a newer one, verified.")
          .Pos({"first_tree_size", "second_tree_size"})
          .Req({"first_tree_size"})
          .Extra("public-key")
          .Check(CheckConsistencyProof),
      Def("audit verify-range", kAudit, "VerifyRange",
          "Have the service re-hash a leaf range against its checkpoints.")
          .Pos({"start_leaf_index", "end_leaf_index"})
          .Check(CheckVerifyRange),
      Def("audit retention", kAudit, "GetRetentionStatus",
          "Retention in force, oldest entry, partitions, legal holds, last purge."),
      Def("audit legal-hold", kAudit, "SetLegalHold",
          "Place a legal hold on a time range (or release one with --legal-hold-id).")
          .Alias("case", "case_reference")
          .Req({"reason"}),
  };
}

std::vector<Command> BuildAll() {
  std::vector<Command> all;
  for (auto part : {IdentityCommands(), GroupsCommands(), CreditCommands(), ModerationCommands(),
                    AuditCommands()}) {
    all.insert(all.end(), part.begin(), part.end());
  }
  return all;
}

// Generated descriptors register when their object files are linked; a
// reference to each file keeps them in.
void LinkDescriptors() {
  (void)identity::v1::GetAccountRequest::descriptor();
  (void)groups::v1::GetGroupRequest::descriptor();
  (void)credit::v1::GetCreditRequest::descriptor();
  (void)moderation::v1::GetReportRequest::descriptor();
  (void)audit::v1::GetCheckpointRequest::descriptor();
}

}  // namespace

const std::vector<Command>& AllCommands() {
  static const auto* all = new std::vector<Command>(BuildAll());
  return *all;
}

const Command* FindCommand(const std::vector<std::string>& args, size_t* consumed) {
  const Command* best = nullptr;
  size_t best_words = 0;
  for (const Command& command : AllCommands()) {
    std::vector<std::string> words = absl::StrSplit(command.words, ' ');
    if (words.size() > args.size() || words.size() <= best_words) continue;
    if (std::equal(words.begin(), words.end(), args.begin())) {
      best = &command;
      best_words = words.size();
    }
  }
  *consumed = best_words;
  return best;
}

const google::protobuf::MethodDescriptor* MethodOf(const Command& command) {
  LinkDescriptors();
  return google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(command.method);
}

const std::map<std::string, std::string>& CommonAliases() {
  static const auto* aliases = new std::map<std::string, std::string>{
      {"actor", "actor_account_id"},
      {"page-size", "page.page_size"},
      {"page-token", "page.page_token"},
  };
  return *aliases;
}

}  // namespace qunzu::ctl
