#include "services/moderation/case_util.h"

#include <cppconn/resultset.h>

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/audit_outbox.h"
#include "common/outbox.h"
#include "common/status.h"

namespace qunzu::moderation {
namespace {

constexpr int kMaxAuditSubjects = 64;
constexpr size_t kMaxAuditValueBytes = 4000;

}  // namespace

google::protobuf::Timestamp ToProto(absl::Time time) {
  google::protobuf::Timestamp out;
  const int64_t micros = absl::ToUnixMicros(time);
  out.set_seconds(micros / 1000000);
  out.set_nanos(static_cast<int32_t>(micros % 1000000) * 1000);
  return out;
}

absl::Time FromProto(const google::protobuf::Timestamp& time) {
  return absl::FromUnixSeconds(time.seconds()) + absl::Nanoseconds(time.nanos());
}

std::string JoinIds(const std::vector<uint64_t>& ids) { return absl::StrJoin(ids, ","); }

std::vector<uint64_t> SplitIds(const std::string& text) {
  std::vector<uint64_t> out;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    uint64_t id = 0;
    if (absl::SimpleAtoi(part, &id)) out.push_back(id);
  }
  return out;
}

absl::StatusOr<absl::Time> ReadOptionalTime(const sql::ResultSet& row, int column) {
  if (row.isNull(column)) return absl::InfinitePast();
  return ParseSqlDateTime(row.getString(column));
}

SqlValue OptionalTime(absl::Time time) {
  if (time == absl::InfinitePast()) return nullptr;
  return time;
}

absl::StatusOr<PageWindow> ReadPage(const common::v1::PageRequest& page) {
  PageWindow window;
  if (page.page_size() > 0) window.size = page.page_size();
  if (!page.page_token().empty() && !absl::SimpleAtoi(page.page_token(), &window.offset)) {
    return InvalidField("page.page_token", "is not a token this service issued");
  }
  return window;
}

void WritePage(const PageWindow& window, size_t fetched, common::v1::PageResponse* out) {
  if (fetched > static_cast<size_t>(window.size)) {
    out->set_next_page_token(absl::StrCat(window.offset + static_cast<uint64_t>(window.size)));
  }
}

absl::Status QueryPage(MysqlPool& pool, const std::string& select_from, const std::string& where,
                       std::vector<SqlValue> params, const std::string& order,
                       const PageWindow& window, common::v1::PageResponse* page,
                       absl::FunctionRef<absl::Status(const sql::ResultSet&)> on_row) {
  params.emplace_back(window.size + 1);
  params.emplace_back(window.offset);
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool.Acquire(kCaseAcquireTimeout));
  size_t fetched = 0;
  RETURN_IF_ERROR(Query(
      *lease, absl::StrCat(select_from, " WHERE ", where, " ORDER BY ", order, " LIMIT ? OFFSET ?"),
      params, [&](const sql::ResultSet& row) -> absl::Status {
        if (++fetched > static_cast<size_t>(window.size)) return absl::OkStatus();
        return on_row(row);
      }));
  WritePage(window, fetched, page);
  return absl::OkStatus();
}

absl::Status AuditChange(sql::Connection& conn, const RequestContext& context,
                         const std::string& action, const std::string& request_id, absl::Time now,
                         const std::vector<std::pair<audit::v1::SubjectKind, uint64_t>>& subjects,
                         const std::map<std::string, std::string>& details) {
  audit::v1::AuditEvent event =
      AuditEventFor(context.caller, context.peer, context.method, action, request_id);
  *event.mutable_time() = ToProto(now);
  // Within the audit log's bounds (64 subjects, 4096-byte values), which
  // would otherwise refuse the batch: the full text stays in MySQL and in
  // the filing.
  for (const auto& [kind, id] : subjects) {
    if (event.subjects_size() == kMaxAuditSubjects) break;
    audit::v1::Subject* subject = event.add_subjects();
    subject->set_kind(kind);
    subject->set_id(id);
  }
  for (const auto& [key, value] : details) {
    size_t size = std::min(value.size(), kMaxAuditValueBytes);
    // Back up to a UTF-8 character boundary.
    while (size < value.size() && size > 0 && (value[size] & 0xC0) == 0x80) --size;
    (*event.mutable_details())[key] = value.substr(0, size);
  }
  return RecordAuditEvent(conn, event).status();
}

absl::Status RecordCreditEvent(sql::Connection& conn, const std::string& event_id,
                               uint64_t account_id, credit::v1::CreditEventType type,
                               const std::string& reference, const std::string& reason,
                               absl::Time now, const std::string& reverses_event_id) {
  credit::v1::RecordEventRequest event;
  event.set_request_id(event_id);
  event.set_account_id(account_id);
  event.set_event_type(type);
  *event.mutable_occurred_at() = ToProto(now);
  event.set_reference(reference);
  event.set_reason(reason.substr(0, 400));
  event.set_reverses_event_id(reverses_event_id);
  return OutboxWriter().Add(conn, kCreditTopic, event.SerializeAsString()).status();
}

}  // namespace qunzu::moderation
