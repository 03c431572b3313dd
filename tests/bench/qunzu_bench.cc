// `make bench`: what Qunzu's shared plumbing costs, always as a ratio to a
// baseline measured in the same run on the same machine.
//
// rpc:    a unary echo through GrpcServer (metrics and auth interceptors,
//         CallerOf, status mapping) against the same echo on a bare gRPC server.
// outbox: a state change with its idempotency and audit outbox rows against
//         the bare change (outbox_bench.cc).
// audit:  durable audit appends against raw multi-row INSERTs (audit_bench.cc).
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/auth_interceptor.h"
#include "common/server.h"
#include "common/status.h"
#include "qunzu/testing/v1/testing.grpc.pb.h"
#include "tests/bench/load_cli.h"
#include "tests/bench/rpc_bench.h"
#include "tests/bench/rpc_load.h"
#include "tests/bench/scenarios.h"

namespace qunzu::bench {
namespace {

using testing::v1::EchoRequest;
using testing::v1::EchoResponse;
using testing::v1::TestService;

constexpr int kInFlight = 4;
const absl::Duration kDuration = absl::Seconds(5);

// The bare baseline: no caller lookup, no mapping.
class BareEcho final : public TestService::Service {
  grpc::Status PlatformEcho(grpc::ServerContext*, const EchoRequest* request,
                            EchoResponse* response) override {
    response->set_text(request->text());
    return grpc::Status::OK;
  }
};

}  // namespace

int RunRpcBench() {
  BareEcho bare;
  int bare_port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &bare_port);
  builder.RegisterService(&bare);
  ConfigureServerThreads(builder);
  std::unique_ptr<grpc::Server> bare_server = builder.BuildAndStart();

  common::v1::AuthConfig config;
  auto* credential = config.add_credentials();
  credential->set_principal("bench");
  credential->set_role(common::v1::ROLE_PLATFORM);
  credential->set_token_sha256(TokenDigest(kBenchToken));
  prometheus::Registry registry;
  GrpcServer::Options options;
  options.address = "127.0.0.1:0";
  options.authorizer = std::make_shared<const Authorizer>(
      *Authorizer::Create(config, {"qunzu.testing.v1.TestService"}));
  options.registry = &registry;
  std::unique_ptr<grpc::Service> ours = MakeQunzuEcho();
  auto server = GrpcServer::Start(options, {ours.get()}, {"qunzu.testing.v1.TestService"});
  if (!server.ok() || bare_server == nullptr) {
    std::fprintf(stderr, "cannot start the servers\n");
    return 1;
  }

  std::printf(
      "## rpc: unary echo, the async load generator with %d calls in flight, %s per run\n\n",
      kInFlight, absl::FormatDuration(kDuration).c_str());
  std::printf("%s", kRpcTableHeader);
  double bare_qps = 0, ours_qps = 0, bare_p99 = 0, ours_p99 = 0;
  for (int round = 0; round < 2; ++round) {
    LoadResult b =
        DriveSaturated("bare gRPC (baseline)", EchoTarget(bare_port), 1, kInFlight, kDuration);
    LoadResult q = DriveSaturated("GrpcServer: auth + metrics", EchoTarget((*server)->port()), 1,
                                  kInFlight, kDuration);
    std::printf("%s\n%s\n", FormatRpcRow(b).c_str(), FormatRpcRow(q).c_str());
    bare_qps += b.qps;
    ours_qps += q.qps;
    bare_p99 += b.p99_us;
    ours_p99 += q.p99_us;
  }
  std::printf("\nratio ours/baseline: QPS %.2f, p99 latency %.2f\n", ours_qps / bare_qps,
              ours_p99 / bare_p99);
  (*server)->Shutdown(absl::Seconds(1));
  bare_server->Shutdown();
  return 0;
}

}  // namespace qunzu::bench

// QUNZU_BENCH_ONLY=<name> runs one scenario; with --target=host:port the
// load generator drives one RPC of a running service instead (load_cli.h).
int main(int argc, char** argv) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (qunzu::bench::WantsLoadCli(args)) {
    absl::StatusOr<qunzu::bench::LoadResult> result = qunzu::bench::RunLoadCli(args);
    if (!result.ok()) {
      std::fprintf(stderr, "qunzu-bench: %s\n", std::string(result.status().message()).c_str());
      return 2;
    }
    std::printf("%s%s\n", qunzu::bench::kRpcTableHeader,
                qunzu::bench::FormatRpcRow(*result).c_str());
    return result->errors == 0 ? 0 : 1;
  }
  if (!args.empty()) {
    std::fprintf(stderr,
                 "usage: qunzu-bench (runs the scenarios; QUNZU_BENCH_ONLY=<name> runs one)\n"
                 "       qunzu-bench --target=host:port --method=/pkg.Service/Method "
                 "--request='<text proto>' [--token=T] [--vary=FIELD] "
                 "[--cycle=FIELD:FIRST:COUNT] [--lines=FIELD:PATH] [--rate=N | "
                 "--in-flight=N] [--duration=5s]\n");
    return 2;
  }
  const char* only_env = std::getenv("QUNZU_BENCH_ONLY");
  const std::string only = only_env != nullptr ? only_env : "";
  auto wanted = [&](const char* name) { return only.empty() || only == name; };
  int rpc = wanted("rpc") ? qunzu::bench::RunRpcBench() : 0;
  int outbox = wanted("outbox") ? qunzu::bench::RunOutboxBench() : 0;
  int audit = wanted("audit") ? qunzu::bench::RunAuditBench() : 0;
  int moderation = wanted("moderation") ? qunzu::bench::RunModerationBench() : 0;
  int groups = wanted("groups") ? qunzu::bench::RunGroupsBench() : 0;
  int screen = wanted("screen") ? qunzu::bench::RunScreenBench() : 0;
  int compile = wanted("rule-compile") ? qunzu::bench::RunRuleCompileBench() : 0;
  int activation = wanted("rule-activation") ? qunzu::bench::RunRuleActivationBench() : 0;
  for (int code : {rpc, outbox, audit, moderation, groups, screen, compile, activation}) {
    if (code != 0) return code;
  }
  return 0;
}
