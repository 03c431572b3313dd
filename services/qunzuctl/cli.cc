#include "services/qunzuctl/cli.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/message.h>

#include <algorithm>
#include <memory>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status.h"
#include "services/qunzuctl/commands.h"
#include "services/qunzuctl/compliance.h"
#include "services/qunzuctl/exit_codes.h"
#include "services/qunzuctl/field_setter.h"
#include "services/qunzuctl/request_builder.h"

namespace qunzu::ctl {
namespace {

constexpr char kProgram[] = "qunzuctl";

struct ServicePort {
  const char* name;
  int port;
};
constexpr ServicePort kDefaultPorts[] = {{"identity", 50051},
                                         {"groups", 50052},
                                         {"credit", 50053},
                                         {"moderation", 50054},
                                         {"audit", 50055}};

struct GlobalValues {
  std::string target, token, token_file, as, token_dir, output, print;
  std::map<std::string, std::string> service_targets;
  absl::Duration deadline;
};

void RegisterGlobals(FlagSet& flags, GlobalValues* values) {
  flags.AddString({"target", "QUNZUCTL_TARGET",
                   "One host:port for every service (a gateway); per-service flags win."},
                  &values->target, "");
  for (const ServicePort& service : kDefaultPorts) {
    std::string upper = absl::AsciiStrToUpper(service.name);
    flags.AddString(
        {absl::StrCat(service.name, "-target"), absl::StrCat("QUNZUCTL_", upper, "_TARGET"),
         absl::StrCat("host:port of ", service.name, " (default 127.0.0.1:", service.port, ")")},
        &values->service_targets[service.name], "");
  }
  flags.AddString({"token", "QUNZUCTL_TOKEN", "Bearer token."}, &values->token, "");
  flags.AddString({"token-file", "QUNZUCTL_TOKEN_FILE", "File holding the bearer token."},
                  &values->token_file, "");
  flags.AddString({"as", "QUNZUCTL_AS",
                   "Role whose token is read from <token-dir>/<role>.token (make run's "
                   "tokens)."},
                  &values->as, "");
  flags.AddString({"token-dir", "QUNZUCTL_TOKEN_DIR",
                   "Folder of <role>.token files, for --as (make run: .run/run/secrets)."},
                  &values->token_dir, "");
  flags.AddDuration({"deadline", "QUNZUCTL_DEADLINE", "Deadline of each call."}, &values->deadline,
                    absl::Seconds(10), absl::Milliseconds(1), absl::Hours(1));
  flags.AddChoice({"output", "QUNZUCTL_OUTPUT", "table (for people) or json (protobuf JSON)."},
                  &values->output, "table", {"table", "json"});
  flags.AddString(
      {"print", "", "Print only this response field (dotted path, e.g. account.account_id)."},
      &values->print, "");
}

EnvLookup NoEnv() {
  return [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
}

const std::set<std::string>& GlobalNames() {
  static const auto* names =
      new std::set<std::string>{"target",        "identity-target",   "groups-target",
                                "credit-target", "moderation-target", "audit-target",
                                "token",         "token-file",        "as",
                                "token-dir",     "deadline",          "output",
                                "print"};
  return *names;
}

absl::StatusOr<std::string> ResolveToken(const GlobalValues& values) {
  std::string token;
  if (!values.token.empty()) {
    token = values.token;
  } else if (!values.token_file.empty()) {
    ASSIGN_OR_RETURN(token, ReadFileForFlag("--token-file", values.token_file));
  } else if (!values.as.empty()) {
    if (values.as.find_first_not_of("abcdefghijklmnopqrstuvwxyz-") != std::string::npos) {
      return InvalidField("--as", absl::StrCat("\"", values.as,
                                               "\" is not a role name (platform, moderator, "
                                               "compliance, regulator, operator)"));
    }
    if (values.token_dir.empty()) {
      return InvalidField("--as", "--as needs --token-dir (or QUNZUCTL_TOKEN_DIR)");
    }
    ASSIGN_OR_RETURN(
        token, ReadFileForFlag("--as", absl::StrCat(values.token_dir, "/", values.as, ".token")));
  }
  return std::string(absl::StripAsciiWhitespace(token));
}

std::string Usage() {
  FlagSet flags(kProgram, "");
  GlobalValues values;
  RegisterGlobals(flags, &values);
  std::string out =
      "qunzuctl: the Qunzu suite for staff and inspectors.\n\n"
      "Usage: qunzuctl [global flags] COMMAND... [flags]   (COMMAND --help for its flags)\n\n"
      "Commands:\n";
  for (const Command& command : AllCommands()) {
    absl::StrAppend(&out, "  ", command.words,
                    std::string(28 - std::min<size_t>(27, command.words.size()), ' '),
                    command.summary, "\n");
  }
  absl::StrAppend(&out,
                  "  health [SERVICE...]         grpc.health.v1 of every service.\n"
                  "  compliance report           Article by article, live evidence "
                  "(--audit-public-key PEM).\n\n",
                  "Exit codes: 0 ok, 1 a check failed, 2 usage, 3 compliance evidence "
                  "incomplete, 64+gRPC code when a call fails (80 UNAUTHENTICATED).\n\n",
                  flags.Usage());
  return out;
}

int UsageError(std::ostream& err, const std::string& context, const absl::Status& status) {
  err << kProgram << ": " << context << (context.empty() ? "" : ": ") << status.message() << "\n";
  return kExitUsage;
}

int RunHealth(const Invocation& invocation, const std::vector<std::string>& names,
              std::ostream& out, std::ostream& err) {
  std::vector<std::string> services = names;
  if (services.empty()) services.assign(std::begin(kServiceNames), std::end(kServiceNames));
  for (const std::string& name : services) {
    if (!invocation.connection.targets.count(name)) {
      return UsageError(err, "health",
                        absl::InvalidArgumentError(absl::StrCat(
                            "unknown service \"", name,
                            "\"; one of identity, groups, credit, moderation, audit")));
    }
  }
  GrpcCaller caller(invocation.connection);
  bool all_serving = true;
  std::vector<std::pair<std::string, std::string>> results;
  for (const std::string& name : services) {
    absl::StatusOr<std::string> status = caller.HealthCheck(name);
    std::string text =
        status.ok() ? *status : absl::StrCat("UNREACHABLE ", DescribeError(status.status()));
    all_serving = all_serving && status.ok() && *status == "SERVING";
    results.emplace_back(name, text);
  }
  if (invocation.output == OutputFormat::kJson) {
    out << "{\n";
    for (size_t i = 0; i < results.size(); ++i) {
      const std::string status =
          absl::StartsWith(results[i].second, "UNREACHABLE") ? "UNREACHABLE" : results[i].second;
      out << "  \"" << results[i].first << "\": {\"target\": \""
          << invocation.connection.targets.at(results[i].first) << "\", \"status\": \"" << status
          << "\"}" << (i + 1 < results.size() ? "," : "") << "\n";
    }
    out << "}\n";
  } else {
    for (const auto& [name, text] : results) {
      out << name << std::string(12 - name.size(), ' ') << invocation.connection.targets.at(name)
          << "  " << text << "\n";
    }
  }
  return all_serving ? kExitOk : kExitCheckFailed;
}

int RunCommand(const Invocation& invocation, const Command& command,
               const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const google::protobuf::MethodDescriptor* method = MethodOf(command);
  if (method == nullptr) {
    err << kProgram << ": " << command.words << ": unknown method " << command.method << "\n";
    return kExitUsage;
  }
  const google::protobuf::Message* prototype =
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(method->input_type());
  std::unique_ptr<google::protobuf::Message> request(prototype->New());
  Extras extras;
  absl::Time now = absl::Now();
  if (absl::Status built = BuildRequest(command, args, now, request.get(), &extras); !built.ok()) {
    err << kProgram << " " << command.words << ": " << built.message() << " (see qunzuctl "
        << command.words << " --help)\n";
    return kExitUsage;
  }
  GrpcCaller caller(invocation.connection);
  HookContext context{caller, now, err};
  if (command.prepare != nullptr) {
    if (absl::Status prepared = command.prepare(context, extras, request.get()); !prepared.ok()) {
      err << kProgram << " " << command.words << ": " << DescribeError(prepared) << "\n";
      return prepared.code() == absl::StatusCode::kInvalidArgument ? kExitUsage
                                                                   : ExitCodeForStatus(prepared);
    }
  }
  std::unique_ptr<google::protobuf::Message> response(
      google::protobuf::MessageFactory::generated_factory()
          ->GetPrototype(method->output_type())
          ->New());
  if (!invocation.print.empty()) {
    if (absl::StatusOr<FieldPath> path = ResolveFieldPath(*response, invocation.print);
        !path.ok()) {
      err << kProgram << " " << command.words << ": --print: " << method->output_type()->name()
          << " has no field \"" << invocation.print << "\"\n";
      return kExitUsage;
    }
  }
  if (absl::Status called = caller.Call(*method, *request, response.get()); !called.ok()) {
    err << kProgram << " " << command.words << ": " << DescribeError(called) << "\n";
    return ExitCodeForStatus(called);
  }
  if (!invocation.print.empty()) {
    out << FormatPath(*response, invocation.print) << "\n";
  } else if (invocation.output == OutputFormat::kJson) {
    if (absl::Status rendered = RenderJson(*response, out); !rendered.ok()) {
      err << kProgram << ": " << rendered.message() << "\n";
      return kExitCheckFailed;
    }
  } else {
    RenderTable(*response, TableOptions{command.columns, command.raw_field}, out);
  }
  if (command.check != nullptr) {
    if (absl::Status checked = command.check(context, extras, *request, *response); !checked.ok()) {
      err << kProgram << " " << command.words << ": " << DescribeError(checked) << "\n";
      return checked.code() == absl::StatusCode::kFailedPrecondition
                 ? kExitCheckFailed
                 : (checked.code() == absl::StatusCode::kInvalidArgument
                        ? kExitUsage
                        : ExitCodeForStatus(checked));
    }
  }
  return kExitOk;
}

std::string Suggestions(const std::vector<std::string>& words) {
  std::vector<std::string> matches;
  for (const Command& command : AllCommands()) {
    if (!words.empty() && absl::StartsWith(command.words, words.front())) {
      matches.push_back(command.words);
    }
  }
  if (matches.empty()) return "see qunzuctl --help";
  return absl::StrCat("commands: ", absl::StrJoin(matches, ", "));
}

}  // namespace

absl::StatusOr<Invocation> ParseInvocation(const std::vector<std::string>& args,
                                           const EnvLookup& env) {
  Invocation invocation;
  std::vector<std::string> global_args = {kProgram};
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (invocation.command.empty() && (arg == "--help" || arg == "-h")) {
      invocation.help = true;
      continue;
    }
    if (!absl::StartsWith(arg, "--")) {
      invocation.command.push_back(arg);
      continue;
    }
    std::string name =
        arg.substr(2, arg.find('=') == std::string::npos ? std::string::npos : arg.find('=') - 2);
    if (!GlobalNames().count(name)) {
      invocation.command.push_back(arg);
      continue;
    }
    global_args.push_back(arg);
    if (arg.find('=') == std::string::npos) {
      if (i + 1 >= args.size()) return InvalidField(arg, absl::StrCat(arg, " needs a value"));
      global_args.push_back(args[++i]);
    }
  }
  std::vector<const char*> argv;
  argv.reserve(global_args.size());
  for (const std::string& arg : global_args) argv.push_back(arg.c_str());
  FlagSet flags(kProgram, "");
  GlobalValues values;
  RegisterGlobals(flags, &values);
  absl::StatusOr<ParseOutcome> parsed =
      flags.Parse(static_cast<int>(argv.size()), argv.data(), env);
  if (!parsed.ok()) return parsed.status();
  // The command line alone, so that --target given there beats a
  // per-service target from the environment.
  FlagSet command_line(kProgram, "");
  GlobalValues given;
  RegisterGlobals(command_line, &given);
  if (!command_line.Parse(static_cast<int>(argv.size()), argv.data(), NoEnv()).ok()) {
    return absl::InternalError("global flags parse differently without the environment");
  }
  for (const ServicePort& service : kDefaultPorts) {
    std::string target = given.service_targets[service.name];
    if (target.empty()) target = given.target;
    if (target.empty()) target = values.service_targets[service.name];
    if (target.empty()) target = values.target;
    if (target.empty()) target = absl::StrCat("127.0.0.1:", service.port);
    invocation.connection.targets[service.name] = target;
  }
  ASSIGN_OR_RETURN(invocation.connection.token, ResolveToken(values));
  invocation.connection.deadline = values.deadline;
  invocation.output = values.output == "json" ? OutputFormat::kJson : OutputFormat::kTable;
  invocation.print = values.print;
  return invocation;
}

int Main(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
         const EnvLookup& env) {
  absl::StatusOr<Invocation> invocation = ParseInvocation(args, env);
  if (!invocation.ok()) return UsageError(err, "", invocation.status());
  const std::vector<std::string>& words = invocation->command;
  if (invocation->help || words.empty()) {
    (words.empty() && !invocation->help ? err : out) << Usage();
    return invocation->help ? kExitOk : kExitUsage;
  }
  if (words.front() == "health") {
    return RunHealth(*invocation, {words.begin() + 1, words.end()}, out, err);
  }
  if (words.size() >= 2 && words[0] == "compliance" && words[1] == "report") {
    GrpcCaller caller(invocation->connection);
    return RunComplianceReport(caller, {words.begin() + 2, words.end()}, invocation->output, out,
                               err);
  }
  size_t consumed = 0;
  const Command* command = FindCommand(words, &consumed);
  const bool help = std::find(words.begin(), words.end(), "--help") != words.end() ||
                    std::find(words.begin(), words.end(), "-h") != words.end();
  if (command == nullptr && help) {
    out << Suggestions(words) << "\n";
    return kExitOk;
  }
  if (command == nullptr) {
    err << kProgram << ": unknown command \"" << absl::StrJoin(words, " ") << "\"; "
        << Suggestions(words) << "\n";
    return kExitUsage;
  }
  std::vector<std::string> rest(words.begin() + static_cast<std::ptrdiff_t>(consumed), words.end());
  for (const std::string& arg : rest) {
    if (arg == "--help" || arg == "-h") {
      out << CommandHelp(*command);
      return kExitOk;
    }
  }
  return RunCommand(*invocation, *command, rest, out, err);
}

}  // namespace qunzu::ctl
