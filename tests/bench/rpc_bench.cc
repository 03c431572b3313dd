#include "tests/bench/rpc_bench.h"

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "common/auth_interceptor.h"
#include "common/status.h"
#include "qunzu/testing/v1/testing.grpc.pb.h"

namespace qunzu::bench {
namespace {

double Percentile(std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t index = static_cast<size_t>(p * static_cast<double>(sorted.size() - 1));
  return sorted[index];
}

class QunzuEcho final : public testing::v1::TestService::Service {
  grpc::Status PlatformEcho(grpc::ServerContext* context, const testing::v1::EchoRequest* request,
                            testing::v1::EchoResponse* response) override {
    return ToGrpcStatus(EchoBody(context, *request, response));
  }
};

// The same body as a callback method, answered on gRPC's thread.
class QunzuCallbackEcho final : public testing::v1::TestService::CallbackService {
  grpc::ServerUnaryReactor* PlatformEcho(grpc::CallbackServerContext* context,
                                         const testing::v1::EchoRequest* request,
                                         testing::v1::EchoResponse* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(ToGrpcStatus(EchoBody(context, *request, response)));
    return reactor;
  }
};

}  // namespace

absl::Status EchoBody(const grpc::ServerContextBase* context,
                      const testing::v1::EchoRequest& request,
                      testing::v1::EchoResponse* response) {
  absl::StatusOr<Caller> caller = CallerOf(context);
  if (!caller.ok()) return caller.status();
  response->set_text(request.text());
  response->set_principal(caller->principal);
  return absl::OkStatus();
}

double CpuSeconds(int who) {
  rusage usage{};
  getrusage(who, &usage);
  auto seconds = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

LoadResult SummariseLoad(const std::string& name, std::vector<std::vector<double>>& latencies,
                         long errors, double elapsed_seconds, double cpu_seconds) {
  std::vector<double> all;
  for (auto& per_thread : latencies) all.insert(all.end(), per_thread.begin(), per_thread.end());
  std::sort(all.begin(), all.end());
  LoadResult result;
  result.name = name;
  result.calls = static_cast<long>(all.size());
  result.errors = errors;
  result.qps = static_cast<double>(all.size()) / elapsed_seconds;
  result.p50_us = Percentile(all, 0.50);
  result.p99_us = Percentile(all, 0.99);
  result.p999_us = Percentile(all, 0.999);
  result.client_cpu_ms_per_kcall =
      all.empty() ? 0 : cpu_seconds * 1e6 / static_cast<double>(all.size());
  return result;
}

std::unique_ptr<grpc::Service> MakeQunzuEcho() { return std::make_unique<QunzuEcho>(); }

std::unique_ptr<grpc::Service> MakeQunzuCallbackEcho() {
  return std::make_unique<QunzuCallbackEcho>();
}

LoadResult RunLoad(const std::string& name, int threads, absl::Duration duration,
                   const std::function<bool()>& call) {
  for (int i = 0; i < 200; ++i) call();  // warm-up: connections, caches

  std::atomic<bool> stop{false};
  std::atomic<long> errors{0};
  std::vector<std::vector<double>> latencies(threads);
  std::vector<std::thread> workers;
  workers.reserve(threads);
  const double cpu_before = CpuSeconds();
  const auto start = std::chrono::steady_clock::now();
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      latencies[t].reserve(1 << 20);
      while (!stop.load(std::memory_order_relaxed)) {
        auto begin = std::chrono::steady_clock::now();
        bool ok = call();
        latencies[t].push_back(
            std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - begin)
                .count());
        if (!ok) errors.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  std::this_thread::sleep_for(absl::ToChronoNanoseconds(duration));
  stop = true;
  for (auto& worker : workers) worker.join();
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return SummariseLoad(name, latencies, errors.load(), elapsed, CpuSeconds() - cpu_before);
}

std::string FormatRpcRow(const LoadResult& r) {
  return absl::StrFormat("| %s | %.0f | %.0f | %.0f | %.0f | %.2f | %.2f | %d |", r.name, r.qps,
                         r.p50_us, r.p99_us, r.p999_us, r.client_cpu_ms_per_kcall,
                         r.process_cpu_ms_per_kcall, r.errors);
}

std::string FormatRow(const LoadResult& r) {
  return absl::StrFormat("| %s | %.0f | %.0f | %.0f | %.0f | %.2f | %d |", r.name, r.qps, r.p50_us,
                         r.p99_us, r.p999_us, r.client_cpu_ms_per_kcall, r.errors);
}

}  // namespace qunzu::bench
