// Input checks of the case RPCs (reports, dispositions, blacklist,
// filings), before anything is read or written: every string valid UTF-8
// within its bound, every enum known, every id present where required
// (DESIGN §4 "Bad input"). Each error names its field.
#ifndef QUNZU_SERVICES_MODERATION_CASE_VALIDATION_H_
#define QUNZU_SERVICES_MODERATION_CASE_VALIDATION_H_

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "qunzu/moderation/v1/moderation.pb.h"

namespace qunzu::moderation {

absl::Status ValidateSubmitReport(const v1::SubmitReportRequest& request);
absl::Status ValidateListReports(const v1::ListReportsRequest& request);
absl::Status ValidateClaimReport(const v1::ClaimReportRequest& request);
absl::Status ValidateResolveReport(const v1::ResolveReportRequest& request);
absl::Status ValidateGetReport(const v1::GetReportRequest& request);
absl::Status ValidateGetHandlingStats(const v1::GetHandlingStatsRequest& request);
absl::Status ValidateGetHeldMessage(const v1::GetHeldMessageRequest& request);
absl::Status ValidateListHeldMessages(const v1::ListHeldMessagesRequest& request);
// `now` judges UNTIL_IN_PAST.
absl::Status ValidateDisposeGroup(const v1::DisposeGroupRequest& request, absl::Time now);
absl::Status ValidateDisposeAccount(const v1::DisposeAccountRequest& request, absl::Time now);
absl::Status ValidateGetDisposition(const v1::GetDispositionRequest& request);
absl::Status ValidateListDispositions(const v1::ListDispositionsRequest& request);
absl::Status ValidateRevokeDisposition(const v1::RevokeDispositionRequest& request);
absl::Status ValidateAddToBlacklist(const v1::AddToBlacklistRequest& request, absl::Time now);
absl::Status ValidateRemoveFromBlacklist(const v1::RemoveFromBlacklistRequest& request);
absl::Status ValidateListBlacklist(const v1::ListBlacklistRequest& request);
absl::Status ValidateListFilings(const v1::ListFilingsRequest& request);

}  // namespace qunzu::moderation

#endif  // QUNZU_SERVICES_MODERATION_CASE_VALIDATION_H_
