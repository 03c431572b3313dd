// Output of a response: protobuf JSON (field names as in the protos, every
// scalar printed) or a table a person can read: a list response as columns,
// anything else as `field: value` lines, enums without their prefix,
// timestamps in RFC 3339 UTC and bytes in hex.
#ifndef QUNZU_SERVICES_QUNZUCTL_RENDER_H_
#define QUNZU_SERVICES_QUNZUCTL_RENDER_H_

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace google::protobuf {
class FieldDescriptor;
class Message;
}  // namespace google::protobuf

namespace qunzu::ctl {

enum class OutputFormat { kTable, kJson };

// Protobuf JSON with proto field names, always printing scalars, indented.
absl::Status RenderJson(const google::protobuf::Message& message, std::ostream& out);

struct TableOptions {
  // Columns of a list, as dotted field paths of its element; empty picks the
  // element's scalar fields that are set in some row (at most eight).
  std::vector<std::string> columns;
  // A string field printed raw instead (a document's content).
  std::string raw_field;
};
void RenderTable(const google::protobuf::Message& message, const TableOptions& options,
                 std::ostream& out);

// One field's value as text (singular fields; lists joined with commas).
std::string FormatField(const google::protobuf::Message& message,
                        const google::protobuf::FieldDescriptor& field);

// The value at a dotted path ("account.account_id") as text; "" when a
// message on the way is unset or the path does not exist.
std::string FormatPath(const google::protobuf::Message& message, absl::string_view path);

}  // namespace qunzu::ctl

#endif  // QUNZU_SERVICES_QUNZUCTL_RENDER_H_
