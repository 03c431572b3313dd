// Where ScreenMessage sends a HOLD verdict (DESIGN §2, R12.2): each held
// message opens a review report with source SCREENING in the report queue,
// which moderators work like any other case; resolving that report releases
// or rejects the message (GetHeldMessage, ListHeldMessages).
//
// The screening path only sees this interface; the report store
// (ReportStore in report_store.h, owned by the case handling) implements it.
#ifndef QUNZU_SERVICES_MODERATION_REVIEW_QUEUE_H_
#define QUNZU_SERVICES_MODERATION_REVIEW_QUEUE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "qunzu/moderation/v1/moderation.pb.h"

namespace qunzu::moderation {

// One message the screen held, as captured at screening time.
struct HeldMessageInput {
  // ScreenMessage's request_id (idempotency: the same request_id holds once).
  std::string request_id;
  std::string message_id;
  uint64_t group_id = 0;
  uint64_t sender_account_id = 0;
  // The original text, kept as the report's evidence.
  std::string text;
  std::string client_ip;
  // Why it was held (the matching HOLD rules, or the emergency mode).
  std::vector<v1::ScreenReason> reasons;
  absl::Time held_at;
};

class ReviewQueue {
 public:
  virtual ~ReviewQueue() = default;

  // Opens (or, for a request_id already held, returns) the review report of
  // a held message, durably, with its audit outbox row, before returning.
  // The returned HeldMessage carries the report id and deadline.
  virtual absl::StatusOr<v1::HeldMessage> Hold(const HeldMessageInput& input) = 0;
};

}  // namespace qunzu::moderation

#endif  // QUNZU_SERVICES_MODERATION_REVIEW_QUEUE_H_
