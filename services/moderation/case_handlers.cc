// The case RPCs of ModerationServiceImpl (issue 8): validate, call one
// method of the case logic, map the result (R11.1-R11.5, R12.1-R12.4).
#include <string>
#include <utility>

#include "common/handler.h"
#include "services/moderation/case_validation.h"
#include "services/moderation/moderation_service.h"

namespace qunzu::moderation {
namespace {

constexpr char kPrefix[] = "/qunzu.moderation.v1.ModerationService/";

// Answers the call with fn(cases, request context) — a StatusOr of the
// response — after `validate`, on an authorised call, on the blocking pool
// (both run after this returns: they capture by value).
template <typename Response, typename Validate, typename Fn>
grpc::ServerUnaryReactor* ServeCase(BlockingCalls& blocking, grpc::CallbackServerContext* context,
                                    Cases* cases, const char* method, Response* response,
                                    Validate validate, Fn fn) {
  return blocking.Handle(
      context,
      [cases, method, response, validate = std::move(validate),
       fn = std::move(fn)](const CallInfo& call) -> absl::Status {
        RETURN_IF_ERROR(validate());
        const RequestContext ctx{call.caller, call.peer, std::string(kPrefix) + method};
        ASSIGN_OR_RETURN(*response, fn(*cases, ctx));
        // An inspection is itself on the record (R13.1); unrecorded, it fails.
        if (call.caller.role == common::v1::ROLE_REGULATOR) return cases->RecordInspection(ctx);
        return absl::OkStatus();
      });
}

// What the validations that look at time compare with.
absl::Time CaseNow(const Cases* cases) {
  return cases != nullptr ? cases->clock().Now() : absl::Now();
}

}  // namespace

absl::Status ModerationServiceImpl::RecordIfInspection(const CallInfo& call, const char* method) {
  if (call.caller.role != common::v1::ROLE_REGULATOR) return absl::OkStatus();
  return cases_->RecordInspection(
      RequestContext{call.caller, call.peer, std::string(kPrefix) + method});
}

grpc::ServerUnaryReactor* ModerationServiceImpl::SubmitReport(grpc::CallbackServerContext* c,
                                                              const v1::SubmitReportRequest* q,
                                                              v1::SubmitReportResponse* r) {
  return ServeCase(
      blocking_, c, cases_.get(), "SubmitReport", r, [q] { return ValidateSubmitReport(*q); },
      [q](Cases& cases, const RequestContext& ctx) { return cases.reports().Submit(ctx, *q); });
}

grpc::ServerUnaryReactor* ModerationServiceImpl::ListReports(grpc::CallbackServerContext* c,
                                                             const v1::ListReportsRequest* q,
                                                             v1::ListReportsResponse* r) {
  return ServeCase(
      blocking_, c, cases_.get(), "ListReports", r, [q] { return ValidateListReports(*q); },
      [q](Cases& cases, const RequestContext&) { return cases.reports().List(*q); });
}

grpc::ServerUnaryReactor* ModerationServiceImpl::ClaimReport(grpc::CallbackServerContext* c,
                                                             const v1::ClaimReportRequest* q,
                                                             v1::ClaimReportResponse* r) {
  return ServeCase(
      blocking_, c, cases_.get(), "ClaimReport", r, [q] { return ValidateClaimReport(*q); },
      [q](Cases& cases, const RequestContext& ctx) { return cases.reports().Claim(ctx, *q); });
}

grpc::ServerUnaryReactor* ModerationServiceImpl::ResolveReport(grpc::CallbackServerContext* c,
                                                               const v1::ResolveReportRequest* q,
                                                               v1::ResolveReportResponse* r) {
  return ServeCase(
      blocking_, c, cases_.get(), "ResolveReport", r, [q] { return ValidateResolveReport(*q); },
      [q](Cases& cases, const RequestContext& ctx) { return cases.reports().Resolve(ctx, *q); });
}

grpc::ServerUnaryReactor* ModerationServiceImpl::GetReport(grpc::CallbackServerContext* c,
                                                           const v1::GetReportRequest* q,
                                                           v1::GetReportResponse* r) {
  return ServeCase(
      blocking_, c, cases_.get(), "GetReport", r, [q] { return ValidateGetReport(*q); },
      [q](Cases& cases, const RequestContext& ctx) { return cases.reports().Get(ctx.caller, *q); });
}

grpc::ServerUnaryReactor* ModerationServiceImpl::GetHandlingStats(
    grpc::CallbackServerContext* c, const v1::GetHandlingStatsRequest* q,
    v1::GetHandlingStatsResponse* r) {
  return ServeCase(
      blocking_, c, cases_.get(), "GetHandlingStats", r,
      [q] { return ValidateGetHandlingStats(*q); },
      [q](Cases& cases, const RequestContext&) { return cases.reports().Stats(*q); });
}

grpc::ServerUnaryReactor* ModerationServiceImpl::GetHeldMessage(grpc::CallbackServerContext* c,
                                                                const v1::GetHeldMessageRequest* q,
                                                                v1::GetHeldMessageResponse* r) {
  return ServeCase(
      blocking_, c, cases_.get(), "GetHeldMessage", r, [q] { return ValidateGetHeldMessage(*q); },
      [q](Cases& cases, const RequestContext&) { return cases.reports().GetHeld(*q); });
}

grpc::ServerUnaryReactor* ModerationServiceImpl::ListHeldMessages(
    grpc::CallbackServerContext* c, const v1::ListHeldMessagesRequest* q,
    v1::ListHeldMessagesResponse* r) {
  return ServeCase(
      blocking_, c, cases_.get(), "ListHeldMessages", r,
      [q] { return ValidateListHeldMessages(*q); },
      [q](Cases& cases, const RequestContext&) { return cases.reports().ListHeld(*q); });
}

grpc::ServerUnaryReactor* ModerationServiceImpl::DisposeGroup(grpc::CallbackServerContext* c,
                                                              const v1::DisposeGroupRequest* q,
                                                              v1::DisposeGroupResponse* r) {
  return ServeCase(
      blocking_, c, cases_.get(), "DisposeGroup", r,
      [this, q] { return ValidateDisposeGroup(*q, CaseNow(cases_.get())); },
      [q](Cases& cases, const RequestContext& ctx) {
        return cases.dispositions().DisposeGroup(ctx, *q);
      });
}

grpc::ServerUnaryReactor* ModerationServiceImpl::DisposeAccount(grpc::CallbackServerContext* c,
                                                                const v1::DisposeAccountRequest* q,
                                                                v1::DisposeAccountResponse* r) {
  return ServeCase(
      blocking_, c, cases_.get(), "DisposeAccount", r,
      [this, q] { return ValidateDisposeAccount(*q, CaseNow(cases_.get())); },
      [q](Cases& cases, const RequestContext& ctx) {
        return cases.dispositions().DisposeAccount(ctx, *q);
      });
}

grpc::ServerUnaryReactor* ModerationServiceImpl::GetDisposition(grpc::CallbackServerContext* c,
                                                                const v1::GetDispositionRequest* q,
                                                                v1::GetDispositionResponse* r) {
  return ServeCase(
      blocking_, c, cases_.get(), "GetDisposition", r, [q] { return ValidateGetDisposition(*q); },
      [q](Cases& cases, const RequestContext&) { return cases.dispositions().Get(*q); });
}

grpc::ServerUnaryReactor* ModerationServiceImpl::ListDispositions(
    grpc::CallbackServerContext* c, const v1::ListDispositionsRequest* q,
    v1::ListDispositionsResponse* r) {
  return ServeCase(
      blocking_, c, cases_.get(), "ListDispositions", r,
      [q] { return ValidateListDispositions(*q); },
      [q](Cases& cases, const RequestContext&) { return cases.dispositions().List(*q); });
}

grpc::ServerUnaryReactor* ModerationServiceImpl::RevokeDisposition(
    grpc::CallbackServerContext* c, const v1::RevokeDispositionRequest* q,
    v1::RevokeDispositionResponse* r) {
  return ServeCase(
      blocking_, c, cases_.get(), "RevokeDisposition", r,
      [q] { return ValidateRevokeDisposition(*q); },
      [q](Cases& cases, const RequestContext& ctx) {
        return cases.dispositions().Revoke(ctx, *q);
      });
}

grpc::ServerUnaryReactor* ModerationServiceImpl::AddToBlacklist(grpc::CallbackServerContext* c,
                                                                const v1::AddToBlacklistRequest* q,
                                                                v1::AddToBlacklistResponse* r) {
  return ServeCase(
      blocking_, c, cases_.get(), "AddToBlacklist", r,
      [this, q] { return ValidateAddToBlacklist(*q, CaseNow(cases_.get())); },
      [q](Cases& cases, const RequestContext& ctx) { return cases.blacklist().Add(ctx, *q); });
}

grpc::ServerUnaryReactor* ModerationServiceImpl::RemoveFromBlacklist(
    grpc::CallbackServerContext* c, const v1::RemoveFromBlacklistRequest* q,
    v1::RemoveFromBlacklistResponse* r) {
  return ServeCase(
      blocking_, c, cases_.get(), "RemoveFromBlacklist", r,
      [q] { return ValidateRemoveFromBlacklist(*q); },
      [q](Cases& cases, const RequestContext& ctx) { return cases.blacklist().Remove(ctx, *q); });
}

grpc::ServerUnaryReactor* ModerationServiceImpl::ListBlacklist(grpc::CallbackServerContext* c,
                                                               const v1::ListBlacklistRequest* q,
                                                               v1::ListBlacklistResponse* r) {
  return ServeCase(
      blocking_, c, cases_.get(), "ListBlacklist", r, [q] { return ValidateListBlacklist(*q); },
      [q](Cases& cases, const RequestContext&) { return cases.blacklist().List(*q); });
}

grpc::ServerUnaryReactor* ModerationServiceImpl::ListFilings(grpc::CallbackServerContext* c,
                                                             const v1::ListFilingsRequest* q,
                                                             v1::ListFilingsResponse* r) {
  return ServeCase(
      blocking_, c, cases_.get(), "ListFilings", r, [q] { return ValidateListFilings(*q); },
      [q](Cases& cases, const RequestContext&) { return cases.filings().List(*q); });
}

}  // namespace qunzu::moderation
