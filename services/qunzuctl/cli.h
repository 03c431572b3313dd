// qunzuctl's front: global flags (anywhere on the line), then a command.
//
//   qunzuctl [--target HOST:PORT | --<service>-target HOST:PORT]
//            [--token T | --token-file F | --as ROLE [--token-dir D]]
//            [--deadline 10s] [--output table|json] [--print FIELD]
//            COMMAND... [flags]
//
// Every global flag has a QUNZUCTL_* environment fallback. A service's
// target is, first found: --<service>-target, --target (command line), then
// QUNZUCTL_<SERVICE>_TARGET, QUNZUCTL_TARGET, and the local ports of
// `make run` (identity 50051 ... audit 50055).
#ifndef QUNZU_SERVICES_QUNZUCTL_CLI_H_
#define QUNZU_SERVICES_QUNZUCTL_CLI_H_

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config.h"
#include "services/qunzuctl/render.h"
#include "services/qunzuctl/rpc.h"

namespace qunzu::ctl {

struct Invocation {
  ConnectionOptions connection;
  OutputFormat output = OutputFormat::kTable;
  // --print PATH: only this response field's value, for scripts.
  std::string print;
  // The command words and their flags, global flags removed.
  std::vector<std::string> command;
  // --help / -h given before any command word (usage of qunzuctl itself).
  bool help = false;
};

// Splits global flags from the command and resolves targets and the token.
// INVALID_ARGUMENT naming the flag for a usage error (exit 2).
absl::StatusOr<Invocation> ParseInvocation(const std::vector<std::string>& args,
                                           const EnvLookup& env);

// The whole program; returns the exit code (exit_codes.h).
int Main(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
         const EnvLookup& env = ProcessEnv());

}  // namespace qunzu::ctl

#endif  // QUNZU_SERVICES_QUNZUCTL_CLI_H_
