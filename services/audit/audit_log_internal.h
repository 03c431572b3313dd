// Helpers shared by the files that implement AuditLog (audit_log.cc and
// audit_log_*.cc). Not part of the audit log's interface.
#ifndef QUNZU_SERVICES_AUDIT_AUDIT_LOG_INTERNAL_H_
#define QUNZU_SERVICES_AUDIT_AUDIT_LOG_INTERNAL_H_

#include <cppconn/resultset.h>

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"
#include "qunzu/common/v1/common.pb.h"

namespace qunzu::audit::internal {

// An INVALID_ARGUMENT error with the given reason and metadata.
absl::Status Bad(absl::string_view reason, absl::string_view message,
                 const std::map<std::string, std::string>& metadata = {});

// t truncated to whole microseconds (what the database stores).
absl::Time ToMicros(absl::Time t);

absl::Time FromProto(const google::protobuf::Timestamp& ts);
// Writes t, to the microsecond, into out.
void ToProto(absl::Time t, google::protobuf::Timestamp* out);

// A DATETIME column; NULL reads as InfinitePast.
absl::StatusOr<absl::Time> TimeColumn(const sql::ResultSet& row, int column);
// A string or binary column as bytes.
std::string Bytes(const sql::ResultSet& row, int column);

// The UTC month holding t.
absl::CivilMonth MonthOf(absl::Time t);

// The position a page token stands for (0 for the first page).
absl::StatusOr<uint64_t> ParsePageToken(const std::string& token);
// The page size asked for, or the default; INVALID_ARGUMENT past the maximum.
absl::StatusOr<int> PageSize(const common::v1::PageRequest& page);

}  // namespace qunzu::audit::internal

#endif  // QUNZU_SERVICES_AUDIT_AUDIT_LOG_INTERNAL_H_
