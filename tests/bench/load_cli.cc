#include "tests/bench/load_cli.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/text_format.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

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
    const pb::FieldDescriptor* field = method->input_type()->FindFieldByName(name);
    if (field == nullptr || field->is_repeated() ||
        field->cpp_type() != pb::FieldDescriptor::CPPTYPE_STRING) {
      return Bad("vary", absl::StrCat(name, " is not a string field of ",
                                      method->input_type()->full_name()));
    }
    vary.push_back(field);
  }
  RpcTarget target;
  target.channel = grpc::CreateChannel(flags.target, grpc::InsecureChannelCredentials());
  target.method = absl::StrCat("/", method->service()->full_name(), "/", method->name());
  if (!flags.token.empty()) target.metadata = {{"authorization", "Bearer " + flags.token}};
  target.request = [prototype, vary](uint64_t n) {
    if (vary.empty()) return prototype->SerializeAsString();
    std::unique_ptr<pb::Message> request(prototype->New());
    request->CopyFrom(*prototype);
    const pb::Reflection* reflection = request->GetReflection();
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
