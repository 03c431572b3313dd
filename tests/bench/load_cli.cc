#include "tests/bench/load_cli.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/text_format.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <algorithm>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <memory>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/status.h"
#include "qunzu/audit/v1/audit.pb.h"
#include "qunzu/credit/v1/credit.pb.h"
#include "qunzu/groups/v1/groups.pb.h"
#include "qunzu/identity/v1/identity.pb.h"
#include "qunzu/moderation/v1/moderation.pb.h"
#include "qunzu/testing/v1/testing.pb.h"
#include "tests/bench/rpc_load.h"

namespace qunzu::bench {
namespace {

namespace pb = google::protobuf;

absl::Status Bad(absl::string_view flag, absl::string_view problem) {
  return InvalidField(flag, problem);
}

// Every service this binary can drive. Naming one message of each file
// also keeps the file's descriptors linked in from the static libraries.
const pb::MethodDescriptor* FindMethod(absl::string_view method) {
  const std::vector<const pb::FileDescriptor*> files = {
      identity::v1::Account::descriptor()->file(),
      groups::v1::Group::descriptor()->file(),
      credit::v1::Entitlements::descriptor()->file(),
      moderation::v1::TextSpan::descriptor()->file(),
      audit::v1::Subject::descriptor()->file(),
      testing::v1::EchoRequest::descriptor()->file()};
  // "/package.Service/Method"
  const std::vector<std::string> parts = absl::StrSplit(method, '/');
  if (parts.size() != 3 || !parts[0].empty()) return nullptr;
  for (const pb::FileDescriptor* file : files) {
    for (int s = 0; s < file->service_count(); ++s) {
      if (file->service(s)->full_name() == parts[1]) {
        return file->service(s)->FindMethodByName(parts[2]);
      }
    }
  }
  return nullptr;
}

struct Flags {
  std::string target;
  std::string token;
  std::string method;
  std::string request;
  std::vector<std::string> vary;
  std::vector<std::string> cycle;
  std::vector<std::string> lines;
  double rate = 0;
  int in_flight = 8;
  absl::Duration duration = absl::Seconds(5);
};

absl::StatusOr<Flags> ParseFlags(const std::vector<std::string>& args) {
  Flags flags;
  for (const std::string& arg : args) {
    const std::vector<std::string> kv = absl::StrSplit(arg, absl::MaxSplits('=', 1));
    if (kv.size() != 2 || !absl::StartsWith(kv[0], "--")) {
      return Bad("arguments", absl::StrCat("expected --flag=value, got \"", arg, "\""));
    }
    const std::string& name = kv[0];
    const std::string& value = kv[1];
    if (name == "--target") {
      flags.target = value;
    } else if (name == "--token") {
      flags.token = value;
    } else if (name == "--method") {
      flags.method = value;
    } else if (name == "--request") {
      flags.request = value;
    } else if (name == "--vary") {
      flags.vary.push_back(value);
    } else if (name == "--cycle") {
      flags.cycle.push_back(value);
    } else if (name == "--lines") {
      flags.lines.push_back(value);
    } else if (name == "--rate") {
      if (!absl::SimpleAtod(value, &flags.rate) || !(flags.rate > 0)) {
        return Bad("rate", "must be a positive number of calls per second");
      }
    } else if (name == "--in-flight") {
      if (!absl::SimpleAtoi(value, &flags.in_flight) || flags.in_flight < 1 ||
          flags.in_flight > 10000) {
        return Bad("in-flight", "must be 1..10000");
      }
    } else if (name == "--duration") {
      if (!absl::ParseDuration(value, &flags.duration) || flags.duration <= absl::ZeroDuration()) {
        return Bad("duration", "must be a positive duration such as 5s or 500ms");
      }
    } else {
      return Bad("arguments", absl::StrCat("unknown flag ", name));
    }
  }
  if (flags.target.empty()) return Bad("target", "is required (host:port)");
  if (flags.method.empty()) return Bad("method", "is required (/package.Service/Method)");
  return flags;
}

// --cycle=FIELD:FIRST:COUNT: an integer field set to FIRST + n % COUNT.
struct Cycle {
  const pb::FieldDescriptor* field = nullptr;
  uint64_t first = 0;
  uint64_t count = 1;
};

// --lines=FIELD:PATH: a string field set to line n % lines of PATH.
struct Lines {
  const pb::FieldDescriptor* field = nullptr;
  std::vector<std::string> lines;
};

// The singular field `name` of `type` of one of the C++ types `kinds`
// (named `what` in the error), or INVALID_ARGUMENT naming `flag`.
absl::StatusOr<const pb::FieldDescriptor*> ScalarField(
    const pb::Descriptor& type, absl::string_view name, absl::string_view flag,
    std::initializer_list<pb::FieldDescriptor::CppType> kinds, absl::string_view what) {
  const pb::FieldDescriptor* field = type.FindFieldByName(std::string(name));
  if (field == nullptr || field->is_repeated() ||
      std::find(kinds.begin(), kinds.end(), field->cpp_type()) == kinds.end()) {
    return Bad(flag, absl::StrCat(name, " is not ", what, " of ", type.full_name()));
  }
  return field;
}

absl::StatusOr<Cycle> ParseCycle(const pb::Descriptor& type, absl::string_view value) {
  const std::vector<std::string> parts = absl::StrSplit(value, ':');
  Cycle cycle;
  if (parts.size() != 3 || !absl::SimpleAtoi(parts[1], &cycle.first) ||
      !absl::SimpleAtoi(parts[2], &cycle.count) || cycle.count == 0) {
    return Bad("cycle",
               absl::StrCat("expected FIELD:FIRST:COUNT (COUNT >= 1), got \"", value, "\""));
  }
  using FD = pb::FieldDescriptor;
  ASSIGN_OR_RETURN(cycle.field, ScalarField(type, parts[0], "cycle",
                                            {FD::CPPTYPE_INT32, FD::CPPTYPE_INT64,
                                             FD::CPPTYPE_UINT32, FD::CPPTYPE_UINT64},
                                            "an integer field"));
  uint64_t most = 0;
  switch (cycle.field->cpp_type()) {
    case FD::CPPTYPE_INT32:
      most = std::numeric_limits<int32_t>::max();
      break;
    case FD::CPPTYPE_UINT32:
      most = std::numeric_limits<uint32_t>::max();
      break;
    case FD::CPPTYPE_INT64:
      most = std::numeric_limits<int64_t>::max();
      break;
    default:
      most = std::numeric_limits<uint64_t>::max();
  }
  if (cycle.first > most || cycle.count - 1 > most - cycle.first) {
    return Bad("cycle", absl::StrCat(value, " goes beyond what ", parts[0], " can hold"));
  }
  return cycle;
}

absl::StatusOr<Lines> ParseLines(const pb::Descriptor& type, absl::string_view value) {
  const std::vector<std::string> parts = absl::StrSplit(value, absl::MaxSplits(':', 1));
  if (parts.size() != 2 || parts[1].empty()) {
    return Bad("lines", absl::StrCat("expected FIELD:PATH, got \"", value, "\""));
  }
  Lines lines;
  ASSIGN_OR_RETURN(lines.field,
                   ScalarField(type, parts[0], "lines", {pb::FieldDescriptor::CPPTYPE_STRING},
                               "a string field"));
  std::ifstream in(parts[1]);
  if (!in) return Bad("lines", absl::StrCat("cannot read ", parts[1]));
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) lines.lines.push_back(std::move(line));
  }
  if (lines.lines.empty()) return Bad("lines", absl::StrCat(parts[1], " has no lines"));
  return lines;
}

void SetInteger(pb::Message& request, const pb::FieldDescriptor& field, uint64_t value) {
  const pb::Reflection& reflection = *request.GetReflection();
  switch (field.cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_INT32:
      reflection.SetInt32(&request, &field, static_cast<int32_t>(value));
      break;
    case pb::FieldDescriptor::CPPTYPE_UINT32:
      reflection.SetUInt32(&request, &field, static_cast<uint32_t>(value));
      break;
    case pb::FieldDescriptor::CPPTYPE_INT64:
      reflection.SetInt64(&request, &field, static_cast<int64_t>(value));
      break;
    default:
      reflection.SetUInt64(&request, &field, value);
  }
}

}  // namespace

bool WantsLoadCli(const std::vector<std::string>& args) {
  for (const std::string& arg : args) {
    if (absl::StartsWith(arg, "--target=")) return true;
  }
  return false;
}

absl::StatusOr<LoadResult> RunLoadCli(const std::vector<std::string>& args) {
  ASSIGN_OR_RETURN(Flags flags, ParseFlags(args));
  const pb::MethodDescriptor* method = FindMethod(flags.method);
  if (method == nullptr) {
    return Bad("method", absl::StrCat(flags.method, " is not a method of Qunzu's services"));
  }
  if (method->client_streaming() || method->server_streaming()) {
    return Bad("method", "only unary methods can be driven");
  }
  // The request as its input type (the generated class: these descriptors
  // are the generated pool's); --vary fields checked against it.
  const pb::Message* type =
      pb::MessageFactory::generated_factory()->GetPrototype(method->input_type());
  if (type == nullptr) return Bad("method", "its request type is not linked in");
  std::shared_ptr<pb::Message> prototype(type->New());
  if (!pb::TextFormat::ParseFromString(flags.request, prototype.get())) {
    return Bad("request", absl::StrCat("does not parse as ", method->input_type()->full_name()));
  }
  std::vector<const pb::FieldDescriptor*> vary;
  for (const std::string& name : flags.vary) {
    ASSIGN_OR_RETURN(const pb::FieldDescriptor* field,
                     ScalarField(*method->input_type(), name, "vary",
                                 {pb::FieldDescriptor::CPPTYPE_STRING}, "a string field"));
    vary.push_back(field);
  }
  std::vector<Cycle> cycles;
  for (const std::string& value : flags.cycle) {
    ASSIGN_OR_RETURN(Cycle cycle, ParseCycle(*method->input_type(), value));
    cycles.push_back(cycle);
  }
  auto lines = std::make_shared<std::vector<Lines>>();
  for (const std::string& value : flags.lines) {
    ASSIGN_OR_RETURN(Lines field_lines, ParseLines(*method->input_type(), value));
    lines->push_back(std::move(field_lines));
  }
  RpcTarget target;
  target.channel = grpc::CreateChannel(flags.target, grpc::InsecureChannelCredentials());
  target.method = absl::StrCat("/", method->service()->full_name(), "/", method->name());
  if (!flags.token.empty()) target.metadata = {{"authorization", "Bearer " + flags.token}};
  target.request = [prototype, vary, cycles, lines](uint64_t n) {
    if (vary.empty() && cycles.empty() && lines->empty()) return prototype->SerializeAsString();
    std::unique_ptr<pb::Message> request(prototype->New());
    request->CopyFrom(*prototype);
    const pb::Reflection* reflection = request->GetReflection();
    for (const Cycle& cycle : cycles) {
      SetInteger(*request, *cycle.field, cycle.first + n % cycle.count);
    }
    for (const Lines& field_lines : *lines) {
      reflection->SetString(request.get(), field_lines.field,
                            field_lines.lines[n % field_lines.lines.size()]);
    }
    for (const pb::FieldDescriptor* field : vary) {
      reflection->SetString(request.get(), field,
                            absl::StrCat(reflection->GetString(*request, field), "-", n));
    }
    return request->SerializeAsString();
  };
  const std::string name = std::string(method->name());
  if (flags.rate > 0) return DriveAtRate(name, target, flags.rate, flags.duration);
  return DriveSaturated(name, target, 1, flags.in_flight, flags.duration);
}

}  // namespace qunzu::bench
