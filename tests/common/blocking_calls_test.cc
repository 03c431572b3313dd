// BlockingCalls through a real gRPC server with the interceptors: a callback
// service whose bodies run on the pool's threads and answer the call.
#include "common/blocking_calls.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/handler.h"
#include "common/server.h"
#include "qunzu/common/v1/common.pb.h"
#include "qunzu/testing/v1/testing.grpc.pb.h"
#include "tests/test_support.h"

namespace qunzu {
namespace {

using ::qunzu::testing::v1::EchoRequest;
using ::qunzu::testing::v1::EchoResponse;
using ::qunzu::testing::v1::TestService;

std::string ThreadName() {
  char name[16] = {};
  pthread_getname_np(pthread_self(), name, sizeof(name));
  return name;
}

// PlatformEcho runs on the pool: text "hold" waits until Release(),
// fail_code < 0 throws outside Serve. StaffEcho runs inline.
class CallbackEcho final : public TestService::CallbackService {
 public:
  CallbackEcho(int threads, prometheus::Registry* registry)
      : blocking_(threads, registry, "test") {}

  grpc::ServerUnaryReactor* PlatformEcho(grpc::CallbackServerContext* context,
                                         const EchoRequest* request,
                                         EchoResponse* response) override {
    if (request->text() == "late") {
      absl::MutexLock lock(&mu_);
      late_deadline_ = context->deadline();
    }
    return blocking_.Serve(context, [this, context, request, response]() -> grpc::Status {
      if (request->fail_code() < 0) throw std::runtime_error("a bug outside Serve");
      {
        absl::MutexLock lock(&mu_);
        ++entered_;
        if (request->text() == "hold") mu_.Await(absl::Condition(&released_));
      }
      return Serve(context, [&](const CallInfo& call) -> absl::Status {
        response->set_text(request->text());
        response->set_principal(call.caller.principal);
        response->set_peer(ThreadName());
        return absl::OkStatus();
      });
    });
  }
  grpc::ServerUnaryReactor* StaffEcho(grpc::CallbackServerContext* context,
                                      const EchoRequest* request, EchoResponse* response) override {
    return ServeInline(context, [&](const CallInfo&) -> absl::Status {
      response->set_text(request->text());
      response->set_peer(ThreadName());
      return absl::OkStatus();
    });
  }

  // Waits until `n` bodies have entered.
  void AwaitEntered(int n) {
    absl::MutexLock lock(&mu_);
    auto reached = [this, n]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return entered_ >= n; };
    mu_.Await(absl::Condition(&reached));
  }
  int entered() {
    absl::MutexLock lock(&mu_);
    return entered_;
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    released_ = true;
  }
  const BlockingCalls& blocking() const { return blocking_; }
  // The server's deadline for the call with text "late", once it has come
  // in (nullopt if it has not within `timeout`).
  std::optional<std::chrono::system_clock::time_point> LateDeadline(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto arrived = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return late_deadline_.has_value(); };
    mu_.AwaitWithTimeout(absl::Condition(&arrived), timeout);
    return late_deadline_;
  }

 private:
  absl::Mutex mu_;
  std::optional<std::chrono::system_clock::time_point> late_deadline_ ABSL_GUARDED_BY(mu_);
  int entered_ ABSL_GUARDED_BY(mu_) = 0;
  bool released_ ABSL_GUARDED_BY(mu_) = false;
  // Last: stopped before what its bodies use.
  BlockingCalls blocking_;
};

class BlockingCallsTest : public ::testing::Test {
 protected:
  void Start(int threads) {
    service_ = std::make_unique<CallbackEcho>(threads, &registry_);
    auto server = testing::StartEchoServer(service_.get(), &registry_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    stub_ = TestService::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                                     grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    if (service_ != nullptr) service_->Release();
    if (server_ != nullptr) server_->Shutdown(absl::Seconds(5));
  }

  grpc::Status Call(bool platform, const std::string& text, EchoResponse* response,
                    int fail_code = 0, absl::Duration deadline = absl::Seconds(30)) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(deadline));
    context.AddMetadata("authorization",
                        std::string("Bearer ") + (platform ? "tok-platform" : "tok-moderator"));
    EchoRequest request;
    request.set_text(text);
    request.set_fail_code(fail_code);
    return platform ? stub_->PlatformEcho(&context, request, response)
                    : stub_->StaffEcho(&context, request, response);
  }

  // The pool's series (pool="test").
  double Metric(const std::string& name) {
    return testing::MetricValue(registry_, name, {{"pool", "test"}});
  }

  prometheus::Registry registry_;
  std::unique_ptr<CallbackEcho> service_;
  std::unique_ptr<GrpcServer> server_;
  std::unique_ptr<TestService::Stub> stub_;
};

TEST_F(BlockingCallsTest, ABodyRunsOnThePoolAndItsResultAnswersTheCall) {
  Start(2);
  EchoResponse response;
  grpc::Status status = Call(true, "hi", &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.text(), "hi");
  EXPECT_EQ(response.principal(), "chat-backend");
  EXPECT_EQ(response.peer(), "qunzu-blocking");
  // An inline body answers on gRPC's own thread.
  EchoResponse inline_response;
  status = Call(false, "hello", &inline_response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(inline_response.text(), "hello");
  EXPECT_NE(inline_response.peer(), "qunzu-blocking");
  // The pool thread counts its body done once the body (and the reply it
  // sends) has returned, which may be after the caller has the reply.
  EXPECT_TRUE(service_->blocking().AwaitIdle(absl::Seconds(30)));
  EXPECT_EQ(service_->blocking().pending(), 0);
}

TEST_F(BlockingCallsTest, AtMostItsThreadsRunAtOnceAndTheRestWaitTheirTurn) {
  Start(2);
  std::vector<std::thread> callers;
  callers.reserve(3);
  std::vector<grpc::Status> statuses(3);
  for (int i = 0; i < 3; ++i) {
    callers.emplace_back([&, i] {
      EchoResponse response;
      statuses[i] = Call(true, "hold", &response);
    });
  }
  service_->AwaitEntered(2);
  // Both threads hold a body; the third call is handed over and waits.
  ASSERT_TRUE(service_->blocking().AwaitPending(3, absl::Seconds(30)));
  EXPECT_EQ(service_->blocking().pending(), 3);
  EXPECT_EQ(service_->entered(), 2);
  // An operator sees the pool full and a call waiting.
  EXPECT_EQ(Metric("qunzu_blocking_calls_threads"), 2);
  EXPECT_EQ(Metric("qunzu_blocking_calls_pending"), 3);
  service_->Release();
  for (std::thread& caller : callers) caller.join();
  for (const grpc::Status& status : statuses) EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(service_->entered(), 3);
  ASSERT_TRUE(service_->blocking().AwaitIdle(absl::Seconds(30)));
  EXPECT_EQ(Metric("qunzu_blocking_calls_pending"), 0);
  EXPECT_EQ(Metric("qunzu_blocking_calls_abandoned_total"), 0);
}

TEST_F(BlockingCallsTest, ACallWhoseCallerGaveUpWhileItWaitedIsNotRun) {
  Start(1);
  std::thread holder([&] {
    EchoResponse response;
    EXPECT_TRUE(Call(true, "hold", &response).ok());
  });
  service_->AwaitEntered(1);
  // Queued behind the held body; its caller stops waiting after 300 ms.
  EchoResponse response;
  grpc::Status late = Call(true, "late", &response, 0, absl::Milliseconds(300));
  EXPECT_EQ(late.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  // The server counts the call's deadline from when it came in, a little
  // after the caller's; released before it (and before the caller's
  // cancellation reaches the server) the pool would rightly still run it.
  if (std::optional<std::chrono::system_clock::time_point> deadline =
          service_->LateDeadline(absl::Seconds(30))) {
    std::this_thread::sleep_until(*deadline + std::chrono::milliseconds(1));
  }
  service_->Release();
  holder.join();
  // The pool takes work in order: once this call is answered, the late one
  // has been dealt with — answered without its body running.
  ASSERT_TRUE(Call(true, "after", &response).ok());
  EXPECT_EQ(response.text(), "after");
  EXPECT_EQ(service_->entered(), 2);
  EXPECT_EQ(Metric("qunzu_blocking_calls_abandoned_total"), 1);
}

TEST_F(BlockingCallsTest, ABodyThatThrowsIsInternalWithAReasonAndThePoolGoesOn) {
  Start(1);
  EchoResponse response;
  grpc::Status status = Call(true, "x", &response, -1);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INTERNAL);
  common::v1::StatusDetails details;
  common::v1::ErrorInfo info;
  ASSERT_TRUE(details.ParseFromString(status.error_details()));
  ASSERT_GT(details.details_size(), 0);
  ASSERT_TRUE(details.details(0).UnpackTo(&info));
  EXPECT_EQ(info.reason(), "INTERNAL_ERROR");
  EXPECT_TRUE(Call(true, "again", &response).ok());
  EXPECT_EQ(response.text(), "again");
}

TEST(BlockingCalls, StoppingAnswersEveryCallHandedOver) {
  // Destroyed while bodies are queued behind a busy thread: each still runs.
  std::atomic<int> ran{0};
  {
    BlockingCalls calls(1);
    absl::Notification started;
    absl::Notification release;
    calls.Submit([&] {
      started.Notify();
      release.WaitForNotification();
      ++ran;
    });
    started.WaitForNotification();
    for (int i = 0; i < 5; ++i) calls.Submit([&] { ++ran; });
    EXPECT_EQ(calls.pending(), 6);
    release.Notify();
  }
  EXPECT_EQ(ran, 6);
}

}  // namespace
}  // namespace qunzu
