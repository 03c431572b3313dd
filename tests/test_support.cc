#include "tests/test_support.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/auth.h"

namespace qunzu::testing {
namespace {

std::string EnvOrDie(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') {
    ADD_FAILURE() << name
                  << " is not set: integration tests need the servers that `make test` starts";
    std::abort();
  }
  return value;
}

// The series `name` with exactly `labels`, and its family's type; null when
// there is none. Collect() returns copies: the series is kept in *families.
const prometheus::ClientMetric* FindSeries(std::vector<prometheus::MetricFamily>* families,
                                           const std::string& name,
                                           const std::map<std::string, std::string>& labels,
                                           prometheus::MetricType* type) {
  for (const auto& family : *families) {
    if (family.name != name) continue;
    for (const auto& metric : family.metric) {
      std::map<std::string, std::string> have;
      for (const auto& label : metric.label) have[label.name] = label.value;
      if (have != labels) continue;
      *type = family.type;
      return &metric;
    }
  }
  return nullptr;
}

}  // namespace

std::string MysqlDsnOrDie() { return EnvOrDie("QUNZU_MYSQL_DSN"); }

std::string RedisAddrOrDie() { return EnvOrDie("QUNZU_REDIS_ADDR"); }

std::string UniqueName(const std::string& stem) {
  static std::atomic<int> counter{0};
  static const unsigned salt = std::random_device{}() % 100000;
  return "t_" + stem + "_" + std::to_string(getpid()) + "_" + std::to_string(salt) + "_" +
         std::to_string(counter++);
}

double MetricValue(prometheus::Registry& registry, const std::string& name,
                   const std::map<std::string, std::string>& labels) {
  std::vector<prometheus::MetricFamily> families = registry.Collect();
  prometheus::MetricType type{};
  const prometheus::ClientMetric* metric = FindSeries(&families, name, labels, &type);
  if (metric == nullptr) return -1;
  switch (type) {
    case prometheus::MetricType::Counter:
      return metric->counter.value;
    case prometheus::MetricType::Gauge:
      return metric->gauge.value;
    case prometheus::MetricType::Histogram:
      return static_cast<double>(metric->histogram.sample_count);
    default:
      return -1;
  }
}

double HistogramSum(prometheus::Registry& registry, const std::string& name,
                    const std::map<std::string, std::string>& labels) {
  std::vector<prometheus::MetricFamily> families = registry.Collect();
  prometheus::MetricType type{};
  const prometheus::ClientMetric* metric = FindSeries(&families, name, labels, &type);
  if (metric == nullptr || type != prometheus::MetricType::Histogram) return -1;
  return metric->histogram.sample_sum;
}

common::v1::AuthConfig EchoCredentials() {
  common::v1::AuthConfig config;
  auto add = [&](const char* principal, common::v1::Role role, const char* token) {
    auto* c = config.add_credentials();
    c->set_principal(principal);
    c->set_role(role);
    c->set_token_sha256(TokenDigest(token));
  };
  add("chat-backend", common::v1::ROLE_PLATFORM, "tok-platform");
  add("mia", common::v1::ROLE_MODERATOR, "tok-moderator");
  return config;
}

absl::StatusOr<std::unique_ptr<GrpcServer>> StartEchoServer(grpc::Service* service,
                                                            prometheus::Registry* registry) {
  const std::vector<std::string> names = {"qunzu.testing.v1.TestService"};
  absl::StatusOr<Authorizer> authorizer = Authorizer::Create(EchoCredentials(), names);
  if (!authorizer.ok()) return authorizer.status();
  GrpcServer::Options options;
  options.address = "127.0.0.1:0";
  options.authorizer = std::make_shared<const Authorizer>(*std::move(authorizer));
  options.registry = registry;
  return GrpcServer::Start(options, {service}, names);
}

}  // namespace qunzu::testing
