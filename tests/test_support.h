// Helpers shared by Qunzu's C++ tests: where the test MariaDB and Redis are
// (started by `make test` through deploy/local/with-servers.sh) and unique
// names so tests running in parallel never share a schema or key space.
#ifndef QUNZU_TESTS_TEST_SUPPORT_H_
#define QUNZU_TESTS_TEST_SUPPORT_H_

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/server.h"
#include "prometheus/registry.h"
#include "qunzu/common/v1/auth_config.pb.h"

namespace qunzu::testing {

// QUNZU_MYSQL_DSN of the test MariaDB. Fails the calling test (fatally) when
// unset: integration tests run through `make test`, which sets it.
std::string MysqlDsnOrDie();

// QUNZU_REDIS_ADDR of the test Redis, same contract as MysqlDsnOrDie.
std::string RedisAddrOrDie();

// A name unique to this process and call, e.g. "t_outbox_4812_3", usable as
// a schema name or key prefix.
std::string UniqueName(const std::string& stem);

// One series' value in registry: a counter's or gauge's value, a
// histogram's count; -1 when absent.
double MetricValue(prometheus::Registry& registry, const std::string& name,
                   const std::map<std::string, std::string>& labels = {});
// The sum of the observations of histogram series `name` with exactly
// `labels`; -1 when there is none.
double HistogramSum(prometheus::Registry& registry, const std::string& name,
                    const std::map<std::string, std::string>& labels = {});

// Bearer tokens for testing.v1.TestService: "tok-platform" is chat-backend
// (platform), "tok-moderator" is mia (moderator).
common::v1::AuthConfig EchoCredentials();

// `service` (a testing.v1.TestService) on a GrpcServer on a free loopback
// port, with the interceptors, EchoCredentials() and `registry`.
absl::StatusOr<std::unique_ptr<GrpcServer>> StartEchoServer(grpc::Service* service,
                                                            prometheus::Registry* registry);

}  // namespace qunzu::testing

#endif  // QUNZU_TESTS_TEST_SUPPORT_H_
