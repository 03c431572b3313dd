// The command table: one descriptor per `qunzuctl` command, naming the RPC
// it calls and how its arguments map onto the request. Request fields are
// set generically (field_setter.h); a descriptor only adds positional
// arguments, short aliases, defaults, required fields, table columns and,
// for the few commands that need more than one call, a hook.
#ifndef QUNZU_SERVICES_QUNZUCTL_COMMANDS_H_
#define QUNZU_SERVICES_QUNZUCTL_COMMANDS_H_

#include <map>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "services/qunzuctl/rpc.h"

namespace google::protobuf {
class Message;
class MethodDescriptor;
}  // namespace google::protobuf

namespace qunzu::ctl {

// Flags a command takes that are not request fields (--file for rules).
using Extras = std::map<std::string, std::string>;

// What a hook may use: the caller for follow-up calls, the clock, and a
// stream for notes (stderr).
struct HookContext {
  RpcCaller& rpc;
  absl::Time now;
  std::ostream& notes;
};

// Completes a request before the call (reads a file, looks up a version).
using PrepareHook = absl::Status (*)(HookContext& context, const Extras& extras,
                                     google::protobuf::Message* request);
// Checks a response after the call (verifies a proof). A non-OK status is
// a failed check: exit 1.
using CheckHook = absl::Status (*)(HookContext& context, const Extras& extras,
                                   const google::protobuf::Message& request,
                                   const google::protobuf::Message& response);

struct Command {
  // The words that name it: "groups members list".
  std::string words;
  // Full method name, "qunzu.groups.v1.GroupService.CreateGroup".
  std::string method;
  std::string summary;
  // Request field paths filled by positional arguments, in order.
  std::vector<std::string> positional;
  // Fields that must be set; "a|b" is satisfied by either.
  std::vector<std::string> required;
  // Field values applied before the arguments (which override them).
  std::vector<std::pair<std::string, std::string>> defaults;
  // Short flag -> field path ("name" -> "resident_identity.legal_name").
  std::map<std::string, std::string> aliases;
  // Flags that are not request fields; their values go to the hook.
  std::vector<std::string> extra_flags;
  // Table columns of a list response (dotted paths of the element).
  std::vector<std::string> columns;
  // A string field printed raw in table output.
  std::string raw_field;
  PrepareHook prepare = nullptr;
  CheckHook check = nullptr;
};

// Every RPC command, in help order.
const std::vector<Command>& AllCommands();

// The command whose words are the longest prefix of args; *consumed is the
// number of words matched. nullptr when none matches.
const Command* FindCommand(const std::vector<std::string>& args, size_t* consumed);

// The method a command calls; nullptr when the name is unknown (a bug that
// commands_test catches).
const google::protobuf::MethodDescriptor* MethodOf(const Command& command);

// Aliases every command accepts.
const std::map<std::string, std::string>& CommonAliases();

// Hooks (commands_hooks.cc).
absl::Status PrepareRuleSetUpsert(HookContext& context, const Extras& extras,
                                  google::protobuf::Message* request);
absl::Status PrepareAgreementAccept(HookContext& context, const Extras& extras,
                                    google::protobuf::Message* request);
absl::Status CheckCheckpointSignature(HookContext& context, const Extras& extras,
                                      const google::protobuf::Message& request,
                                      const google::protobuf::Message& response);
absl::Status CheckInclusionProof(HookContext& context, const Extras& extras,
                                 const google::protobuf::Message& request,
                                 const google::protobuf::Message& response);
absl::Status CheckConsistencyProof(HookContext& context, const Extras& extras,
                                   const google::protobuf::Message& request,
                                   const google::protobuf::Message& response);
absl::Status CheckVerifyRange(HookContext& context, const Extras& extras,
                              const google::protobuf::Message& request,
                              const google::protobuf::Message& response);

}  // namespace qunzu::ctl

#endif  // QUNZU_SERVICES_QUNZUCTL_COMMANDS_H_
