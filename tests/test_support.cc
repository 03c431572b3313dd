#include "tests/test_support.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <random>

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

}  // namespace

std::string MysqlDsnOrDie() { return EnvOrDie("QUNZU_MYSQL_DSN"); }

std::string RedisAddrOrDie() { return EnvOrDie("QUNZU_REDIS_ADDR"); }

std::string UniqueName(const std::string& stem) {
  static std::atomic<int> counter{0};
  static const unsigned salt = std::random_device{}() % 100000;
  return "t_" + stem + "_" + std::to_string(getpid()) + "_" + std::to_string(salt) + "_" +
         std::to_string(counter++);
}

}  // namespace qunzu::testing
