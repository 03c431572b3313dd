// Turns a command's arguments into its request: positional arguments,
// `--field value` / `--field=value` for any request field (dotted paths for
// nested ones, `--x-file PATH` for a string or bytes field x read from a
// file, `--request JSON` / `--request-file PATH` for the whole request), the
// command's aliases and defaults, its required fields, and a fresh
// request_id when the request has one and none was given.
#ifndef QUNZU_SERVICES_QUNZUCTL_REQUEST_BUILDER_H_
#define QUNZU_SERVICES_QUNZUCTL_REQUEST_BUILDER_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "services/qunzuctl/commands.h"

namespace google::protobuf {
class Message;
}

namespace qunzu::ctl {

// INVALID_ARGUMENT naming the flag on any problem: unknown flag, bad value,
// missing value, a required field not given, a stray argument.
absl::Status BuildRequest(const Command& command, const std::vector<std::string>& args,
                          absl::Time now, google::protobuf::Message* request, Extras* extras);

// `qunzuctl <words> --help`: the summary, the RPC, positional arguments,
// required fields, aliases and every request field with its type.
std::string CommandHelp(const Command& command);

// Reads a whole file; NOT_FOUND naming the flag and path when it cannot.
absl::StatusOr<std::string> ReadFileForFlag(const std::string& flag, const std::string& path);

}  // namespace qunzu::ctl

#endif  // QUNZU_SERVICES_QUNZUCTL_REQUEST_BUILDER_H_
