// Helpers shared by Qunzu's C++ tests: where the test MariaDB and Redis are
// (started by `make test` through deploy/local/with-servers.sh) and unique
// names so tests running in parallel never share a schema or key space.
#ifndef QUNZU_TESTS_TEST_SUPPORT_H_
#define QUNZU_TESTS_TEST_SUPPORT_H_

#include <map>
#include <string>

#include "prometheus/registry.h"

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

}  // namespace qunzu::testing

#endif  // QUNZU_TESTS_TEST_SUPPORT_H_
