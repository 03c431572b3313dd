// Conversions between absl::Time and google.protobuf.Timestamp for the
// moderation service's messages.
#ifndef QUNZU_SERVICES_MODERATION_PROTO_TIME_H_
#define QUNZU_SERVICES_MODERATION_PROTO_TIME_H_

#include <google/protobuf/timestamp.pb.h>

#include <cstdint>

#include "absl/time/time.h"

namespace qunzu::moderation {

// Microsecond precision, as MySQL's DATETIME(6) keeps it.
inline google::protobuf::Timestamp ToProtoTime(absl::Time time) {
  google::protobuf::Timestamp out;
  const int64_t micros = absl::ToUnixMicros(time);
  out.set_seconds(micros / 1000000);
  out.set_nanos(static_cast<int32_t>(micros % 1000000) * 1000);
  return out;
}

inline absl::Time FromProtoTime(const google::protobuf::Timestamp& time) {
  return absl::FromUnixSeconds(time.seconds()) + absl::Nanoseconds(time.nanos());
}

}  // namespace qunzu::moderation

#endif  // QUNZU_SERVICES_MODERATION_PROTO_TIME_H_
