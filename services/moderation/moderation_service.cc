#include "services/moderation/moderation_service.h"

#include <algorithm>
#include <string>
#include <utility>

#include "common/handler.h"
#include "common/projection_keys.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "services/moderation/rule_validation.h"

namespace qunzu::moderation {
namespace {

constexpr char kMethodPrefix[] = "/qunzu.moderation.v1.ModerationService/";

RequestContext ContextOf(const CallInfo& call, const char* method) {
  return RequestContext{call.caller, call.peer, std::string(kMethodPrefix) + method};
}

}  // namespace

ModerationServiceImpl::ModerationServiceImpl(MysqlPool& mysql, RedisClient& redis,
                                             std::unique_ptr<AsyncRedis> async_redis,
                                             prometheus::Registry& metrics, const Clock& clock,
                                             std::unique_ptr<Cases> cases,
                                             GroupRateLimits group_limits)
    : clock_(clock),
      async_redis_(std::move(async_redis)),
      store_(mysql, clock),
      rule_metrics_(metrics),
      engine_(store_, kMaxWaitForOtherCompile, &rule_metrics_),
      emergency_store_(mysql, clock,
                       [&redis](uint64_t group_id) -> absl::StatusOr<bool> {
                         absl::StatusOr<RedisReply> reply =
                             redis.Command({"EXISTS", projection::GroupKey(group_id)});
                         if (!reply.ok()) {
                           return MakeError(absl::StatusCode::kUnavailable,
                                            "PROJECTION_UNAVAILABLE",
                                            "cannot tell whether the group exists");
                         }
                         return reply->integer() == 1;
                       }),
      emergency_(emergency_store_),
      metrics_(metrics),
      cases_(std::move(cases)),
      screener_(ScreenerDeps{*async_redis_, engine_, emergency_, cases_->reports(), &metrics_,
                             clock, group_limits, &metrics}),
      blocking_(kBlockingThreads, &metrics, "rpc") {
  engine_.Start(kRulePollInterval);
  emergency_.Start(kRulePollInterval);
}

grpc::ServerUnaryReactor* ModerationServiceImpl::ScreenMessage(
    grpc::CallbackServerContext* context, const v1::ScreenMessageRequest* request,
    v1::ScreenMessageResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<Caller> caller = CallerOf(context);
  if (!caller.ok()) {
    reactor->Finish(ToGrpcStatus(caller.status()));
    return reactor;
  }
  screener_.ScreenAsync(
      *caller, *request,
      [this, reactor, response](absl::StatusOr<v1::ScreenMessageResponse> result) {
        if (!result.ok()) {
          metrics_.MessageFailed(result.status());
          reactor->Finish(ToGrpcStatus(result.status()));
          return;
        }
        *response = *std::move(result);
        reactor->Finish(grpc::Status::OK);
      });
  return reactor;
}

grpc::ServerUnaryReactor* ModerationServiceImpl::SetEmergencyMode(
    grpc::CallbackServerContext* context, const v1::SetEmergencyModeRequest* request,
    v1::SetEmergencyModeResponse* response) {
  return blocking_.Handle(context, [this, request, response](const CallInfo& call) -> absl::Status {
    RETURN_IF_ERROR(ValidateSetEmergencyMode(*request, clock_.Now()));
    ASSIGN_OR_RETURN(*response,
                     emergency_store_.Set(ContextOf(call, "SetEmergencyMode"), *request));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ModerationServiceImpl::ListEmergencyModes(
    grpc::CallbackServerContext* context, const v1::ListEmergencyModesRequest* request,
    v1::ListEmergencyModesResponse* response) {
  return blocking_.Handle(context, [this, request, response](const CallInfo& call) -> absl::Status {
    RETURN_IF_ERROR(ValidateListEmergencyModes(*request));
    ASSIGN_OR_RETURN(*response, emergency_store_.List(*request));
    return RecordIfInspection(call, "ListEmergencyModes");
  });
}

grpc::ServerUnaryReactor* ModerationServiceImpl::ScreenText(grpc::CallbackServerContext* context,
                                                            const v1::ScreenTextRequest* request,
                                                            v1::ScreenTextResponse* response) {
  return ServeInline(context, [&](const CallInfo&) -> absl::Status {
    RETURN_IF_ERROR(ValidateScreenText(*request));
    thread_local NormalizedText normalized;
    thread_local ScanResult result;
    std::shared_ptr<const RuleSnapshot> snapshot;
    RETURN_IF_ERROR(
        engine_.Screen(request->text(), "text", false, &normalized, &result, &snapshot));
    response->set_verdict(ToProto(result.verdict));
    for (const RuleMatch& match : result.matches) {
      FillContentReason(*snapshot, match, response->add_reasons());
    }
    return absl::OkStatus();
  });
}

void ModerationServiceImpl::MarkLoadingHere(v1::RuleSet* set) const {
  if (set->compile_state() != v1::COMPILE_STATE_READY || set->active_version() == 0) return;
  std::shared_ptr<const RuleSnapshot> snapshot = engine_.Current();
  if (snapshot != nullptr) {
    for (const auto& [id, version] : snapshot->origin) {
      if (id == set->rule_set_id() && version == set->active_version()) return;
    }
  }
  // Activated, but not yet loaded by this replica (a poll interval).
  set->set_compile_state(v1::COMPILE_STATE_COMPILING);
  set->set_compile_error(engine_.LastError());
}

grpc::ServerUnaryReactor* ModerationServiceImpl::UpsertRuleSet(
    grpc::CallbackServerContext* context, const v1::UpsertRuleSetRequest* request,
    v1::UpsertRuleSetResponse* response) {
  return blocking_.Handle(context, [this, request, response](const CallInfo& call) -> absl::Status {
    RETURN_IF_ERROR(ValidateUpsertRuleSet(*request));
    ASSIGN_OR_RETURN(*response, store_.Upsert(ContextOf(call, "UpsertRuleSet"), *request));
    MarkLoadingHere(response->mutable_rule_set());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ModerationServiceImpl::ListRuleSets(
    grpc::CallbackServerContext* context, const v1::ListRuleSetsRequest* request,
    v1::ListRuleSetsResponse* response) {
  return blocking_.Handle(context, [this, request, response](const CallInfo& call) -> absl::Status {
    RETURN_IF_ERROR(ValidateListRuleSets(*request));
    ASSIGN_OR_RETURN(*response, store_.List(*request));
    for (v1::RuleSet& set : *response->mutable_rule_sets()) MarkLoadingHere(&set);
    return RecordIfInspection(call, "ListRuleSets");
  });
}

grpc::ServerUnaryReactor* ModerationServiceImpl::TestRules(grpc::CallbackServerContext* context,
                                                           const v1::TestRulesRequest* request,
                                                           v1::TestRulesResponse* response) {
  return ServeInline(context, [&](const CallInfo&) -> absl::Status {
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

void AddModerationFlags(FlagSet& flags, ModerationFlags* out) {
  flags.AddString({"group-messages-per-minute", "QUNZU_MODERATION_GROUP_MESSAGES_PER_MINUTE",
                   "Messages per minute a group may carry, by scale tier (R7.4)."},
                  &out->group_messages_per_minute, ModerationFlags().group_messages_per_minute);
  flags.AddInt64(
      {"redis-cache-entries", "QUNZU_MODERATION_REDIS_CACHE_ENTRIES",
       "Projection reads of the hot path kept in process, coherent through Redis' invalidations "
       "(CLIENT TRACKING, RESP3); 0 reads them from Redis on every message."},
      &out->redis_cache_entries, ModerationFlags().redis_cache_entries, 0, 100000000);
  AddCaseFlags(flags, &out->cases);
}

namespace {

// qunzu_moderation_projection_cache_*: what the hot path's projection cache
// answered, read again and dropped; fed by the client about once a second.
AsyncRedis::CacheStatsHook ProjectionCacheMetrics(prometheus::Registry& registry) {
  auto counter = [&registry](const char* name, const char* help) {
    return &prometheus::BuildCounter().Name(name).Help(help).Register(registry).Add({});
  };
  prometheus::Counter* hits =
      counter("qunzu_moderation_projection_cache_hits_total",
              "Hot-path projection reads answered from the in-process cache.");
  prometheus::Counter* misses = counter("qunzu_moderation_projection_cache_misses_total",
                                        "Hot-path projection reads the cache did not hold.");
  prometheus::Counter* invalidations =
      counter("qunzu_moderation_projection_cache_invalidations_total",
              "Projection keys Redis said changed (CLIENT TRACKING), dropped from the cache.");
  prometheus::Counter* rereads =
      counter("qunzu_moderation_projection_cache_rereads_total",
              "Cached replies read again because their key changed while the call was in flight.");
  prometheus::Counter* flushes = counter(
      "qunzu_moderation_projection_cache_flushes_total",
      "Times the whole cache was emptied (a dropped Redis connection, a full cache, a flush).");
  prometheus::Gauge* entries = &prometheus::BuildGauge()
                                    .Name("qunzu_moderation_projection_cache_entries")
                                    .Help("Replies the hot path's projection cache holds.")
                                    .Register(registry)
                                    .Add({});
  // Called on the client's loop thread only: `last` needs no lock.
  return [=, last = AsyncRedis::CacheStats()](const AsyncRedis::CacheStats& now) mutable {
    hits->Increment(static_cast<double>(now.hits - last.hits));
    misses->Increment(static_cast<double>(now.misses - last.misses));
    invalidations->Increment(static_cast<double>(now.invalidations - last.invalidations));
    rereads->Increment(static_cast<double>(now.rereads - last.rereads));
    flushes->Increment(static_cast<double>(now.flushes - last.flushes));
    entries->Set(static_cast<double>(now.entries));
    last = now;
  };
}

}  // namespace

absl::StatusOr<std::unique_ptr<grpc::Service>> MakeModerationService(ServiceDeps& deps,
                                                                     const ModerationFlags& flags) {
  ASSIGN_OR_RETURN(GroupRateLimits limits, ParseGroupRateLimits(flags.group_messages_per_minute,
                                                                "--group-messages-per-minute"));
  if (deps.redis == nullptr) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "REDIS_REQUIRED",
                     "moderation reads the hot path's projections from Redis");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Cases> cases, MakeCases(deps, flags.cases));
  prometheus::Counter& posted_lost =
      prometheus::BuildCounter()
          .Name("qunzu_moderation_redis_posted_commands_lost_total")
          .Help(
              "Commands the hot path sent without waiting (verdict records, counter EXPIREs, "
              "corrections) that were lost with their connection or refused by Redis.")
          .Register(deps.metrics)
          .Add({});
  AsyncRedis::Options redis_options;
  redis_options.posted_lost = [&posted_lost](int64_t commands) {
    posted_lost.Increment(static_cast<double>(commands));
  };
  redis_options.cache_entries = static_cast<size_t>(flags.redis_cache_entries);
  redis_options.cache_stats = ProjectionCacheMetrics(deps.metrics);
  ASSIGN_OR_RETURN(std::unique_ptr<AsyncRedis> async_redis,
                   AsyncRedis::Create(deps.redis->options(), std::move(redis_options)));
  return std::make_unique<ModerationServiceImpl>(deps.mysql, *deps.redis, std::move(async_redis),
                                                 deps.metrics, SystemClock::Get(), std::move(cases),
                                                 limits);
}

const std::vector<Migration>& ModerationServiceMigrations() {
  static const auto* migrations = [] {
    auto* all = new std::vector<Migration>(RuleSetMigrations());
    for (const Migration& m : EmergencyModeMigrations()) all->push_back(m);
    all->insert(all->end(), CaseMigrations().begin(), CaseMigrations().end());
    // Each list adds versions of its own; they apply in one order.
    std::sort(all->begin(), all->end(),
              [](const Migration& a, const Migration& b) { return a.version < b.version; });
    return all;
  }();
  return *migrations;
}

}  // namespace qunzu::moderation
