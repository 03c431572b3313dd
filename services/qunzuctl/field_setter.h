// Sets request fields from command-line text through protobuf reflection, so
// one generic mapping serves every command: `--group-id 7`, `--target.kind
// GROUP`, `--scale-tier small`, `--until +24h`, `--basis.report-ids 1,2`.
// Every error names the flag and says what was expected.
#ifndef QUNZU_SERVICES_QUNZUCTL_FIELD_SETTER_H_
#define QUNZU_SERVICES_QUNZUCTL_FIELD_SETTER_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace google::protobuf {
class EnumDescriptor;
class FieldDescriptor;
class Message;
}  // namespace google::protobuf

namespace qunzu::ctl {

// The field a dotted path names ("target.group_id"; dashes count as
// underscores), with every message on the way. INVALID_ARGUMENT naming the
// flag and listing the message's fields when a segment does not exist, or
// when the path runs through a list of messages.
struct FieldPath {
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  const google::protobuf::FieldDescriptor* leaf() const { return fields.back(); }
};
absl::StatusOr<FieldPath> ResolveFieldPath(const google::protobuf::Message& message,
                                           absl::string_view path);

// Parses `text` as a value of the field at `path` and sets it (appends, for
// a repeated field). Values:
//   integers and floats in decimal; booleans true/false/yes/no/1/0;
//   enums by full name, by the name without the enum's prefix (any case) or
//   by number; bytes in hex (or "base64:..."); Timestamp as RFC 3339,
//   "now", or "+90m" / "-7d" from `now`; Duration as "90s", "1h30m", "7d";
//   any other message as protobuf JSON ('{"kind": "GROUP"}'); repeated
//   numbers and enums also comma-separated.
absl::Status SetFieldFromText(google::protobuf::Message* message, absl::string_view path,
                              absl::string_view text, absl::Time now);

// Whether the field at path holds a value: present for messages, optional
// and oneof members, non-empty for lists, non-zero for plain scalars.
bool FieldIsSet(const google::protobuf::Message& message, absl::string_view path);

// "7d", "36h", "1h30m", "inf": absl::ParseDuration plus a day unit.
absl::StatusOr<absl::Duration> ParseDurationWithDays(absl::string_view text);

// The enum value names without their common prefix ("SMALL", "MEDIUM"...).
std::vector<std::string> ShortEnumNames(const google::protobuf::EnumDescriptor& type);
// The name of an enum value without its enum's prefix: SCALE_TIER_SMALL ->
// SMALL.
std::string ShortEnumName(const google::protobuf::EnumDescriptor& type, int number);

// A field's name as a flag: actor_account_id -> --actor-account-id.
std::string FlagName(absl::string_view field_path);

}  // namespace qunzu::ctl

#endif  // QUNZU_SERVICES_QUNZUCTL_FIELD_SETTER_H_
