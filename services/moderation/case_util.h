// Small helpers shared by the report, disposition, blacklist and filing
// stores: time conversions, id lists stored as text, page tokens, and the
// audit event every change records in its own transaction.
#ifndef QUNZU_SERVICES_MODERATION_CASE_UTIL_H_
#define QUNZU_SERVICES_MODERATION_CASE_UTIL_H_

#include <google/protobuf/timestamp.pb.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/mysql.h"
#include "common/mysql_pool.h"
#include "qunzu/audit/v1/audit.pb.h"
#include "qunzu/common/v1/common.pb.h"
#include "qunzu/credit/v1/credit.pb.h"
#include "services/moderation/mysql_rule_store.h"

namespace qunzu::moderation {

inline constexpr absl::Duration kCaseAcquireTimeout = absl::Seconds(5);

google::protobuf::Timestamp ToProto(absl::Time time);
absl::Time FromProto(const google::protobuf::Timestamp& time);

// "1,2,3" and back; an empty string is an empty list.
std::string JoinIds(const std::vector<uint64_t>& ids);
std::vector<uint64_t> SplitIds(const std::string& text);

// A nullable DATETIME(6) column read back as text: InfinitePast when NULL.
absl::StatusOr<absl::Time> ReadOptionalTime(const sql::ResultSet& row, int column);
// Binds an optional time: NULL for InfinitePast.
SqlValue OptionalTime(absl::Time time);

// Offset page tokens: the page size (default 50) and the offset a token
// carries. INVALID_FIELD page.page_token for a token we did not issue.
struct PageWindow {
  int size = 50;
  uint64_t offset = 0;
};
absl::StatusOr<PageWindow> ReadPage(const common::v1::PageRequest& page);
// Sets next_page_token when `fetched` (asked size+1) exceeded the page.
void WritePage(const PageWindow& window, size_t fetched, common::v1::PageResponse* out);

// Runs "<select_from> WHERE <where> ORDER BY <order>" for the page in
// `window` on a pooled connection: on_row sees at most window.size rows,
// and `page` gets the next token when more follow.
absl::Status QueryPage(MysqlPool& pool, const std::string& select_from, const std::string& where,
                       std::vector<SqlValue> params, const std::string& order,
                       const PageWindow& window, common::v1::PageResponse* page,
                       absl::FunctionRef<absl::Status(const sql::ResultSet&)> on_row);

// Records one audit event for a moderation change in conn's transaction.
absl::Status AuditChange(sql::Connection& conn, const RequestContext& context,
                         const std::string& action, const std::string& request_id, absl::Time now,
                         const std::vector<std::pair<audit::v1::SubjectKind, uint64_t>>& subjects,
                         const std::map<std::string, std::string>& details);

// The outbox topic credit events travel on (CreditEventDelivery).
inline constexpr char kCreditTopic[] = "credit";

// Adds one credit event for credit's RecordEvent to the outbox in conn's
// transaction; `event_id` is its request_id ("moderation:..."), so it
// counts once however often it is delivered.
absl::Status RecordCreditEvent(sql::Connection& conn, const std::string& event_id,
                               uint64_t account_id, credit::v1::CreditEventType type,
                               const std::string& reference, const std::string& reason,
                               absl::Time now, const std::string& reverses_event_id = "");

}  // namespace qunzu::moderation

#endif  // QUNZU_SERVICES_MODERATION_CASE_UTIL_H_
