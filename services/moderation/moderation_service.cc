#include "services/moderation/moderation_service.h"

#include <string>

#include "common/handler.h"
#include "services/moderation/rule_validation.h"

namespace qunzu::moderation {
namespace {

constexpr char kMethodPrefix[] = "/qunzu.moderation.v1.ModerationService/";

RequestContext ContextOf(const CallInfo& call, const char* method) {
  return RequestContext{call.caller, call.peer, std::string(kMethodPrefix) + method};
}

v1::ScreenVerdict ToProto(Verdict verdict) {
  switch (verdict) {
    case Verdict::kBlock:
      return v1::SCREEN_VERDICT_BLOCK;
    case Verdict::kHold:
      return v1::SCREEN_VERDICT_HOLD;
    case Verdict::kAllow:
      break;
  }
  return v1::SCREEN_VERDICT_ALLOW;
}

void FillReason(const RuleSnapshot& snapshot, const RuleMatch& match, v1::ScreenReason* reason) {
  const Rule& rule = snapshot.compiled->rules()[match.rule_index];
  reason->set_code(v1::SCREEN_REASON_CODE_CONTENT_RULE);
  reason->set_rule_id(rule.id);
  reason->set_rule_set_id(snapshot.origin[match.rule_index].first);
  reason->set_rule_set_version(snapshot.origin[match.rule_index].second);
  reason->set_category(static_cast<v1::ContentCategory>(rule.category));
  reason->set_action(rule.action == RuleAction::kHold ? v1::RULE_ACTION_HOLD
                                                      : v1::RULE_ACTION_BLOCK);
  reason->mutable_span()->set_start(match.original_begin);
  reason->mutable_span()->set_end(match.original_end);
}

}  // namespace

ModerationServiceImpl::ModerationServiceImpl(MysqlPool& mysql, prometheus::Registry& metrics,
                                             const Clock& clock)
    : store_(mysql, clock), engine_(store_), metrics_(metrics) {
  engine_.Start(kRulePollInterval);
}

grpc::Status ModerationServiceImpl::ScreenText(grpc::ServerContext* context,
                                               const v1::ScreenTextRequest* request,
                                               v1::ScreenTextResponse* response) {
  return Serve(context, [&](const CallInfo&) -> absl::Status {
    RETURN_IF_ERROR(ValidateScreenText(*request));
    thread_local NormalizedText normalized;
    thread_local ScanResult result;
    std::shared_ptr<const RuleSnapshot> snapshot;
    RETURN_IF_ERROR(
        engine_.Screen(request->text(), "text", false, &normalized, &result, &snapshot));
    response->set_verdict(ToProto(result.verdict));
    for (const RuleMatch& match : result.matches) {
      FillReason(*snapshot, match, response->add_reasons());
    }
    return absl::OkStatus();
  });
}

grpc::Status ModerationServiceImpl::UpsertRuleSet(grpc::ServerContext* context,
                                                  const v1::UpsertRuleSetRequest* request,
                                                  v1::UpsertRuleSetResponse* response) {
  return Serve(context, [&](const CallInfo& call) -> absl::Status {
    RETURN_IF_ERROR(ValidateUpsertRuleSet(*request));
    ASSIGN_OR_RETURN(*response, store_.Upsert(ContextOf(call, "UpsertRuleSet"), *request));
    response->mutable_rule_set()->set_compile_state(v1::COMPILE_STATE_COMPILING);
    return absl::OkStatus();
  });
}

grpc::Status ModerationServiceImpl::ListRuleSets(grpc::ServerContext* context,
                                                 const v1::ListRuleSetsRequest* request,
                                                 v1::ListRuleSetsResponse* response) {
  return Serve(context, [&](const CallInfo&) -> absl::Status {
    RETURN_IF_ERROR(ValidateListRuleSets(*request));
    ASSIGN_OR_RETURN(*response, store_.List(*request));
    std::shared_ptr<const RuleSnapshot> snapshot = engine_.Current();
    const std::string error = engine_.LastError();
    for (v1::RuleSet& set : *response->mutable_rule_sets()) {
      bool compiled = set.active_version() == 0;
      if (snapshot != nullptr) {
        for (const auto& [id, version] : snapshot->origin) {
          if (id == set.rule_set_id() && version == set.active_version()) {
            compiled = true;
            break;
          }
        }
      }
      set.set_compile_state(compiled ? v1::COMPILE_STATE_READY : v1::COMPILE_STATE_COMPILING);
      if (!compiled) set.set_compile_error(error);
    }
    return absl::OkStatus();
  });
}

grpc::Status ModerationServiceImpl::TestRules(grpc::ServerContext* context,
                                              const v1::TestRulesRequest* request,
                                              v1::TestRulesResponse* response) {
  return Serve(context, [&](const CallInfo&) -> absl::Status {
    RETURN_IF_ERROR(ValidateTestRules(*request));
    NormalizedText normalized;
    ScanResult result;
    std::shared_ptr<const RuleSnapshot> snapshot;
    RETURN_IF_ERROR(engine_.Screen(request->text(), "text", true, &normalized, &result, &snapshot));
    bool set_in_force = request->rule_set_id() == 0;
    for (const auto& [id, version] : snapshot->origin) {
      if (id == request->rule_set_id() &&
          (request->version() == 0 || request->version() == version)) {
        set_in_force = true;
      }
    }
    if (!set_in_force) {
      return MakeError(absl::StatusCode::kFailedPrecondition, "RULE_SET_NOT_COMPILED",
                       "that rule set version is not compiled and in force on this replica");
    }
    Verdict verdict = Verdict::kAllow;
    response->set_normalized_text(normalized.text);
    for (const RuleMatch& match : result.matches) {
      const auto& [set_id, version] = snapshot->origin[match.rule_index];
      if (request->rule_set_id() != 0 && set_id != request->rule_set_id()) continue;
      const Rule& rule = snapshot->compiled->rules()[match.rule_index];
      if (match.suppressed_by == 0) {
        if (rule.action == RuleAction::kBlock) verdict = Verdict::kBlock;
        if (rule.action == RuleAction::kHold && verdict == Verdict::kAllow)
          verdict = Verdict::kHold;
      }
      v1::RuleMatch* out = response->add_matches();
      out->mutable_rule()->set_rule_id(rule.id);
      out->mutable_rule()->set_kind(rule.kind == RuleKind::kRegex ? v1::RULE_KIND_REGEX
                                                                  : v1::RULE_KIND_LITERAL);
      out->mutable_rule()->set_pattern(rule.pattern);
      out->mutable_rule()->set_category(static_cast<v1::ContentCategory>(rule.category));
      out->mutable_rule()->set_action(rule.action == RuleAction::kHold ? v1::RULE_ACTION_HOLD
                                                                       : v1::RULE_ACTION_BLOCK);
      out->set_rule_set_id(set_id);
      out->set_rule_set_version(version);
      out->mutable_span()->set_start(match.original_begin);
      out->mutable_span()->set_end(match.original_end);
      out->mutable_normalized_span()->set_start(match.normalized_begin);
      out->mutable_normalized_span()->set_end(match.normalized_end);
      out->set_matched_text(
          request->text().substr(match.original_begin, match.original_end - match.original_begin));
      out->set_suppressed_by_rule_id(match.suppressed_by);
    }
    response->set_verdict(ToProto(verdict));
    return absl::OkStatus();
  });
}

absl::StatusOr<std::unique_ptr<grpc::Service>> MakeModerationService(ServiceDeps& deps) {
  auto service =
      std::make_unique<ModerationServiceImpl>(deps.mysql, deps.metrics, SystemClock::Get());
  ASSIGN_OR_RETURN(std::unique_ptr<Cases> cases, MakeCases(deps, ConfiguredCaseFlags()));
  service->AttachCases(std::move(cases));
  return service;
}

const std::vector<Migration>& ModerationServiceMigrations() {
  static const auto* migrations = [] {
    auto* all = new std::vector<Migration>(RuleSetMigrations());
    all->insert(all->end(), CaseMigrations().begin(), CaseMigrations().end());
    return all;
  }();
  return *migrations;
}

}  // namespace qunzu::moderation
