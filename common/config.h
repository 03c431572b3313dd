// Start-up configuration: command-line flags with environment-variable
// fallbacks (precedence: flag > environment > default) and data files in
// protobuf text format. Every bad value is reported with its flag, the value
// and where it came from, so a misconfigured process can exit with a message
// an operator can act on.
#ifndef QUNZU_COMMON_CONFIG_H_
#define QUNZU_COMMON_CONFIG_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace google::protobuf {
class Message;
}

namespace qunzu {

// Returns the value of an environment variable, or std::nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

// Looks variables up in this process's environment.
EnvLookup ProcessEnv();

// The identity of one flag.
struct FlagInfo {
  // Without dashes: "grpc-port" is given as --grpc-port.
  std::string name;
  // The environment fallback, e.g. "QUNZU_GRPC_PORT"; empty for none. A
  // variable that is set but empty counts as unset.
  std::string env;
  // One sentence for Usage().
  std::string help;
};

// What the caller should do after a successful Parse.
enum class ParseOutcome {
  kRun,   // every target holds its value
  kHelp,  // --help or -h was given: print Usage() and exit 0
};

// A set of typed flags bound to caller-owned targets. Each Add* stores the
// default into the target at once; Parse overwrites every target with the
// value from the command line, else the environment, else the default.
// Registering a name twice, or a default outside its own constraints, makes
// Parse fail (a programming error reported like a configuration error).
class FlagSet {
 public:
  // program names the binary in Usage(); summary is one line about it.
  FlagSet(std::string program, std::string summary);
  ~FlagSet();
  FlagSet(const FlagSet&) = delete;
  FlagSet& operator=(const FlagSet&) = delete;

  // Any string, including empty.
  void AddString(FlagInfo info, std::string* target, std::string default_value);
  // A decimal integer in [min, max].
  void AddInt64(FlagInfo info, int64_t* target, int64_t default_value, int64_t min, int64_t max);
  // true/false, yes/no, 1/0 (any case). On the command line `--name` alone
  // means true and `--no-name` false; the separate-value form is not
  // accepted for booleans.
  void AddBool(FlagInfo info, bool* target, bool default_value);
  // absl::ParseDuration syntax ("250ms", "1h30m", "inf") in [min, max].
  void AddDuration(FlagInfo info, absl::Duration* target, absl::Duration default_value,
                   absl::Duration min = absl::ZeroDuration(),
                   absl::Duration max = absl::InfiniteDuration());
  // Exactly one of allowed (case-sensitive).
  void AddChoice(FlagInfo info, std::string* target, std::string default_value,
                 std::vector<std::string> allowed);

  // Reads `--name=value` and `--name value` from argv[1..argc). Errors are
  // INVALID_ARGUMENT (reason INVALID_FIELD, field "--name") for an unknown
  // flag, a missing value, a flag given twice, a stray argument, or a value
  // that does not parse or is out of range; the message names the flag, the
  // value and its origin (command line, environment variable, default).
  absl::StatusOr<ParseOutcome> Parse(int argc, const char* const* argv,
                                     const EnvLookup& env = ProcessEnv());

  // Multi-line help: every flag with its type, env variable, default,
  // constraint and help text, in registration order.
  std::string Usage() const;

 private:
  struct Flag;

  void Add(FlagInfo info, std::string type, std::string default_text, std::string constraint,
           std::function<absl::Status(absl::string_view)> set);
  absl::StatusOr<std::pair<const Flag*, std::string>> ReadFlag(int argc, const char* const* argv,
                                                               int* i) const;
  absl::Status ScanArgs(int argc, const char* const* argv,
                        std::map<std::string, std::string>* given) const;
  absl::Status Apply(const Flag& flag, const std::map<std::string, std::string>& given,
                     const EnvLookup& env) const;
  const Flag* Find(absl::string_view name) const;

  std::string program_;
  std::string summary_;
  std::vector<Flag> flags_;
  absl::Status registration_error_;
};

// For main(): parses, and on --help prints Usage() to stdout and exits 0; on
// an error prints "<program>: <message>" to stderr and exits 2.
void ParseFlagsOrExit(FlagSet& flags, int argc, const char* const* argv);

// Parses the text-format protobuf file at path into *out (cleared first).
// Unknown fields and syntax errors are INVALID_ARGUMENT (reason
// CONFIG_FILE_INVALID) listing each problem as "path:line:column: problem";
// a file that cannot be read is NOT_FOUND (missing) or FAILED_PRECONDITION
// (other errors), reason CONFIG_FILE_UNREADABLE, naming the path.
absl::Status LoadTextProtoFile(const std::string& path, google::protobuf::Message* out);

}  // namespace qunzu

#endif  // QUNZU_COMMON_CONFIG_H_
