// The ScreenText client against a screening server this test starts: the
// verdict and rule come through, the service token is sent, and a server
// that is down or too slow fails closed (UNAVAILABLE).
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "absl/synchronization/notification.h"
#include "common/status.h"
#include "services/groups/groups_deps.h"

namespace qunzu::groups {
namespace {

class FakeModeration final : public moderation::v1::ModerationService::Service {
 public:
  grpc::Status ScreenText(grpc::ServerContext* context,
                          const moderation::v1::ScreenTextRequest* request,
                          moderation::v1::ScreenTextResponse* response) override {
    auto auth = context->client_metadata().find("authorization");
    if (auth == context->client_metadata().end() ||
        std::string(auth->second.data(), auth->second.size()) != "Bearer groups-token") {
      return {grpc::StatusCode::UNAUTHENTICATED, "no token"};
    }
    if (request->text() == "slow") release.WaitForNotificationWithTimeout(absl::Seconds(5));
    if (request->text().find("bad") != std::string::npos) {
      response->set_verdict(moderation::v1::SCREEN_VERDICT_BLOCK);
      response->add_reasons()->set_rule_id(42);
    } else {
      response->set_verdict(moderation::v1::SCREEN_VERDICT_ALLOW);
    }
    return grpc::Status::OK;
  }
  absl::Notification release;
};

TEST(GroupsScreenerTest, VerdictsThroughGrpcAndFailClosed) {
  FakeModeration fake;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&fake);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(port, 0);
  auto channel =
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials());
  GrpcTextScreener screener(channel, "groups-token", absl::Milliseconds(300));
  auto ok = screener.Screen(moderation::v1::TEXT_PURPOSE_GROUP_NAME, "hikers", 1, 0);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->verdict, moderation::v1::SCREEN_VERDICT_ALLOW);
  auto bad = screener.Screen(moderation::v1::TEXT_PURPOSE_GROUP_NAME, "bad words", 1, 0);
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->verdict, moderation::v1::SCREEN_VERDICT_BLOCK);
  EXPECT_EQ(bad->rule_id, 42u);
  auto slow = screener.Screen(moderation::v1::TEXT_PURPOSE_GROUP_NAME, "slow", 1, 0);
  EXPECT_EQ(slow.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorReason(slow.status()), "MODERATION_UNAVAILABLE");
  fake.release.Notify();
  GrpcTextScreener wrong_token(channel, "other", absl::Seconds(1));
  EXPECT_EQ(wrong_token.Screen(moderation::v1::TEXT_PURPOSE_GROUP_NAME, "x", 1, 0).status().code(),
            absl::StatusCode::kUnavailable);
  server->Shutdown();
  auto down = screener.Screen(moderation::v1::TEXT_PURPOSE_GROUP_NAME, "hikers", 1, 0);
  EXPECT_EQ(down.status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace qunzu::groups
