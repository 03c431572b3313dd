#include "services/moderation/message_screener.h"

#include <chrono>
#include <exception>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
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

// One screen from its validation to its answer.
struct MessageScreener::Screening {
  const v1::ScreenMessageRequest& request;
  HotPathKeys keys;
  // What the pipeline counts under, for taking the counts back.
  HotPathCounters counters;
  std::string fingerprint;
  Done done;
  bool answered = false;
};

MessageScreener::MessageScreener(const ScreenerDeps& deps)
    : deps_(deps), records_(deps.async_redis), holds_(kHoldThreads, deps.registry, "holds") {}

MessageScreener::~MessageScreener() {
  {
    absl::MutexLock lock(&mu_);
    // Every screen started answers (its Redis reply or deadline comes).
    mu_.Await(absl::Condition(
        +[](int* in_progress) { return *in_progress == 0; }, &in_progress_));
  }
  // The last verdicts' records go out before the connection does.
  records_.Flush();
}

absl::StatusOr<v1::ScreenMessageResponse> MessageScreener::Screen(
    const Caller& caller, const v1::ScreenMessageRequest& request) {
  absl::Notification answered;
  absl::StatusOr<v1::ScreenMessageResponse> result;
  ScreenAsync(caller, request, [&](absl::StatusOr<v1::ScreenMessageResponse> response) {
    result = std::move(response);
    answered.Notify();
  });
  answered.WaitForNotification();
  return result;
}

void MessageScreener::ScreenAsync(const Caller& caller, const v1::ScreenMessageRequest& request,
                                  Done done) {
  if (absl::Status valid = ValidateScreenMessage(request); !valid.ok()) {
    done(valid);
    return;
  }
  const absl::Time now = deps_.clock.Now();
  HotPathKeys keys{request.actor_account_id(), request.group_id(),
                   projection::ScreenRequestKey(request.actor_account_id(), caller.principal,
                                                request.request_id()),
                   now};
  HotPathCounters counters = CountersOf(keys);
  auto screening =
      std::make_shared<Screening>(Screening{request, std::move(keys), std::move(counters),
                                            FingerprintMessage(request), std::move(done), false});
  {
    absl::MutexLock lock(&mu_);
    ++in_progress_;
  }
  std::vector<RedisCommand> commands = HotPathCommands(screening->keys, screening->counters);
  // Round-trip time on the monotonic clock (deps_.clock is the domain's
  // time, which tests move by hand).
  const auto handed_over = std::chrono::steady_clock::now();
  deps_.async_redis.Pipeline(
      std::move(commands), HotPathCacheable(),
      [this, screening, handed_over](absl::StatusOr<std::vector<RedisReply>> replies) {
        if (replies.ok() && deps_.metrics != nullptr) {
          deps_.metrics->HotPathRoundTrip(
              absl::FromChrono(std::chrono::steady_clock::now() - handed_over));
        }
        Guarded(*screening, [&] { Continue(screening, replies); });
      });
}

void MessageScreener::Guarded(Screening& screening, const std::function<void()>& step) {
  // As Serve does for the synchronous handlers: no exception leaves, and
  // the call is answered.
  try {
    step();
  } catch (const std::exception& e) {
    LogError("handler_exception", {{"what", e.what()}});
    if (!screening.answered) {
      Finish(screening, MakeError(absl::StatusCode::kInternal, "INTERNAL_ERROR",
                                  "the request failed unexpectedly"));
    }
  }
}

void MessageScreener::Continue(std::shared_ptr<Screening> screening,
                               const absl::StatusOr<std::vector<RedisReply>>& replies) {
  Screening& s = *screening;
  absl::StatusOr<HotPathView> view = ParseHotPathView(s.counters, replies);
  if (!view.ok()) {
    // The claim may not have been made: nothing to free.
    Finish(s, view.status());
    return;
  }
  for (RedisCommand& expiry : view->new_counter_expiries) records_.Defer(std::move(expiry));
  if (view->earlier_record.has_value()) {
    // A retry: its pipeline counted it again; take that back.
    for (RedisCommand& undo : UndoCountingCommands(s.counters)) records_.Defer(std::move(undo));
    Finish(s, ReplayScreenRecord(*view->earlier_record, s.fingerprint));
    return;
  }
  absl::StatusOr<Decision> decision = Decide(s.request, *view, s.keys.now);
  if (!decision.ok()) {
    Fail(s, decision.status());
    return;
  }
  if (!decision->hold) {
    Record(s, decision->response);
    Finish(s, std::move(decision->response));
    return;
  }
  holds_.Submit([this, screening, response = std::move(decision->response)]() mutable {
    Guarded(*screening, [&] { Hold(*screening, std::move(response)); });
  });
}

void MessageScreener::Hold(Screening& screening, v1::ScreenMessageResponse response) {
  const v1::ScreenMessageRequest& request = screening.request;
  HeldMessageInput held;
  held.request_id = request.request_id();
  held.message_id = request.message_id();
  held.group_id = request.group_id();
  held.sender_account_id = request.actor_account_id();
  held.text = request.text();
  held.client_ip = request.client_ip();
  held.reasons.assign(response.reasons().begin(), response.reasons().end());
  held.held_at = screening.keys.now;
  absl::StatusOr<v1::HeldMessage> message = deps_.review.Hold(held);
  if (!message.ok()) {
    // Fails closed (the message is not delivered), saying which part failed
    // and why (a MySQL error reason, say).
    Fail(screening, MakeError(absl::StatusCode::kUnavailable, "REVIEW_QUEUE_UNAVAILABLE",
                              absl::StrCat("the review queue cannot take the held message: ",
                                           message.status().message()),
                              {{"cause", ErrorReason(message.status())}}));
    return;
  }
  response.set_report_id(message->report_id());
  Record(screening, response);
  Finish(screening, std::move(response));
}

void MessageScreener::Record(Screening& screening, const v1::ScreenMessageResponse& response) {
  records_.Record(screening.keys.request_key, screening.fingerprint, response);
  if (response.verdict() != v1::SCREEN_VERDICT_ALLOW) {
    // Activity counts messages delivered; this one was counted in the
    // pipeline before its verdict was known.
    records_.Defer({"HINCRBY", screening.counters.activity, screening.counters.hour, "-1"});
  }
  if (deps_.metrics != nullptr) {
    deps_.metrics->MessageVerdict(response.verdict(), FirstCode(response));
  }
}

void MessageScreener::Fail(Screening& screening, const absl::Status& status) {
  // Nothing was decided: free the id so a retry screens afresh.
  records_.Defer({"DEL", screening.keys.request_key});
  Finish(screening, status);
}

void MessageScreener::Finish(Screening& screening,
                             absl::StatusOr<v1::ScreenMessageResponse> response) {
  screening.answered = true;
  Done done = std::move(screening.done);
  done(std::move(response));
  absl::MutexLock lock(&mu_);
  --in_progress_;
}

absl::StatusOr<MessageScreener::Decision> MessageScreener::Decide(
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
  Decision decision;
  v1::ScreenMessageResponse& response = decision.response;
  if (failure.has_value() && failure->verdict == v1::SCREEN_VERDICT_BLOCK) {
    response.set_verdict(v1::SCREEN_VERDICT_BLOCK);
    *response.add_reasons() = failure->reason;
    return decision;
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
    return decision;
  }
  if (result.verdict == Verdict::kAllow && !failure.has_value()) {
    response.set_verdict(v1::SCREEN_VERDICT_ALLOW);
    return decision;
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
  decision.hold = true;
  return decision;
}

}  // namespace qunzu::moderation
