#include "common/config.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/message.h>
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"

namespace qunzu {

struct FlagSet::Flag {
  FlagInfo info;
  std::string type;          // "INT", "STRING", ... for Usage()
  std::string default_text;  // parsed by set() when nothing else is given
  std::string constraint;    // "1..65535", "one of a|b"; may be empty
  std::function<absl::Status(absl::string_view)> set;
  bool is_bool = false;
};

namespace {

// A value's problem, phrased to follow `"<value>" from <origin>`.
absl::Status Problem(absl::string_view text) { return absl::InvalidArgumentError(text); }

std::string Quote(absl::string_view value) {
  return absl::StrCat("\"", absl::CHexEscape(value), "\"");
}

absl::Status SetInt64(absl::string_view text, int64_t min, int64_t max, int64_t* target) {
  int64_t value = 0;
  if (text.empty() || absl::StripAsciiWhitespace(text) != text || !absl::SimpleAtoi(text, &value)) {
    return Problem("is not a 64-bit decimal integer");
  }
  if (value < min || value > max) return Problem(absl::StrCat("is not in ", min, "..", max));
  *target = value;
  return absl::OkStatus();
}

absl::Status SetDuration(absl::string_view text, absl::Duration min, absl::Duration max,
                         absl::Duration* target) {
  absl::Duration value;
  if (!absl::ParseDuration(std::string(text.data(), text.size()), &value)) {
    return Problem("is not a duration such as 250ms, 30s or 1h30m");
  }
  if (value < min || value > max) {
    return Problem(
        absl::StrCat("is not in ", absl::FormatDuration(min), "..", absl::FormatDuration(max)));
  }
  *target = value;
  return absl::OkStatus();
}

absl::Status SetBool(absl::string_view text, bool* target) {
  if (!absl::SimpleAtob(text, target)) return Problem("is not a boolean (true/false, yes/no, 1/0)");
  return absl::OkStatus();
}

class FileErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  explicit FileErrorCollector(std::string path) : path_(std::move(path)) {}
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    errors_.push_back(absl::StrCat(path_, ":", line + 1, ":", column + 1, ": ", message));
  }
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  std::string path_;
  std::vector<std::string> errors_;
};

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  auto unreadable = [&path](int error) {
    return MakeError(
        error == ENOENT ? absl::StatusCode::kNotFound : absl::StatusCode::kFailedPrecondition,
        "CONFIG_FILE_UNREADABLE", absl::StrCat("cannot read ", path, ": ", std::strerror(error)),
        {{"path", path}});
  };
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return unreadable(errno);
  std::string contents;
  char buffer[8192];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof(buffer), file)) > 0) contents.append(buffer, n);
  const int error = std::ferror(file) ? errno : 0;
  std::fclose(file);
  if (error != 0) return unreadable(error);
  return contents;
}

// --help anywhere wins over any mistake elsewhere on the command line.
bool WantsHelp(int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    if (absl::string_view(argv[i]) == "--help" || absl::string_view(argv[i]) == "-h") return true;
  }
  return false;
}

}  // namespace

EnvLookup ProcessEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

FlagSet::FlagSet(std::string program, std::string summary)
    : program_(std::move(program)), summary_(std::move(summary)) {}

FlagSet::~FlagSet() = default;

void FlagSet::Add(FlagInfo info, std::string type, std::string default_text, std::string constraint,
                  std::function<absl::Status(absl::string_view)> set) {
  if (registration_error_.ok() && (Find(info.name) != nullptr || info.name.empty() ||
                                   info.name == "help" || absl::StartsWith(info.name, "-"))) {
    registration_error_ = InvalidField("--" + info.name, "registered twice or not a valid name");
  }
  if (registration_error_.ok()) {
    absl::Status problem = set(default_text);
    if (!problem.ok()) {
      registration_error_ = InvalidField(
          "--" + info.name, absl::StrCat("default ", Quote(default_text), " ", problem.message()));
    }
  }
  flags_.push_back(Flag{std::move(info), std::move(type), std::move(default_text),
                        std::move(constraint), std::move(set)});
}

void FlagSet::AddString(FlagInfo info, std::string* target, std::string default_value) {
  Add(std::move(info), "STRING", std::move(default_value), "", [target](absl::string_view text) {
    *target = std::string(text.data(), text.size());
    return absl::OkStatus();
  });
}

void FlagSet::AddInt64(FlagInfo info, int64_t* target, int64_t default_value, int64_t min,
                       int64_t max) {
  Add(std::move(info), "INT", std::to_string(default_value), absl::StrCat(min, "..", max),
      [target, min, max](absl::string_view text) { return SetInt64(text, min, max, target); });
}

void FlagSet::AddBool(FlagInfo info, bool* target, bool default_value) {
  Add(std::move(info), "BOOL", default_value ? "true" : "false", "",
      [target](absl::string_view text) { return SetBool(text, target); });
  flags_.back().is_bool = true;
}

void FlagSet::AddDuration(FlagInfo info, absl::Duration* target, absl::Duration default_value,
                          absl::Duration min, absl::Duration max) {
  Add(std::move(info), "DURATION", absl::FormatDuration(default_value),
      absl::StrCat(absl::FormatDuration(min), "..", absl::FormatDuration(max)),
      [target, min, max](absl::string_view text) { return SetDuration(text, min, max, target); });
}

void FlagSet::AddChoice(FlagInfo info, std::string* target, std::string default_value,
                        std::vector<std::string> allowed) {
  std::string joined = absl::StrJoin(allowed, "|");
  Add(std::move(info), "CHOICE", std::move(default_value), "one of " + joined,
      [target, allowed = std::move(allowed), joined](absl::string_view text) {
        if (std::find(allowed.begin(), allowed.end(), text) == allowed.end()) {
          return Problem("is not one of " + joined);
        }
        *target = std::string(text.data(), text.size());
        return absl::OkStatus();
      });
}

const FlagSet::Flag* FlagSet::Find(absl::string_view name) const {
  for (const Flag& flag : flags_) {
    if (flag.info.name == name) return &flag;
  }
  return nullptr;
}

absl::StatusOr<std::pair<const FlagSet::Flag*, std::string>> FlagSet::ReadFlag(
    int argc, const char* const* argv, int* i) const {
  const std::string arg = argv[*i];
  if (!absl::StartsWith(arg, "--") || arg.size() == 2) {
    return InvalidField(arg, "unexpected argument; flags look like --name=value (see --help)");
  }
  const size_t equals = arg.find('=');
  std::string name = arg.substr(2, equals == std::string::npos ? equals : equals - 2);
  std::optional<std::string> value;
  if (equals != std::string::npos) value = arg.substr(equals + 1);
  const Flag* flag = Find(name);
  if (flag == nullptr && !value && absl::StartsWith(name, "no-")) {
    flag = Find(name.substr(3));
    if (flag != nullptr && !flag->is_bool) flag = nullptr;
    if (flag != nullptr) value = "false";
  }
  if (flag == nullptr) return InvalidField("--" + name, "unknown flag (see --help)");
  if (!value && flag->is_bool) value = "true";
  if (!value && *i + 1 < argc && !absl::StartsWith(argv[*i + 1], "--")) value = argv[++*i];
  if (!value) return InvalidField("--" + flag->info.name, "missing value");
  return std::make_pair(flag, *std::move(value));
}

absl::Status FlagSet::ScanArgs(int argc, const char* const* argv,
                               std::map<std::string, std::string>* given) const {
  for (int i = 1; i < argc; ++i) {
    ASSIGN_OR_RETURN(auto flag_and_value, ReadFlag(argc, argv, &i));
    const std::string& name = flag_and_value.first->info.name;
    if (!given->emplace(name, std::move(flag_and_value.second)).second) {
      return InvalidField("--" + name, "given more than once");
    }
  }
  return absl::OkStatus();
}

absl::Status FlagSet::Apply(const Flag& flag, const std::map<std::string, std::string>& given,
                            const EnvLookup& env) const {
  std::string value = flag.default_text;
  std::string origin = "the default";
  if (auto it = given.find(flag.info.name); it != given.end()) {
    value = it->second;
    origin = "the command line";
  } else if (!flag.info.env.empty()) {
    std::optional<std::string> from_env = env(flag.info.env);
    if (from_env && !from_env->empty()) {
      value = *std::move(from_env);
      origin = "environment variable " + flag.info.env;
    }
  }
  absl::Status problem = flag.set(value);
  if (problem.ok()) return problem;
  return InvalidField("--" + flag.info.name,
                      absl::StrCat(Quote(value), " from ", origin, " ", problem.message()));
}

absl::StatusOr<ParseOutcome> FlagSet::Parse(int argc, const char* const* argv,
                                            const EnvLookup& env) {
  RETURN_IF_ERROR(registration_error_);
  if (WantsHelp(argc, argv)) return ParseOutcome::kHelp;
  std::map<std::string, std::string> given;
  RETURN_IF_ERROR(ScanArgs(argc, argv, &given));
  for (const Flag& flag : flags_) RETURN_IF_ERROR(Apply(flag, given, env));
  return ParseOutcome::kRun;
}

std::string FlagSet::Usage() const {
  std::string out = absl::StrCat("Usage: ", program_, " [flags]\n", summary_, "\n\nFlags:\n");
  for (const Flag& flag : flags_) {
    absl::StrAppend(&out, "  --", flag.info.name, "=", flag.type, "  (default ",
                    Quote(flag.default_text));
    if (!flag.constraint.empty()) absl::StrAppend(&out, "; ", flag.constraint);
    if (!flag.info.env.empty()) absl::StrAppend(&out, "; env ", flag.info.env);
    absl::StrAppend(&out, ")\n      ", flag.info.help, "\n");
  }
  absl::StrAppend(&out, "  --help\n      Print this help and exit.\n");
  return out;
}

void ParseFlagsOrExit(FlagSet& flags, int argc, const char* const* argv) {
  absl::StatusOr<ParseOutcome> outcome = flags.Parse(argc, argv);
  if (!outcome.ok()) {
    std::cerr << (argc > 0 ? argv[0] : "qunzu") << ": " << outcome.status().message() << "\n";
    std::exit(2);
  }
  if (*outcome == ParseOutcome::kHelp) {
    std::cout << flags.Usage();
    std::exit(0);
  }
}

absl::Status LoadTextProtoFile(const std::string& path, google::protobuf::Message* out) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  FileErrorCollector collector(path);
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&collector);
  parser.AllowUnknownField(false);
  if (parser.ParseFromString(text, out)) return absl::OkStatus();
  std::string message = absl::StrJoin(collector.errors(), "; ");
  if (message.empty()) message = path + ": not a valid " + out->GetTypeName();
  return MakeError(absl::StatusCode::kInvalidArgument, "CONFIG_FILE_INVALID", message,
                   {{"path", path}});
}

}  // namespace qunzu
