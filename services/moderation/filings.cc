#include "services/moderation/filings.h"

#include <cppconn/resultset.h>
#include <grpcpp/client_context.h>

#include <optional>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "services/moderation/case_util.h"

namespace qunzu::moderation {
namespace {

constexpr char kFilingColumns[] =
    "filing_id, filing_pb, delivery_state, attempts, last_attempt_at, last_error, delivered_at, "
    "receipt_id";
constexpr size_t kMaxErrorChars = 900;

absl::StatusOr<v1::Filing> ReadFilingRow(const sql::ResultSet& row) {
  v1::Filing filing;
  if (!filing.ParseFromString(row.getString(2))) {
    return MakeError(absl::StatusCode::kInternal, "FILING_CORRUPT", "filing unreadable");
  }
  filing.set_filing_id(row.getUInt64(1));
  filing.set_delivery_state(static_cast<v1::FilingDeliveryState>(row.getInt(3)));
  filing.set_attempts(row.getUInt(4));
  ASSIGN_OR_RETURN(absl::Time last, ReadOptionalTime(row, 5));
  if (last != absl::InfinitePast()) *filing.mutable_last_attempt_at() = ToProto(last);
  filing.set_last_error(row.getString(6));
  ASSIGN_OR_RETURN(absl::Time delivered, ReadOptionalTime(row, 7));
  if (delivered != absl::InfinitePast()) *filing.mutable_delivered_at() = ToProto(delivered);
  filing.set_receipt_id(row.getString(8));
  return filing;
}

}  // namespace

absl::StatusOr<uint64_t> RecordFiling(sql::Connection& conn, v1::Filing* filing, absl::Time now) {
  const uint64_t disposition_id =
      filing->has_disposition() ? filing->disposition().disposition_id() : 0;
  const uint64_t entry_id =
      filing->has_blacklist_entry() ? filing->blacklist_entry().blacklist_entry_id() : 0;
  *filing->mutable_created_at() = ToProto(now);
  RETURN_IF_ERROR(
      Execute(conn,
              "INSERT INTO filings (kind, subject_kind, subject_id, disposition_id, "
              "blacklist_entry_id, filing_pb, created_at, delivery_state) "
              "VALUES (?,?,?,?,?,'',?,?)",
              {static_cast<int>(filing->kind()), static_cast<int>(filing->subject_kind()),
               filing->subject_id(), disposition_id, entry_id, now,
               static_cast<int>(v1::FILING_DELIVERY_STATE_PENDING)})
          .status());
  ASSIGN_OR_RETURN(uint64_t filing_id, LastInsertId(conn));
  filing->set_filing_id(filing_id);
  RETURN_IF_ERROR(Execute(conn, "UPDATE filings SET filing_pb = ? WHERE filing_id = ?",
                          {filing->SerializeAsString(), filing_id})
                      .status());
  filing->set_delivery_state(v1::FILING_DELIVERY_STATE_PENDING);
  RETURN_IF_ERROR(OutboxWriter().Add(conn, kFilingTopic, absl::StrCat(filing_id)).status());
  return filing_id;
}

absl::StatusOr<v1::ListFilingsResponse> FilingStore::List(const v1::ListFilingsRequest& request) {
  ASSIGN_OR_RETURN(PageWindow window, ReadPage(request.page()));
  std::string where = "1=1";
  std::vector<SqlValue> params;
  auto add = [&](const char* clause, SqlValue value) {
    absl::StrAppend(&where, " AND ", clause);
    params.push_back(std::move(value));
  };
  if (request.kind() != 0) add("kind = ?", static_cast<int>(request.kind()));
  if (request.delivery_state() != 0) {
    add("delivery_state = ?", static_cast<int>(request.delivery_state()));
  }
  if (request.subject_kind() != 0)
    add("subject_kind = ?", static_cast<int>(request.subject_kind()));
  if (request.subject_id() != 0) add("subject_id = ?", request.subject_id());
  if (request.disposition_id() != 0) add("disposition_id = ?", request.disposition_id());
  if (request.has_created_after()) add("created_at >= ?", FromProto(request.created_after()));
  if (request.has_created_before()) add("created_at < ?", FromProto(request.created_before()));
  v1::ListFilingsResponse response;
  RETURN_IF_ERROR(QueryPage(pool_, absl::StrCat("SELECT ", kFilingColumns, " FROM filings"), where,
                            std::move(params), "filing_id DESC", window, response.mutable_page(),
                            [&](const sql::ResultSet& row) -> absl::Status {
                              ASSIGN_OR_RETURN(*response.add_filings(), ReadFilingRow(row));
                              return absl::OkStatus();
                            }));
  return response;
}

FilingDelivery::FilingDelivery(MysqlPool& pool, const std::shared_ptr<grpc::Channel>& channel,
                               std::string provider_name, absl::Duration deadline,
                               const Clock& clock)
    : pool_(pool),
      stub_(v1::FilingReceiver::NewStub(channel)),
      provider_name_(std::move(provider_name)),
      deadline_(deadline),
      clock_(clock) {}

absl::Status FilingDelivery::Deliver(const std::vector<OutboxRecord>& batch) {
  for (const OutboxRecord& record : batch) {
    uint64_t filing_id = 0;
    if (!absl::SimpleAtoi(record.payload, &filing_id)) continue;
    RETURN_IF_ERROR(DeliverOne(filing_id));
  }
  return absl::OkStatus();
}

absl::Status FilingDelivery::DeliverOne(uint64_t filing_id) {
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(kCaseAcquireTimeout));
  std::optional<v1::Filing> filing;
  RETURN_IF_ERROR(
      Query(*lease, absl::StrCat("SELECT ", kFilingColumns, " FROM filings WHERE filing_id = ?"),
            {filing_id}, [&](const sql::ResultSet& row) -> absl::Status {
              ASSIGN_OR_RETURN(filing, ReadFilingRow(row));
              return absl::OkStatus();
            }));
  if (!filing || filing->delivery_state() == v1::FILING_DELIVERY_STATE_DELIVERED) {
    return absl::OkStatus();
  }
  v1::ReceiveFilingRequest request;
  request.set_provider_name(provider_name_);
  *request.mutable_filing() = *filing;
  // The delivery fields are ours.
  v1::Filing* sent = request.mutable_filing();
  sent->clear_delivery_state();
  sent->clear_attempts();
  sent->clear_last_attempt_at();
  sent->clear_last_error();
  sent->clear_delivered_at();
  sent->clear_receipt_id();
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + deadline_));
  v1::ReceiveFilingResponse response;
  const grpc::Status status = stub_->ReceiveFiling(&context, request, &response);
  const absl::Time now = clock_.Now();
  if (status.ok() && !response.receipt_id().empty()) {
    return Execute(*lease,
                   "UPDATE filings SET delivery_state = ?, attempts = attempts + 1, "
                   "last_attempt_at = ?, last_error = '', delivered_at = ?, receipt_id = ? "
                   "WHERE filing_id = ?",
                   {static_cast<int>(v1::FILING_DELIVERY_STATE_DELIVERED), now, now,
                    response.receipt_id(), filing_id})
        .status();
  }
  std::string error = status.ok() ? "the authority returned no receipt"
                                  : absl::StrCat(status.error_code(), ": ", status.error_message());
  if (error.size() > kMaxErrorChars) error.resize(kMaxErrorChars);
  RETURN_IF_ERROR(
      Execute(*lease,
              "UPDATE filings SET delivery_state = ?, attempts = attempts + 1, "
              "last_attempt_at = ?, last_error = ? WHERE filing_id = ?",
              {static_cast<int>(v1::FILING_DELIVERY_STATE_RETRYING), now, error, filing_id})
          .status());
  return MakeError(absl::StatusCode::kUnavailable, "AUTHORITY_UNAVAILABLE",
                   "filing " + absl::StrCat(filing_id) + " not accepted: " + error);
}

}  // namespace qunzu::moderation
