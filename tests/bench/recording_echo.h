// For the load generator's tests: testing.v1.TestService on a free port,
// remembering every request text and bearer token it was sent; StaffEcho
// always fails (PERMISSION_DENIED), ServiceEcho hangs until released.
#ifndef QUNZU_TESTS_BENCH_RECORDING_ECHO_H_
#define QUNZU_TESTS_BENCH_RECORDING_ECHO_H_

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include <memory>
#include <set>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "qunzu/testing/v1/testing.grpc.pb.h"

namespace qunzu::bench {

class RecordingEcho final : public testing::v1::TestService::Service {
 public:
  grpc::Status PlatformEcho(grpc::ServerContext* context, const testing::v1::EchoRequest* request,
                            testing::v1::EchoResponse* response) override {
    const auto token = context->client_metadata().find("authorization");
    absl::MutexLock lock(&mu_);
    texts_.insert(request->text());
    codes_.insert(request->fail_code());
    tokens_.insert(token == context->client_metadata().end()
                       ? std::string()
                       : std::string(token->second.data(), token->second.size()));
    response->set_text(request->text());
    return grpc::Status::OK;
  }
  grpc::Status StaffEcho(grpc::ServerContext*, const testing::v1::EchoRequest*,
                         testing::v1::EchoResponse*) override {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "no");
  }
  // Answers only once Release() is called (or after a minute): a server
  // that hangs.
  grpc::Status ServiceEcho(grpc::ServerContext*, const testing::v1::EchoRequest*,
                           testing::v1::EchoResponse*) override {
    released_.WaitForNotificationWithTimeout(absl::Minutes(1));
    return grpc::Status::OK;
  }
  void Release() {
    if (!released_.HasBeenNotified()) released_.Notify();
  }
  // Every fail_code seen (this echo never fails: the field only carries a
  // number).
  std::set<int32_t> codes() {
    absl::MutexLock lock(&mu_);
    return codes_;
  }
  std::set<std::string> texts() {
    absl::MutexLock lock(&mu_);
    return texts_;
  }
  // Every authorization value seen; "" for a call without one.
  std::set<std::string> tokens() {
    absl::MutexLock lock(&mu_);
    return tokens_;
  }

 private:
  absl::Notification released_;
  absl::Mutex mu_;
  std::set<std::string> texts_ ABSL_GUARDED_BY(mu_);
  std::set<int32_t> codes_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> tokens_ ABSL_GUARDED_BY(mu_);
};

// A fixture serving a RecordingEcho on 127.0.0.1:port_.
class RecordingEchoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&echo_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
  }
  void TearDown() override {
    echo_.Release();
    server_->Shutdown();
  }

  RecordingEcho echo_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace qunzu::bench

#endif  // QUNZU_TESTS_BENCH_RECORDING_ECHO_H_
