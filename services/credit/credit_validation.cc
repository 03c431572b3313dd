#include "services/credit/credit_validation.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/idempotency.h"
#include "common/status.h"

namespace qunzu::credit {
namespace {

// Counts code points; -1 when `value` is not valid UTF-8.
int64_t Utf8Length(const std::string& value) {
  int64_t count = 0;
  for (size_t i = 0; i < value.size(); ++count) {
    const auto c = static_cast<unsigned char>(value[i]);
    size_t n = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      n = 1;
      cp = c;
    } else if ((c & 0xE0) == 0xC0) {
      n = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 4;
      cp = c & 0x07;
    } else {
      return -1;
    }
    if (i + n > value.size()) return -1;
    for (size_t k = 1; k < n; ++k) {
      const auto cc = static_cast<unsigned char>(value[i + k]);
      if ((cc & 0xC0) != 0x80) return -1;
      cp = (cp << 6) | (cc & 0x3F);
    }
    const bool overlong =
        (n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000);
    if (overlong || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
    i += n;
  }
  return count;
}

absl::Status CheckTimestamp(absl::string_view field, const google::protobuf::Timestamp& t) {
  // The range google.protobuf.Timestamp allows (0001-01-01 .. 9999-12-31).
  if (t.seconds() < -62135596800 || t.seconds() > 253402300799 || t.nanos() < 0 ||
      t.nanos() > 999999999) {
    return InvalidField(field, "is not a valid timestamp");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckText(absl::string_view field, const std::string& value, size_t max_chars,
                       bool required) {
  const int64_t length = Utf8Length(value);
  if (length < 0) return InvalidField(field, "is not valid UTF-8");
  if (required && length == 0) return InvalidField(field, "is required");
  if (static_cast<size_t>(length) > max_chars) {
    return InvalidField(field, absl::StrCat("is longer than ", max_chars, " characters"));
  }
  return absl::OkStatus();
}

absl::Status ValidateRecordEvent(const v1::RecordEventRequest& request) {
  RETURN_IF_ERROR(ValidateRequestId(request.request_id()));
  if (absl::StartsWith(request.request_id(), kCreditEventIdPrefix)) {
    return InvalidField("request_id", "the prefix \"credit:\" is reserved for credit's own events");
  }
  if (request.account_id() == 0) return InvalidField("account_id", "is required");
  const int type = request.event_type();
  if (type == v1::CREDIT_EVENT_TYPE_UNSPECIFIED) return InvalidField("event_type", "is required");
  if (!v1::CreditEventType_IsValid(type)) {
    return MakeError(absl::StatusCode::kInvalidArgument, "EVENT_TYPE_UNKNOWN",
                     absl::StrCat("event_type ", type, " is not a known credit event type"),
                     {{"field", "event_type"}});
  }
  if (request.has_occurred_at())
    RETURN_IF_ERROR(CheckTimestamp("occurred_at", request.occurred_at()));
  RETURN_IF_ERROR(CheckText("reference", request.reference(), 128, false));
  RETURN_IF_ERROR(CheckText("reason", request.reason(), 500, false));
  const bool reversal = type == v1::CREDIT_EVENT_TYPE_REVERSAL;
  if (reversal) {
    RETURN_IF_ERROR(ValidateRequestId(request.reverses_event_id()).ok()
                        ? absl::OkStatus()
                        : InvalidField("reverses_event_id", "must be an event id"));
  } else if (!request.reverses_event_id().empty()) {
    return InvalidField("reverses_event_id", "is only for REVERSAL");
  }
  return absl::OkStatus();
}

absl::Status ValidateApplyPenalty(const v1::ApplyPenaltyRequest& request, const Policy& policy) {
  RETURN_IF_ERROR(ValidateRequestId(request.request_id()));
  if (request.account_id() == 0) return InvalidField("account_id", "is required");
  const int kind = request.kind();
  if (kind == v1::PENALTY_KIND_UNSPECIFIED || !v1::PenaltyKind_IsValid(kind)) {
    return InvalidField("kind", "must be a known penalty kind");
  }
  if (kind == v1::PENALTY_KIND_LEVEL_DOWNGRADE) {
    if (request.levels() == 0) {
      return MakeError(absl::StatusCode::kInvalidArgument, "PENALTY_LEVELS_ZERO",
                       "a LEVEL_DOWNGRADE must remove at least one level", {{"field", "levels"}});
    }
    const uint32_t max_levels = policy.proto().penalty_rule().max_levels();
    if (request.levels() > max_levels) {
      return InvalidField("levels", absl::StrCat("is above the policy's max_levels ", max_levels));
    }
  } else if (request.levels() != 0) {
    return InvalidField("levels", "is only for LEVEL_DOWNGRADE");
  }
  if (!request.has_until()) return InvalidField("until", "is required");
  RETURN_IF_ERROR(CheckTimestamp("until", request.until()));
  if (request.disposition_id() == 0) return InvalidField("disposition_id", "is required");
  return CheckText("reason", request.reason(), 500, false);
}

absl::Status ValidateLiftPenalty(const v1::LiftPenaltyRequest& request) {
  RETURN_IF_ERROR(ValidateRequestId(request.request_id()));
  if (request.penalty_id() == 0) return InvalidField("penalty_id", "is required");
  return CheckText("reason", request.reason(), 500, true);
}

absl::Status ValidateHistoryRequest(const v1::ListCreditHistoryRequest& request) {
  if (request.account_id() == 0) return InvalidField("account_id", "is required");
  if (request.has_start_time()) RETURN_IF_ERROR(CheckTimestamp("start_time", request.start_time()));
  if (request.has_end_time()) RETURN_IF_ERROR(CheckTimestamp("end_time", request.end_time()));
  if (request.has_start_time() && request.has_end_time() &&
      (request.end_time().seconds() < request.start_time().seconds() ||
       (request.end_time().seconds() == request.start_time().seconds() &&
        request.end_time().nanos() <= request.start_time().nanos()))) {
    return InvalidField("end_time", "must be after start_time");
  }
  const int32_t page_size = request.page().page_size();
  if (page_size < 0 || page_size > 1000) return InvalidField("page.page_size", "must be 0..1000");
  return CheckText("page.page_token", request.page().page_token(), 64, false);
}

absl::Status CheckAccountRead(const Caller& caller, uint64_t account_id,
                              uint64_t actor_account_id) {
  if (account_id == 0) return InvalidField("account_id", "is required");
  if (caller.role == common::v1::ROLE_PLATFORM && actor_account_id != account_id) {
    return MakeError(absl::StatusCode::kPermissionDenied, "NOT_OWN_ACCOUNT",
                     "the platform may read only the acting user's own credit",
                     {{"field", "actor_account_id"}});
  }
  return absl::OkStatus();
}

}  // namespace qunzu::credit
