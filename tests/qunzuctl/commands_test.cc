#include "services/qunzuctl/commands.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <gtest/gtest.h>

#include <memory>
#include <set>

#include "absl/strings/str_split.h"
#include "services/qunzuctl/field_setter.h"

namespace qunzu::ctl {
namespace {

std::unique_ptr<google::protobuf::Message> New(const google::protobuf::Descriptor* type) {
  return std::unique_ptr<google::protobuf::Message>(
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(type)->New());
}

// Every descriptor names a real RPC and only fields its request has, so a
// typo in the table fails here rather than in front of a user.
TEST(CommandsTest, EveryCommandMapsOntoItsRpc) {
  std::set<std::string> seen;
  for (const Command& command : AllCommands()) {
    SCOPED_TRACE(command.words);
    EXPECT_TRUE(seen.insert(command.words).second) << "duplicate command";
    const google::protobuf::MethodDescriptor* method = MethodOf(command);
    ASSERT_NE(method, nullptr) << command.method;
    auto request = New(method->input_type());
    for (const std::string& field : command.positional) {
      EXPECT_TRUE(ResolveFieldPath(*request, field).ok()) << field;
    }
    for (const std::string& required : command.required) {
      for (absl::string_view field : absl::StrSplit(required, '|')) {
        EXPECT_TRUE(ResolveFieldPath(*request, field).ok()) << field;
      }
    }
    for (const auto& [alias, field] : command.aliases) {
      EXPECT_TRUE(ResolveFieldPath(*request, field).ok()) << alias;
    }
    for (const auto& [field, value] : command.defaults) {
      EXPECT_TRUE(SetFieldFromText(request.get(), field, value, absl::Now()).ok()) << field;
    }
    if (!command.raw_field.empty()) {
      EXPECT_NE(method->output_type()->FindFieldByName(command.raw_field), nullptr);
    }
  }
}

TEST(CommandsTest, EveryStaffRpcHasACommand) {
  std::set<std::string> covered;
  for (const Command& command : AllCommands()) covered.insert(command.method);
  // What only our own services call (Append, RecordEvent) or only the
  // platform's delivery path uses has no command on purpose.
  const std::set<std::string> not_for_staff = {
      "qunzu.audit.v1.AuditService.Append",
      "qunzu.credit.v1.CreditService.RecordEvent",
      "qunzu.groups.v1.GroupService.ListJoinRequests",
      "qunzu.groups.v1.GroupService.DecideJoinRequest",
      "qunzu.groups.v1.GroupService.InviteMember",
      "qunzu.groups.v1.GroupService.LeaveGroup",
      "qunzu.groups.v1.GroupService.RemoveMember",
      "qunzu.groups.v1.GroupService.MuteMember",
      "qunzu.groups.v1.GroupService.SetMemberRole",
      "qunzu.groups.v1.GroupService.TransferOwnership",
      "qunzu.groups.v1.GroupService.UpdateGroupInfo",
      "qunzu.groups.v1.GroupService.DissolveGroup",
  };
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  for (const char* name : {"qunzu.identity.v1.IdentityService", "qunzu.groups.v1.GroupService",
                           "qunzu.credit.v1.CreditService", "qunzu.moderation.v1.ModerationService",
                           "qunzu.audit.v1.AuditService"}) {
    const google::protobuf::ServiceDescriptor* service = pool->FindServiceByName(name);
    ASSERT_NE(service, nullptr) << name;
    for (int i = 0; i < service->method_count(); ++i) {
      const std::string& method = service->method(i)->full_name();
      if (not_for_staff.count(method)) continue;
      EXPECT_TRUE(covered.count(method)) << method << " has no qunzuctl command";
    }
  }
}

TEST(CommandsTest, LongestMatchWins) {
  size_t consumed = 0;
  const Command* command = FindCommand({"accounts", "verification", "get", "5"}, &consumed);
  ASSERT_NE(command, nullptr);
  EXPECT_EQ(command->words, "accounts verification get");
  EXPECT_EQ(consumed, 3u);
  EXPECT_EQ(FindCommand({"accounts", "delete"}, &consumed), nullptr);
}

}  // namespace
}  // namespace qunzu::ctl
