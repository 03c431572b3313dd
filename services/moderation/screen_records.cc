#include "services/moderation/screen_records.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/log.h"
#include "common/status.h"

namespace qunzu::moderation {
namespace {

constexpr size_t kFingerprintBytes = 32;

}  // namespace

void ScreenRecordWriter::Record(std::string key, const std::string& fingerprint,
                                const v1::ScreenMessageResponse& response) {
  std::string value = fingerprint;
  response.AppendToString(&value);
  Defer({"SET", std::move(key), std::move(value), "PX",
         absl::StrCat(absl::ToInt64Milliseconds(kScreenRecordTtl))});
}

void ScreenRecordWriter::Flush() {
  // Redis runs one connection's commands in order: the PING's reply comes
  // after every command posted before it has run.
  absl::Notification done;
  redis_.Pipeline({{"PING"}},
                  [&](const absl::StatusOr<std::vector<RedisReply>>&) { done.Notify(); });
  done.WaitForNotification();
}

absl::StatusOr<v1::ScreenMessageResponse> ReplayScreenRecord(const std::string& record,
                                                             const std::string& fingerprint) {
  if (record.size() < kFingerprintBytes) {
    return MakeError(absl::StatusCode::kUnavailable, "SCREEN_IN_PROGRESS",
                     "the first call with this request_id is still being screened; retry");
  }
  if (record.compare(0, kFingerprintBytes, fingerprint) != 0) {
    return MakeError(absl::StatusCode::kAlreadyExists, "REQUEST_ID_REUSED",
                     "request_id was used for another message");
  }
  v1::ScreenMessageResponse response;
  if (!response.ParseFromArray(record.data() + kFingerprintBytes,
                               static_cast<int>(record.size() - kFingerprintBytes))) {
    return MakeError(absl::StatusCode::kInternal, "IDEMPOTENCY_CORRUPT",
                     "the recorded verdict does not parse");
  }
  return response;
}

}  // namespace qunzu::moderation
