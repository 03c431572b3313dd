#include "services/qunzuctl/request_builder.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/status.h"
#include "services/qunzuctl/field_setter.h"

namespace qunzu::ctl {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

std::string Underscored(absl::string_view flag) { return absl::StrReplaceAll(flag, {{"-", "_"}}); }

bool IsBoolField(const Message& request, const std::string& path) {
  absl::StatusOr<FieldPath> resolved = ResolveFieldPath(request, path);
  return resolved.ok() && resolved->leaf()->cpp_type() == FieldDescriptor::CPPTYPE_BOOL &&
         !resolved->leaf()->is_repeated();
}

// `--body-file PATH` for a string or bytes field `body`, when the request
// has no field of that name itself.
bool IsFileFlag(const Message& request, const std::string& path, std::string* field) {
  if (!absl::EndsWith(path, "_file") || ResolveFieldPath(request, path).ok()) return false;
  std::string base = path.substr(0, path.size() - 5);
  absl::StatusOr<FieldPath> resolved = ResolveFieldPath(request, base);
  if (!resolved.ok() || resolved->leaf()->cpp_type() != FieldDescriptor::CPPTYPE_STRING) {
    return false;
  }
  *field = base;
  return true;
}

std::string NewRequestId() {
  std::random_device device;
  std::mt19937_64 generator((static_cast<uint64_t>(device()) << 32) ^ device());
  return absl::StrCat("qunzuctl-", absl::Hex(generator(), absl::kZeroPad16));
}

std::string TypeName(const FieldDescriptor& field) {
  std::string type;
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_ENUM:
      type = absl::StrCat(field.enum_type()->name(), ": ",
                          absl::StrJoin(ShortEnumNames(*field.enum_type()), "|"));
      break;
    case FieldDescriptor::CPPTYPE_MESSAGE:
      type = field.message_type()->full_name() == "google.protobuf.Timestamp"  ? "time"
             : field.message_type()->full_name() == "google.protobuf.Duration" ? "duration"
                                                                               : "JSON";
      break;
    default:
      type = field.type_name();
  }
  return field.is_repeated() ? absl::StrCat("list of ", type) : type;
}

void DescribeFields(const Descriptor& type, const std::string& prefix, int depth,
                    std::string* out) {
  for (int i = 0; i < type.field_count(); ++i) {
    const FieldDescriptor& field = *type.field(i);
    std::string path = prefix + field.name();
    absl::StrAppend(out, "  ", FlagName(path), "  (", TypeName(field), ")\n");
    if (field.cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && !field.is_repeated() && depth < 2 &&
        !absl::StartsWith(field.message_type()->full_name(), "google.protobuf.")) {
      DescribeFields(*field.message_type(), path + ".", depth + 1, out);
    }
  }
}

absl::Status CheckRequired(const Command& command, const Message& request) {
  for (const std::string& required : command.required) {
    std::vector<std::string> options = absl::StrSplit(required, '|');
    bool set = false;
    for (const std::string& option : options) set = set || FieldIsSet(request, option);
    if (set) continue;
    std::vector<std::string> flags;
    flags.reserve(options.size());
    for (const std::string& option : options) flags.push_back(FlagName(option));
    bool positional = false;
    for (const std::string& field : command.positional) positional |= field == options.front();
    std::string problem = "required";
    if (flags.size() > 1) {
      absl::StrAppend(&problem, " (or ", absl::StrJoin(flags.begin() + 1, flags.end(), " or "),
                      ")");
    }
    if (positional) absl::StrAppend(&problem, "; it may also be given as an argument");
    return InvalidField(flags.front(), problem);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> ReadFileForFlag(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return MakeError(absl::StatusCode::kNotFound, "FILE_UNREADABLE",
                     absl::StrCat(flag, ": cannot read ", path), {{"field", flag}});
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

absl::Status BuildRequest(const Command& command, const std::vector<std::string>& args,
                          absl::Time now, Message* request, Extras* extras) {
  for (const auto& [field, value] : command.defaults) {
    RETURN_IF_ERROR(SetFieldFromText(request, field, value, now));
  }
  size_t next_positional = 0;
  bool only_positional = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (only_positional || !absl::StartsWith(arg, "--")) {
      if (next_positional >= command.positional.size()) {
        return InvalidField(arg, absl::StrCat("unexpected argument \"", arg, "\""));
      }
      RETURN_IF_ERROR(SetFieldFromText(request, command.positional[next_positional++], arg, now));
      continue;
    }
    if (arg == "--") {
      only_positional = true;
      continue;
    }
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    std::string path = Underscored(name);
    if (auto alias = command.aliases.find(name); alias != command.aliases.end()) {
      path = alias->second;
    } else if (auto common = CommonAliases().find(name);
               common != CommonAliases().end() && ResolveFieldPath(*request, common->second).ok()) {
      path = common->second;
    }
    const bool extra = std::find(command.extra_flags.begin(), command.extra_flags.end(), name) !=
                       command.extra_flags.end();
    if (!value && !extra && IsBoolField(*request, path)) value = "true";
    if (!value) {
      if (i + 1 >= args.size()) return InvalidField(arg, absl::StrCat(arg, " needs a value"));
      value = args[++i];
    }
    if (extra) {
      (*extras)[name] = *value;
      continue;
    }
    if (path == "request" || path == "request_file") {
      std::string json = *value;
      if (path == "request_file") {
        ASSIGN_OR_RETURN(json, ReadFileForFlag(arg, *value));
      }
      google::protobuf::util::JsonParseOptions options;
      auto parsed = google::protobuf::util::JsonStringToMessage(json, request, options);
      if (!parsed.ok()) return InvalidField("--request", std::string(parsed.message()));
      continue;
    }
    std::string file_field;
    if (IsFileFlag(*request, path, &file_field)) {
      ASSIGN_OR_RETURN(std::string content, ReadFileForFlag(arg, *value));
      RETURN_IF_ERROR(SetFieldFromText(request, file_field, content, now));
      continue;
    }
    RETURN_IF_ERROR(SetFieldFromText(request, path, *value, now));
  }
  RETURN_IF_ERROR(CheckRequired(command, *request));
  const FieldDescriptor* request_id = request->GetDescriptor()->FindFieldByName("request_id");
  if (request_id != nullptr && request->GetReflection()->GetString(*request, request_id).empty()) {
    request->GetReflection()->SetString(request, request_id, NewRequestId());
  }
  return absl::OkStatus();
}

std::string CommandHelp(const Command& command) {
  const google::protobuf::MethodDescriptor* method = MethodOf(command);
  std::string out = absl::StrCat("qunzuctl ", command.words);
  for (const std::string& field : command.positional) absl::StrAppend(&out, " [", field, "]");
  absl::StrAppend(&out, " [flags]\n\n", command.summary, "\nCalls ", command.method, ".\n");
  if (!command.required.empty()) {
    std::vector<std::string> flags;
    for (const std::string& required : command.required) {
      std::vector<std::string> options = absl::StrSplit(required, '|');
      std::vector<std::string> names;
      names.reserve(options.size());
      for (const std::string& option : options) names.push_back(FlagName(option));
      flags.push_back(absl::StrJoin(names, " or "));
    }
    absl::StrAppend(&out, "Required: ", absl::StrJoin(flags, ", "), "\n");
  }
  for (const auto& [alias, field] : command.aliases) {
    absl::StrAppend(&out, "Alias: --", alias, " = ", FlagName(field), "\n");
  }
  for (const std::string& extra : command.extra_flags) {
    absl::StrAppend(&out, "Flag: --", extra, "\n");
  }
  if (method != nullptr) {
    absl::StrAppend(&out, "\nRequest fields (", method->input_type()->name(), "):\n");
    DescribeFields(*method->input_type(), "", 0, &out);
  }
  absl::StrAppend(&out,
                  "\nValues: enums by name without prefix (small, GROUP); times RFC 3339, now, "
                  "+24h, -7d; durations 90s, 1h30m, 7d; bytes in hex; messages as JSON; "
                  "--x-file PATH reads a text field from a file; --request JSON sets the whole "
                  "request.\n");
  return out;
}

}  // namespace qunzu::ctl
