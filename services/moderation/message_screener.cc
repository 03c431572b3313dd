#include "services/moderation/message_screener.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/idempotency.h"
#include "common/log.h"
#include "common/projection_keys.h"
#include "common/status.h"
#include "services/moderation/rule_validation.h"

namespace qunzu::moderation {
namespace {

constexpr size_t kMaxMessageIdChars = 128;
constexpr size_t kMaxClientIpChars = 64;

v1::ScreenReasonCode FirstCode(const v1::ScreenMessageResponse& response) {
  return response.reasons().empty() ? v1::SCREEN_REASON_CODE_UNSPECIFIED
                                    : response.reasons(0).code();
}

}  // namespace

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

void FillContentReason(const RuleSnapshot& snapshot, const RuleMatch& match,
                       v1::ScreenReason* reason) {
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

absl::Status ValidateScreenMessage(const v1::ScreenMessageRequest& request) {
  RETURN_IF_ERROR(ValidateRequestId(request.request_id()));
  if (request.actor_account_id() == 0) return InvalidField("actor_account_id", "is required");
  if (request.group_id() == 0) return InvalidField("group_id", "is required");
  RETURN_IF_ERROR(ValidateText("message_id", request.message_id(), kMaxMessageIdChars));
  RETURN_IF_ERROR(ValidateText("text", request.text(), kMaxScreenChars));
  return ValidateText("client_ip", request.client_ip(), kMaxClientIpChars, false);
}

MessageScreener::MessageScreener(const ScreenerDeps& deps) : deps_(deps), records_(deps.redis) {}

absl::StatusOr<v1::ScreenMessageResponse> MessageScreener::Screen(
    const Caller& caller, const v1::ScreenMessageRequest& request) {
  RETURN_IF_ERROR(ValidateScreenMessage(request));
  const absl::Time now = deps_.clock.Now();
  const std::string fingerprint = FingerprintMessage(request);
  const HotPathKeys keys{request.actor_account_id(), request.group_id(),
                         projection::ScreenRequestKey(request.actor_account_id(), caller.principal,
                                                      request.request_id()),
                         now};
  ASSIGN_OR_RETURN(HotPathView view, ReadHotPathView(deps_.redis, keys));
  for (RedisCommand& expiry : view.new_counter_expiries) records_.Defer(std::move(expiry));
  if (view.earlier_record.has_value()) {
    // A retry: its pipeline counted it again; take that back.
    if (absl::Status undo = UndoCounting(deps_.redis, keys); !undo.ok()) {
      LogWarning("screen_retry_uncount_failed", {{"reason", ErrorReason(undo)}});
    }
    return ReplayScreenRecord(*view.earlier_record, fingerprint);
  }
  absl::StatusOr<v1::ScreenMessageResponse> response = Decide(request, view, now);
  if (!response.ok()) {
    // Nothing was decided: free the id so a retry screens afresh.
    (void)deps_.redis.Command({"DEL", keys.request_key});
    return response.status();
  }
  records_.Record(keys.request_key, fingerprint, *response);
  if (response->verdict() != v1::SCREEN_VERDICT_ALLOW) {
    // Activity counts messages delivered; this one was counted in the
    // pipeline before its verdict was known.
    records_.Defer({"HINCRBY", std::move(view.activity_key), std::move(view.activity_hour), "-1"});
  }
  if (deps_.metrics != nullptr)
    deps_.metrics->MessageVerdict(response->verdict(), FirstCode(*response));
  return response;
}

absl::StatusOr<v1::ScreenMessageResponse> MessageScreener::Decide(
    const v1::ScreenMessageRequest& request, const HotPathView& view, absl::Time now) {
  CheckContext context;
  context.group_id = request.group_id();
  context.now = now;
  context.group_limits = deps_.group_limits;
  if (!view.group_state.empty()) {
    ASSIGN_OR_RETURN(context.emergency,
                     deps_.emergency.Find(request.group_id(), GroupCategoryOf(view), now));
  }
  ASSIGN_OR_RETURN(std::optional<CheckFailure> failure, EvaluateChecks(view, context));
  v1::ScreenMessageResponse response;
  if (failure.has_value() && failure->verdict == v1::SCREEN_VERDICT_BLOCK) {
    response.set_verdict(v1::SCREEN_VERDICT_BLOCK);
    *response.add_reasons() = failure->reason;
    return response;
  }
  thread_local NormalizedText normalized;
  thread_local ScanResult result;
  std::shared_ptr<const RuleSnapshot> snapshot;
  const absl::Time started = absl::Now();
  RETURN_IF_ERROR(
      deps_.rules.Screen(request.text(), "text", false, &normalized, &result, &snapshot));
  if (deps_.metrics != nullptr) {
    deps_.metrics->Screened(ToProto(result.verdict), absl::Now() - started);
  }
  if (result.verdict == Verdict::kBlock) {
    response.set_verdict(v1::SCREEN_VERDICT_BLOCK);
    for (const RuleMatch& match : result.matches) {
      const Rule& rule = snapshot->compiled->rules()[match.rule_index];
      if (rule.action != RuleAction::kBlock) continue;
      FillContentReason(*snapshot, match, response.add_reasons());
      if (deps_.metrics != nullptr) {
        deps_.metrics->Matched(static_cast<v1::ContentCategory>(rule.category),
                               v1::RULE_ACTION_BLOCK);
      }
    }
    return response;
  }
  if (result.verdict == Verdict::kAllow && !failure.has_value()) {
    response.set_verdict(v1::SCREEN_VERDICT_ALLOW);
    return response;
  }
  // HOLD: an emergency HOLD_ALL, HOLD content rules, or both.
  response.set_verdict(v1::SCREEN_VERDICT_HOLD);
  if (failure.has_value()) *response.add_reasons() = failure->reason;
  for (const RuleMatch& match : result.matches) {
    FillContentReason(*snapshot, match, response.add_reasons());
    if (deps_.metrics != nullptr) {
      deps_.metrics->Matched(response.reasons().rbegin()->category(), v1::RULE_ACTION_HOLD);
    }
  }
  HeldMessageInput held;
  held.request_id = request.request_id();
  held.message_id = request.message_id();
  held.group_id = request.group_id();
  held.sender_account_id = request.actor_account_id();
  held.text = request.text();
  held.client_ip = request.client_ip();
  held.reasons.assign(response.reasons().begin(), response.reasons().end());
  held.held_at = now;
  ASSIGN_OR_RETURN(v1::HeldMessage message, deps_.review.Hold(held));
  response.set_report_id(message.report_id());
  return response;
}

}  // namespace qunzu::moderation
