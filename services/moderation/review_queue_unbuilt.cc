// MakeReviewQueue on a branch without the report store: every Hold is
// UNAVAILABLE REVIEW_QUEUE_UNAVAILABLE, so a HOLD verdict fails closed (the
// message is not delivered) instead of being dropped unreviewed. The report
// store's MakeReviewQueue replaces this file when the branches meet.
#include <memory>

#include "common/status.h"
#include "services/moderation/review_queue.h"

namespace qunzu::moderation {
namespace {

class UnbuiltReviewQueue final : public ReviewQueue {
 public:
  absl::StatusOr<v1::HeldMessage> Hold(const HeldMessageInput&) override {
    return MakeError(absl::StatusCode::kUnavailable, "REVIEW_QUEUE_UNAVAILABLE",
                     "the review queue is not built into this binary");
  }
};

}  // namespace

absl::StatusOr<std::unique_ptr<ReviewQueue>> MakeReviewQueue(ServiceDeps&, const Clock&) {
  return std::make_unique<UnbuiltReviewQueue>();
}

}  // namespace qunzu::moderation
