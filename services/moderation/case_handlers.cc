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

// Runs fn(cases, request context) after `validate`, on an authorised call,
// on the blocking pool (both run after this returns: they capture by value).
template <typename Validate, typename Fn>
grpc::ServerUnaryReactor* ServeCase(BlockingCalls& blocking, grpc::CallbackServerContext* context,
                                    Cases* cases, const char* method, Validate validate, Fn fn) {
  return blocking.Handle(
      context,
      [cases, method, validate = std::move(validate),
       fn = std::move(fn)](const CallInfo& call) -> absl::Status {
        RETURN_IF_ERROR(validate());
        const RequestContext ctx{call.caller, call.peer, std::string(kPrefix) + method};
        RETURN_IF_ERROR(fn(*cases, ctx));
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
      blocking_, c, cases_.get(), "SubmitReport", [q] { return ValidateSubmitReport(*q); },
      [q, r](Cases& cases, const RequestContext& ctx) -> absl::Status {
        ASSIGN_OR_RETURN(*r, cases.reports().Submit(ctx, *q));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ModerationServiceImpl::ListReports(grpc::CallbackServerContext* c,
                                                             const v1::ListReportsRequest* q,
                                                             v1::ListReportsResponse* r) {
  return ServeCase(
      blocking_, c, cases_.get(), "ListReports", [q] { return ValidateListReports(*q); },
      [q, r](Cases& cases, const RequestContext&) -> absl::Status {
        ASSIGN_OR_RETURN(*r, cases.reports().List(*q));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ModerationServiceImpl::ClaimReport(grpc::CallbackServerContext* c,
                                                             const v1::ClaimReportRequest* q,
                                                             v1::ClaimReportResponse* r) {
  return ServeCase(
      blocking_, c, cases_.get(), "ClaimReport", [q] { return ValidateClaimReport(*q); },
      [q, r](Cases& cases, const RequestContext& ctx) -> absl::Status {
        ASSIGN_OR_RETURN(*r, cases.reports().Claim(ctx, *q));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ModerationServiceImpl::ResolveReport(grpc::CallbackServerContext* c,
                                                               const v1::ResolveReportRequest* q,
                                                               v1::ResolveReportResponse* r) {
  return ServeCase(
      blocking_, c, cases_.get(), "ResolveReport", [q] { return ValidateResolveReport(*q); },
      [q, r](Cases& cases, const RequestContext& ctx) -> absl::Status {
        ASSIGN_OR_RETURN(*r, cases.reports().Resolve(ctx, *q));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ModerationServiceImpl::GetReport(grpc::CallbackServerContext* c,
                                                           const v1::GetReportRequest* q,
                                                           v1::GetReportResponse* r) {
  return ServeCase(
      blocking_, c, cases_.get(), "GetReport", [q] { return ValidateGetReport(*q); },
      [q, r](Cases& cases, const RequestContext& ctx) -> absl::Status {
        ASSIGN_OR_RETURN(*r, cases.reports().Get(ctx.caller, *q));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ModerationServiceImpl::GetHandlingStats(
    grpc::CallbackServerContext* c, const v1::GetHandlingStatsRequest* q,
    v1::GetHandlingStatsResponse* r) {
  return ServeCase(
      blocking_, c, cases_.get(), "GetHandlingStats", [q] { return ValidateGetHandlingStats(*q); },
      [q, r](Cases& cases, const RequestContext&) -> absl::Status {
        ASSIGN_OR_RETURN(*r, cases.reports().Stats(*q));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ModerationServiceImpl::GetHeldMessage(grpc::CallbackServerContext* c,
                                                                const v1::GetHeldMessageRequest* q,
                                                                v1::GetHeldMessageResponse* r) {
  return ServeCase(
      blocking_, c, cases_.get(), "GetHeldMessage", [q] { return ValidateGetHeldMessage(*q); },
      [q, r](Cases& cases, const RequestContext&) -> absl::Status {
        ASSIGN_OR_RETURN(*r, cases.reports().GetHeld(*q));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ModerationServiceImpl::ListHeldMessages(
    grpc::CallbackServerContext* c, const v1::ListHeldMessagesRequest* q,
    v1::ListHeldMessagesResponse* r) {
  return ServeCase(
      blocking_, c, cases_.get(), "ListHeldMessages", [q] { return ValidateListHeldMessages(*q); },
      [q, r](Cases& cases, const RequestContext&) -> absl::Status {
        ASSIGN_OR_RETURN(*r, cases.reports().ListHeld(*q));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ModerationServiceImpl::DisposeGroup(grpc::CallbackServerContext* c,
                                                              const v1::DisposeGroupRequest* q,
                                                              v1::DisposeGroupResponse* r) {
  return ServeCase(
      blocking_, c, cases_.get(), "DisposeGroup",
      [this, q] { return ValidateDisposeGroup(*q, CaseNow(cases_.get())); },
      [q, r](Cases& cases, const RequestContext& ctx) -> absl::Status {
        ASSIGN_OR_RETURN(*r, cases.dispositions().DisposeGroup(ctx, *q));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ModerationServiceImpl::DisposeAccount(grpc::CallbackServerContext* c,
                                                                const v1::DisposeAccountRequest* q,
                                                                v1::DisposeAccountResponse* r) {
  return ServeCase(
      blocking_, c, cases_.get(), "DisposeAccount",
      [this, q] { return ValidateDisposeAccount(*q, CaseNow(cases_.get())); },
      [q, r](Cases& cases, const RequestContext& ctx) -> absl::Status {
        ASSIGN_OR_RETURN(*r, cases.dispositions().DisposeAccount(ctx, *q));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ModerationServiceImpl::GetDisposition(grpc::CallbackServerContext* c,
                                                                const v1::GetDispositionRequest* q,
                                                                v1::GetDispositionResponse* r) {
  return ServeCase(
      blocking_, c, cases_.get(), "GetDisposition", [q] { return ValidateGetDisposition(*q); },
      [q, r](Cases& cases, const RequestContext&) -> absl::Status {
        ASSIGN_OR_RETURN(*r, cases.dispositions().Get(*q));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ModerationServiceImpl::ListDispositions(
    grpc::CallbackServerContext* c, const v1::ListDispositionsRequest* q,
    v1::ListDispositionsResponse* r) {
  return ServeCase(
      blocking_, c, cases_.get(), "ListDispositions", [q] { return ValidateListDispositions(*q); },
      [q, r](Cases& cases, const RequestContext&) -> absl::Status {
        ASSIGN_OR_RETURN(*r, cases.dispositions().List(*q));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ModerationServiceImpl::RevokeDisposition(
    grpc::CallbackServerContext* c, const v1::RevokeDispositionRequest* q,
    v1::RevokeDispositionResponse* r) {
  return ServeCase(
      blocking_, c, cases_.get(), "RevokeDisposition",
      [q] { return ValidateRevokeDisposition(*q); },
      [q, r](Cases& cases, const RequestContext& ctx) -> absl::Status {
        ASSIGN_OR_RETURN(*r, cases.dispositions().Revoke(ctx, *q));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ModerationServiceImpl::AddToBlacklist(grpc::CallbackServerContext* c,
                                                                const v1::AddToBlacklistRequest* q,
                                                                v1::AddToBlacklistResponse* r) {
  return ServeCase(
      blocking_, c, cases_.get(), "AddToBlacklist",
      [this, q] { return ValidateAddToBlacklist(*q, CaseNow(cases_.get())); },
      [q, r](Cases& cases, const RequestContext& ctx) -> absl::Status {
        ASSIGN_OR_RETURN(*r, cases.blacklist().Add(ctx, *q));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ModerationServiceImpl::RemoveFromBlacklist(
    grpc::CallbackServerContext* c, const v1::RemoveFromBlacklistRequest* q,
    v1::RemoveFromBlacklistResponse* r) {
  return ServeCase(
      blocking_, c, cases_.get(), "RemoveFromBlacklist",
      [q] { return ValidateRemoveFromBlacklist(*q); },
      [q, r](Cases& cases, const RequestContext& ctx) -> absl::Status {
        ASSIGN_OR_RETURN(*r, cases.blacklist().Remove(ctx, *q));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ModerationServiceImpl::ListBlacklist(grpc::CallbackServerContext* c,
                                                               const v1::ListBlacklistRequest* q,
                                                               v1::ListBlacklistResponse* r) {
  return ServeCase(
      blocking_, c, cases_.get(), "ListBlacklist", [q] { return ValidateListBlacklist(*q); },
      [q, r](Cases& cases, const RequestContext&) -> absl::Status {
        ASSIGN_OR_RETURN(*r, cases.blacklist().List(*q));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ModerationServiceImpl::ListFilings(grpc::CallbackServerContext* c,
                                                             const v1::ListFilingsRequest* q,
                                                             v1::ListFilingsResponse* r) {
  return ServeCase(
      blocking_, c, cases_.get(), "ListFilings", [q] { return ValidateListFilings(*q); },
      [q, r](Cases& cases, const RequestContext&) -> absl::Status {
        ASSIGN_OR_RETURN(*r, cases.filings().List(*q));
        return absl::OkStatus();
      });
}

}  // namespace qunzu::moderation
