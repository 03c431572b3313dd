// What every service's main() runs: flags, credentials, MySQL and its
// migrations, Redis, the gRPC server with health, metrics and auth, the
// dependency monitor, and a drain on SIGTERM or SIGINT. A service supplies
// only what is its own (ServiceDefinition).
#ifndef QUNZU_COMMON_SERVICE_MAIN_H_
#define QUNZU_COMMON_SERVICE_MAIN_H_

#include <grpcpp/channel.h>
#include <grpcpp/impl/service_type.h>
#include <prometheus/registry.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/migrations.h"
#include "common/mysql_pool.h"
#include "common/redis.h"

namespace qunzu {

// The shared resources a service's implementation is built from.
struct ServiceDeps {
  MysqlPool& mysql;
  // Null for a service that keeps nothing in Redis (audit).
  RedisClient* redis;
  prometheus::Registry& metrics;
  // A channel to the audit service for the outbox relay; null for audit.
  std::shared_ptr<grpc::Channel> audit_channel;
  // This service's own bearer token for calls to the other services.
  std::string service_token;
};

struct ServiceDefinition {
  // "groups": names the binary, the schema (qunzu_groups) and the error domain.
  std::string name;
  // The full gRPC service name, "qunzu.groups.v1.GroupService".
  std::string grpc_service;
  int default_grpc_port = 0;
  int default_metrics_port = 0;
  bool uses_redis = true;
  // The service's own schema migrations, applied after CommonMigrations().
  std::vector<Migration> migrations;
  // Optional: registers service-specific flags before parsing.
  std::function<void(FlagSet&)> add_flags;
  // Builds the gRPC service; an error ends start-up with its message.
  std::function<absl::StatusOr<std::unique_ptr<grpc::Service>>(ServiceDeps&)> make_service;
};

// Runs the service until SIGTERM or SIGINT; returns the process exit code:
// 0 after a clean drain, 2 for bad flags, 1 for any other start-up failure
// (each reported on stderr with a message naming the cause).
int RunService(int argc, char** argv, const ServiceDefinition& definition);

}  // namespace qunzu

#endif  // QUNZU_COMMON_SERVICE_MAIN_H_
