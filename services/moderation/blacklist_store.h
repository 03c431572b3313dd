// The blacklist (R11.3): accounts and groups with a reason, an optional
// expiry and an optional basis, one active entry per subject. Adding and
// removing each produce one filing and one audit record in the same
// transaction; after commit the subject's projection key is rewritten, so
// the hot path and groups refuse it within a second and let it back at
// expiry without anyone acting.
#ifndef QUNZU_SERVICES_MODERATION_BLACKLIST_STORE_H_
#define QUNZU_SERVICES_MODERATION_BLACKLIST_STORE_H_

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/mysql_pool.h"
#include "qunzu/moderation/v1/moderation.pb.h"
#include "services/moderation/case_projection.h"
#include "services/moderation/mysql_rule_store.h"
#include "services/moderation/subjects.h"

namespace qunzu::moderation {

class BlacklistStore {
 public:
  BlacklistStore(MysqlPool& pool, SubjectDirectory& subjects, CaseProjection& projection,
                 const Clock& clock)
      : pool_(pool), subjects_(subjects), projection_(projection), clock_(clock) {}

  // Errors: NOT_FOUND ACCOUNT_NOT_FOUND, GROUP_NOT_FOUND; ALREADY_EXISTS
  // ALREADY_BLACKLISTED.
  absl::StatusOr<v1::AddToBlacklistResponse> Add(const RequestContext& context,
                                                 const v1::AddToBlacklistRequest& request);
  // Errors: NOT_FOUND BLACKLIST_ENTRY_NOT_FOUND; FAILED_PRECONDITION
  // BLACKLIST_ENTRY_NOT_ACTIVE.
  absl::StatusOr<v1::RemoveFromBlacklistResponse> Remove(
      const RequestContext& context, const v1::RemoveFromBlacklistRequest& request);
  // Newest first.
  absl::StatusOr<v1::ListBlacklistResponse> List(const v1::ListBlacklistRequest& request);

 private:
  absl::StatusOr<v1::BlacklistEntry> Load(sql::Connection& conn, uint64_t entry_id,
                                          bool for_update);

  MysqlPool& pool_;
  SubjectDirectory& subjects_;
  CaseProjection& projection_;
  const Clock& clock_;
};

}  // namespace qunzu::moderation

#endif  // QUNZU_SERVICES_MODERATION_BLACKLIST_STORE_H_
