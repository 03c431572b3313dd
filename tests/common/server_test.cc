// The shared server plumbing end to end in one process: a real gRPC server
// on a free port with the auth and metrics interceptors, called over a real
// channel.
#include "common/server.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <atomic>

#include "common/auth_interceptor.h"
#include "common/handler.h"
#include "common/status.h"
#include "qunzu/common/v1/common.pb.h"
#include "qunzu/testing/v1/testing.grpc.pb.h"
#include "tests/test_support.h"

namespace qunzu {
namespace {

using testing::v1::EchoRequest;
using testing::v1::EchoResponse;
using testing::v1::TestService;

class EchoService final : public TestService::Service {
 public:
  grpc::Status PlatformEcho(grpc::ServerContext* context, const EchoRequest* request,
                            EchoResponse* response) override {
    return Handle(context, *request, response);
  }
  grpc::Status StaffEcho(grpc::ServerContext* context, const EchoRequest* request,
                         EchoResponse* response) override {
    return Handle(context, *request, response);
  }
  grpc::Status UndeclaredEcho(grpc::ServerContext* context, const EchoRequest* request,
                              EchoResponse* response) override {
    return Handle(context, *request, response);
  }

  std::atomic<int> handled{0};

 private:
  grpc::Status Handle(grpc::ServerContext* context, const EchoRequest& request,
                      EchoResponse* response) {
    return Serve(context, [&](const CallInfo& call) -> absl::Status {
      ++handled;
      if (request.fail_code() < 0) throw std::runtime_error("a bug");
      if (request.fail_code() != 0) {
        return MakeError(static_cast<absl::StatusCode>(request.fail_code()), request.fail_reason(),
                         "asked to fail");
      }
      response->set_text(request.text());
      response->set_principal(call.caller.principal);
      response->set_role(RoleName(call.caller.role));
      response->set_peer(call.peer);
      return absl::OkStatus();
    });
  }
};

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = testing::StartEchoServer(&service_, &registry_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    stub_ = TestService::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                                     grpc::InsecureChannelCredentials()));
  }

  void TearDown() override { server_->Shutdown(absl::Seconds(1)); }

  grpc::Status Echo(const std::string& method, const std::string& token, EchoResponse* response,
                    int fail_code = 0) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    EchoRequest request;
    request.set_text("hi");
    request.set_fail_code(fail_code);
    request.set_fail_reason("GROUP_MEMBER_CAP_REACHED");
    if (method == "PlatformEcho") return stub_->PlatformEcho(&context, request, response);
    if (method == "StaffEcho") return stub_->StaffEcho(&context, request, response);
    if (method == "ServiceEcho") return stub_->ServiceEcho(&context, request, response);
    return stub_->UndeclaredEcho(&context, request, response);
  }

  std::string MetricsText() { return prometheus::TextSerializer().Serialize(registry_.Collect()); }

  prometheus::Registry registry_;
  EchoService service_;
  std::unique_ptr<GrpcServer> server_;
  std::unique_ptr<TestService::Stub> stub_;
};

std::string ReasonOf(const grpc::Status& status) {
  common::v1::StatusDetails details;
  common::v1::ErrorInfo info;
  if (!details.ParseFromString(status.error_details()) || details.details_size() == 0 ||
      !details.details(0).UnpackTo(&info)) {
    return "";
  }
  return info.reason();
}

TEST_F(ServerTest, AllowedCallerReachesHandlerWithIdentity) {
  EchoResponse response;
  grpc::Status status = Echo("PlatformEcho", "tok-platform", &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.text(), "hi");
  EXPECT_EQ(response.principal(), "chat-backend");
  EXPECT_EQ(response.role(), "platform");
  EXPECT_NE(response.peer().find("127.0.0.1"), std::string::npos) << response.peer();
}

TEST_F(ServerTest, AnExceptionInTheLogicIsInternalNotACrash) {
  EchoResponse response;
  grpc::Status status = Echo("PlatformEcho", "tok-platform", &response, -1);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(ReasonOf(status), "INTERNAL_ERROR");
  EXPECT_TRUE(Echo("PlatformEcho", "tok-platform", &response).ok());
}

TEST_F(ServerTest, MissingTokenIsUnauthenticatedAndHandlerNeverActs) {
  EchoResponse response;
  grpc::Status status = Echo("PlatformEcho", "", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(ReasonOf(status), "TOKEN_MISSING");
  EXPECT_EQ(Echo("PlatformEcho", "forged", &response).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(service_.handled.load(), 0);
}

TEST_F(ServerTest, WrongRoleIsPermissionDenied) {
  EchoResponse response;
  grpc::Status status = Echo("StaffEcho", "tok-platform", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(ReasonOf(status), "ROLE_NOT_ALLOWED");
  EXPECT_EQ(Echo("UndeclaredEcho", "tok-moderator", &response).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(service_.handled.load(), 0);
}

TEST_F(ServerTest, DenialWinsEvenOverAnUnimplementedHandler) {
  // ServiceEcho has no handler here: an allowed caller would get
  // UNIMPLEMENTED, a denied one must still get the denial.
  EchoResponse response;
  EXPECT_EQ(Echo("ServiceEcho", "", &response).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Echo("ServiceEcho", "tok-moderator", &response).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(ServerTest, HandlerErrorsKeepTheirCodeAndReason) {
  EchoResponse response;
  grpc::Status status = Echo("PlatformEcho", "tok-platform", &response,
                             static_cast<int>(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(ReasonOf(status), "GROUP_MEMBER_CAP_REACHED");
}

TEST_F(ServerTest, MetricsCountStartsOutcomesAndLatency) {
  EchoResponse response;
  ASSERT_TRUE(Echo("PlatformEcho", "tok-platform", &response).ok());
  ASSERT_FALSE(Echo("PlatformEcho", "", &response).ok());
  ASSERT_FALSE(Echo("StaffEcho", "tok-platform", &response).ok());
  const std::string text = MetricsText();
  const std::string platform =
      "grpc_method=\"PlatformEcho\",grpc_service=\"qunzu.testing.v1.TestService\"";
  EXPECT_NE(text.find("grpc_server_handled_total{grpc_code=\"OK\"," + platform +
                      ",grpc_type=\"unary\"} 1"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("grpc_server_handled_total{grpc_code=\"Unauthenticated\"," + platform +
                      ",grpc_type=\"unary\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("grpc_server_started_total{" + platform + ",grpc_type=\"unary\"} 2"),
            std::string::npos);
  EXPECT_NE(text.find("grpc_server_handling_seconds_count{" + platform + ",grpc_type=\"unary\"} 2"),
            std::string::npos);
  // Series exist before the first call, at zero.
  EXPECT_NE(text.find("grpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"UndeclaredEcho\""),
            std::string::npos);
}

TEST_F(ServerTest, SecondServerOnTheSamePortFails) {
  prometheus::Registry registry;
  GrpcServer::Options options;
  options.address = "127.0.0.1:" + std::to_string(server_->port());
  options.authorizer = std::make_shared<const Authorizer>(*Authorizer::Create({}, {}));
  options.registry = &registry;
  EchoService other;
  auto second = GrpcServer::Start(options, {&other}, {});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(ErrorReason(second.status()), "GRPC_BIND_FAILED");
}

TEST(MetricsServer, ServesOnAFreePortAndRefusesATakenOne) {
  auto first = MetricsServer::Start("127.0.0.1:0");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_GT((*first)->port(), 0);
  auto second = MetricsServer::Start("127.0.0.1:" + std::to_string((*first)->port()));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(ErrorReason(second.status()), "METRICS_BIND_FAILED");
}

TEST(CallerOf, FailsClosedWithoutTheInterceptor) {
  grpc::ServerContext context;
  auto caller = CallerOf(&context);
  EXPECT_EQ(caller.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(ErrorReason(caller.status()), "AUTH_NOT_INSTALLED");
}

}  // namespace
}  // namespace qunzu
