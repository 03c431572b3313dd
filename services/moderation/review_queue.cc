// The review queue of held messages (DESIGN §2, R12.2): a HOLD verdict opens
// a SCREENING report, worked like any other; resolving it releases or
// rejects the message (report_store.cc, DecideHeld).
#include "services/moderation/review_queue.h"

#include <cppconn/resultset.h>

#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "services/moderation/case_util.h"
#include "services/moderation/report_store.h"
#include "services/moderation/subjects.h"

namespace qunzu::moderation {
namespace {

constexpr char kHeldColumns[] =
    "report_id, message_id, group_id, sender_account_id, state, reasons_pb, held_at, deadline, "
    "decided_at";

absl::StatusOr<v1::HeldMessage> ReadHeldRow(const sql::ResultSet& row) {
  v1::HeldMessage held;
  if (!held.ParseFromString(row.getString(6))) {
    return MakeError(absl::StatusCode::kInternal, "HELD_MESSAGE_CORRUPT", "reasons unreadable");
  }
  held.set_report_id(row.getUInt64(1));
  held.set_message_id(row.getString(2));
  held.set_group_id(row.getUInt64(3));
  held.set_sender_account_id(row.getUInt64(4));
  held.set_state(static_cast<v1::HeldMessageState>(row.getInt(5)));
  ASSIGN_OR_RETURN(absl::Time held_at, ParseSqlDateTime(row.getString(7)));
  *held.mutable_held_at() = ToProto(held_at);
  ASSIGN_OR_RETURN(absl::Time deadline, ParseSqlDateTime(row.getString(8)));
  *held.mutable_deadline() = ToProto(deadline);
  ASSIGN_OR_RETURN(absl::Time decided, ReadOptionalTime(row, 9));
  if (decided != absl::InfinitePast()) *held.mutable_decided_at() = ToProto(decided);
  return held;
}

absl::StatusOr<std::optional<v1::HeldMessage>> FindHeld(sql::Connection& conn,
                                                        const std::string& column,
                                                        const SqlValue& value) {
  std::optional<v1::HeldMessage> held;
  RETURN_IF_ERROR(Query(
      conn, absl::StrCat("SELECT ", kHeldColumns, " FROM held_messages WHERE ", column, " = ?"),
      {value}, [&](const sql::ResultSet& row) -> absl::Status {
        ASSIGN_OR_RETURN(held, ReadHeldRow(row));
        return absl::OkStatus();
      }));
  return held;
}

}  // namespace

absl::StatusOr<v1::HeldMessage> ReportStore::Hold(const HeldMessageInput& input) {
  if (input.request_id.empty() || input.request_id.size() > 128) {
    return InvalidField("request_id", "must be 1..128 characters");
  }
  // A held message is a report from the screen: counted with the others in
  // qunzu_moderation_reports_received_total, once per message.
  std::optional<v1::ContentCategory> created;
  absl::StatusOr<v1::HeldMessage> held =
      WithTransaction(pool_, [&](sql::Connection& conn) -> absl::StatusOr<v1::HeldMessage> {
        created.reset();
        ASSIGN_OR_RETURN(std::optional<v1::HeldMessage> existing,
                         FindHeld(conn, "request_id", input.request_id));
        if (existing) return *existing;
        v1::ContentCategory category = v1::CONTENT_CATEGORY_OTHER;
        for (const v1::ScreenReason& reason : input.reasons) {
          if (reason.category() != v1::CONTENT_CATEGORY_UNSPECIFIED) {
            category = reason.category();
            break;
          }
        }
        const absl::Time deadline = input.held_at + options_.DeadlineFor(category);
        v1::Report fragment;
        v1::EvidenceItem* evidence = fragment.mutable_held_message();
        evidence->set_message_id(input.message_id);
        evidence->set_group_id(input.group_id);
        evidence->set_sender_account_id(input.sender_account_id);
        evidence->set_text(input.text);
        *evidence->mutable_sent_at() = ToProto(input.held_at);
        for (const v1::ScreenReason& reason : input.reasons)
          *fragment.add_screen_reasons() = reason;
        RETURN_IF_ERROR(
            Execute(conn,
                    "INSERT INTO reports (source, target_kind, target_group_id, "
                    "target_account_id, target_message_id, open_key, category, state, "
                    "distinct_reporters, submissions, created_at, deadline, statement, "
                    "held_pb) VALUES (?,?,?,?,?,NULL,?,?,0,0,?,?,'',?)",
                    {static_cast<int>(v1::REPORT_SOURCE_SCREENING),
                     static_cast<int>(v1::REPORT_TARGET_KIND_MESSAGE), input.group_id,
                     input.sender_account_id, input.message_id, static_cast<int>(category),
                     static_cast<int>(v1::REPORT_STATE_OPEN), input.held_at, deadline,
                     fragment.SerializeAsString()})
                .status());
        ASSIGN_OR_RETURN(uint64_t report_id, LastInsertId(conn));
        v1::HeldMessage reasons;
        for (const v1::ScreenReason& reason : input.reasons) *reasons.add_reasons() = reason;
        RETURN_IF_ERROR(
            Execute(conn,
                    "INSERT INTO held_messages (report_id, request_id, message_id, "
                    "group_id, sender_account_id, state, reasons_pb, held_at, deadline) "
                    "VALUES (?,?,?,?,?,?,?,?,?)",
                    {report_id, input.request_id, input.message_id, input.group_id,
                     input.sender_account_id, static_cast<int>(v1::HELD_MESSAGE_STATE_PENDING),
                     reasons.SerializeAsString(), input.held_at, deadline})
                .status());
        const RequestContext context{
            Caller{"service:moderation", common::v1::ROLE_SERVICE, "moderation"}, input.client_ip,
            "/qunzu.moderation.v1.ModerationService/ScreenMessage"};
        RETURN_IF_ERROR(AuditChange(
            conn, context, "MESSAGE_HELD", input.request_id, input.held_at,
            {{audit::v1::SUBJECT_KIND_REPORT, report_id},
             {audit::v1::SUBJECT_KIND_GROUP, input.group_id},
             {audit::v1::SUBJECT_KIND_ACCOUNT, input.sender_account_id}},
            {{"message_id", input.message_id}, {"category", v1::ContentCategory_Name(category)}}));
        ASSIGN_OR_RETURN(std::optional<v1::HeldMessage> row,
                         FindHeld(conn, "report_id", report_id));
        created = category;
        return *row;
      });
  if (held.ok() && created.has_value() && metrics_ != nullptr) metrics_->ReportReceived(*created);
  return held;
}

absl::StatusOr<v1::GetHeldMessageResponse> ReportStore::GetHeld(
    const v1::GetHeldMessageRequest& request) {
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(kCaseAcquireTimeout));
  ASSIGN_OR_RETURN(std::optional<v1::HeldMessage> held,
                   FindHeld(*lease, "report_id", request.report_id()));
  if (!held) {
    return MakeError(absl::StatusCode::kNotFound, "HELD_MESSAGE_NOT_FOUND",
                     absl::StrCat("no held message under report ", request.report_id()));
  }
  v1::GetHeldMessageResponse response;
  *response.mutable_held_message() = *std::move(held);
  return response;
}

absl::StatusOr<v1::ListHeldMessagesResponse> ReportStore::ListHeld(
    const v1::ListHeldMessagesRequest& request) {
  ASSIGN_OR_RETURN(PageWindow window, ReadPage(request.page()));
  std::string where = "1=1";
  std::vector<SqlValue> params;
  if (request.group_id() != 0) {
    where += " AND group_id = ?";
    params.emplace_back(request.group_id());
  }
  if (request.state() != 0) {
    where += " AND state = ?";
    params.emplace_back(static_cast<int>(request.state()));
  }
  if (request.has_decided_after()) {
    where += " AND decided_at >= ?";
    params.emplace_back(FromProto(request.decided_after()));
  }
  v1::ListHeldMessagesResponse response;
  RETURN_IF_ERROR(QueryPage(pool_, absl::StrCat("SELECT ", kHeldColumns, " FROM held_messages"),
                            where, std::move(params), "decided_at IS NULL, decided_at, report_id",
                            window, response.mutable_page(),
                            [&](const sql::ResultSet& row) -> absl::Status {
                              ASSIGN_OR_RETURN(*response.add_held_messages(), ReadHeldRow(row));
                              return absl::OkStatus();
                            }));
  return response;
}

}  // namespace qunzu::moderation
