// Helpers shared by the files that implement AuditLog.

#include "services/audit/audit_log_internal.h"

#include <cppconn/resultset.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "common/audit_outbox.h"
#include "common/log.h"
#include "common/mysql.h"
#include "common/status.h"
#include "services/audit/entry_codec.h"
#include "services/audit/log_verifier.h"
#include "services/audit/node_store.h"

namespace qunzu::audit::internal {
namespace {

constexpr int kDefaultPageSize = 50;
constexpr int kMaxPageSize = 1000;

}  // namespace

absl::Status Bad(absl::string_view reason, absl::string_view message,
                 const std::map<std::string, std::string>& metadata) {
  return MakeError(absl::StatusCode::kInvalidArgument, reason, message, metadata);
}

absl::Time ToMicros(absl::Time t) { return absl::FromUnixMicros(absl::ToUnixMicros(t)); }

absl::Time FromProto(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

void ToProto(absl::Time t, google::protobuf::Timestamp* out) {
  const int64_t micros = absl::ToUnixMicros(t);
  int64_t seconds = micros / 1000000;
  int64_t rem = micros % 1000000;
  if (rem < 0) {
    rem += 1000000;
    --seconds;
  }
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(rem * 1000));
}

absl::StatusOr<absl::Time> TimeColumn(const sql::ResultSet& row, int column) {
  if (row.isNull(column)) return absl::InfinitePast();
  return ParseSqlDateTime(std::string(row.getString(column)));
}

std::string Bytes(const sql::ResultSet& row, int column) {
  return std::string(row.getString(column));
}

absl::CivilMonth MonthOf(absl::Time t) {
  return absl::CivilMonth(absl::ToCivilSecond(t, absl::UTCTimeZone()));
}

absl::StatusOr<uint64_t> ParsePageToken(const std::string& token) {
  if (token.empty()) return 0;
  uint64_t v = 0;
  if (!absl::SimpleAtoi(token, &v))
    return InvalidField("page.page_token", "is not a token we gave");
  return v;
}

absl::StatusOr<int> PageSize(const common::v1::PageRequest& page) {
  if (page.page_size() < 0 || page.page_size() > kMaxPageSize) {
    return InvalidField("page.page_size", "must be 0..1000");
  }
  return page.page_size() == 0 ? kDefaultPageSize : page.page_size();
}

}  // namespace qunzu::audit::internal
