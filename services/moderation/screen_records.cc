#include "services/moderation/screen_records.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status.h"

namespace qunzu::moderation {
namespace {

constexpr size_t kFingerprintBytes = 32;
constexpr size_t kMaxBatch = 256;
constexpr absl::Duration kGatherTime = absl::Microseconds(500);

}  // namespace

ScreenRecordWriter::ScreenRecordWriter(RedisClient& redis)
    : redis_(redis), thread_([this] { Run(); }) {}

ScreenRecordWriter::~ScreenRecordWriter() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    changed_.SignalAll();
  }
  thread_.join();
}

void ScreenRecordWriter::Record(std::string key, const std::string& fingerprint,
                                const v1::ScreenMessageResponse& response) {
  std::string value = fingerprint;
  response.AppendToString(&value);
  Defer({"SET", std::move(key), std::move(value), "PX",
         absl::StrCat(absl::ToInt64Milliseconds(kScreenRecordTtl))});
}

void ScreenRecordWriter::Defer(RedisCommand command) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(command));
  ++queued_;
  // Only an idle writer needs waking; a busy one finds the queue.
  if (queue_.size() == 1) changed_.SignalAll();
}

void ScreenRecordWriter::Flush() {
  absl::MutexLock lock(&mu_);
  const uint64_t target = queued_;
  while (written_ < target) changed_.Wait(&mu_);
}

void ScreenRecordWriter::Run() {
  while (true) {
    std::vector<RedisCommand> batch;
    {
      absl::MutexLock lock(&mu_);
      while (!stopping_ && queue_.empty()) changed_.Wait(&mu_);
      if (queue_.empty()) return;
      // Gather what arrives within a moment into the same pipeline.
      if (!stopping_) changed_.WaitWithTimeout(&mu_, kGatherTime);
      while (!queue_.empty() && batch.size() < kMaxBatch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    absl::StatusOr<std::vector<RedisReply>> replies = redis_.Pipeline(batch);
    if (!replies.ok()) {
      // The ids stay "pending" until their TTL: retries are told to retry,
      // and then screen afresh.
      LogWarning("screen_record_write_failed", {{"records", static_cast<int64_t>(batch.size())},
                                                {"reason", ErrorReason(replies.status())}});
    }
    absl::MutexLock lock(&mu_);
    written_ += batch.size();
    changed_.SignalAll();
  }
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
