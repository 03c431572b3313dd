#include "common/service_main.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/audit_outbox.h"
#include "common/auth.h"
#include "common/clock.h"
#include "common/health.h"
#include "common/housekeeping.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/mysql.h"
#include "common/server.h"
#include "common/status.h"

namespace qunzu {
namespace {

struct CommonFlags {
  std::string listen_host;
  int64_t grpc_port = 0;
  int64_t metrics_port = 0;
  std::string mysql_dsn;
  std::string mysql_schema;
  int64_t mysql_pool_size = 0;
  absl::Duration mysql_connect_timeout;
  std::string redis_addr;
  int64_t redis_pool_size = 0;
  std::string redis_username;
  std::string redis_password_file;
  std::string auth_config;
  std::string service_token_file;
  std::string audit_target;
  absl::Duration health_interval;
  absl::Duration drain_timeout;
  std::string log_level;
  absl::Duration idempotency_retention;
  absl::Duration outbox_retention;
};

void AddCommonFlags(FlagSet& flags, const ServiceDefinition& def, CommonFlags& f) {
  flags.AddString(
      {"listen-host", "QUNZU_LISTEN_HOST", "Address to listen on for gRPC and metrics."},
      &f.listen_host, "127.0.0.1");
  flags.AddInt64({"grpc-port", "QUNZU_GRPC_PORT", "gRPC port; 0 picks a free one."}, &f.grpc_port,
                 def.default_grpc_port, 0, 65535);
  flags.AddInt64({"metrics-port", "QUNZU_METRICS_PORT", "Prometheus /metrics port; 0 picks one."},
                 &f.metrics_port, def.default_metrics_port, 0, 65535);
  flags.AddString({"mysql-dsn", "QUNZU_MYSQL_DSN",
                   "MariaDB/MySQL as mysql://user:password@host:port[?socket=/path]."},
                  &f.mysql_dsn, "mysql://qunzu:qunzu@127.0.0.1:33061");
  flags.AddString({"mysql-schema", "QUNZU_MYSQL_SCHEMA", "This service's schema (database)."},
                  &f.mysql_schema, "qunzu_" + def.name);
  flags.AddInt64({"mysql-pool-size", "QUNZU_MYSQL_POOL_SIZE", "Most MySQL connections open."},
                 &f.mysql_pool_size, 16, 1, 1000);
  flags.AddDuration({"mysql-connect-timeout", "QUNZU_MYSQL_CONNECT_TIMEOUT",
                     "How long to wait for MySQL to accept a connection."},
                    &f.mysql_connect_timeout, absl::Seconds(5), absl::Seconds(1), absl::Minutes(5));
  if (def.uses_redis) {
    flags.AddString({"redis-addr", "QUNZU_REDIS_ADDR", "Redis as host:port or unix:/path."},
                    &f.redis_addr, "127.0.0.1:63791");
    flags.AddInt64({"redis-pool-size", "QUNZU_REDIS_POOL_SIZE", "Most Redis connections open."},
                   &f.redis_pool_size, 16, 1, 1000);
    flags.AddString({"redis-username", "QUNZU_REDIS_USERNAME",
                     "Redis ACL user for AUTH (with --redis-password-file)."},
                    &f.redis_username, "");
    flags.AddString({"redis-password-file", "QUNZU_REDIS_PASSWORD_FILE",
                     "File holding the Redis password; empty: no AUTH."},
                    &f.redis_password_file, "");
  } else {
    // Accepted so one environment can serve every service; unused here.
    flags.AddString({"redis-addr", "QUNZU_REDIS_ADDR", "Unused by this service."}, &f.redis_addr,
                    "");
  }
  flags.AddString({"auth-config", "QUNZU_AUTH_CONFIG",
                   "Credentials file (qunzu.common.v1.AuthConfig, text format); required."},
                  &f.auth_config, "");
  flags.AddString({"service-token-file", "QUNZU_SERVICE_TOKEN_FILE",
                   "File holding this service's bearer token for calls to the others."},
                  &f.service_token_file, "");
  flags.AddString({"audit-target", "QUNZU_AUDIT_TARGET", "The audit service, host:port."},
                  &f.audit_target, "127.0.0.1:50055");
  flags.AddDuration({"health-interval", "QUNZU_HEALTH_INTERVAL",
                     "How often MySQL and Redis are probed for grpc.health.v1."},
                    &f.health_interval, absl::Seconds(1), absl::Milliseconds(50), absl::Minutes(1));
  flags.AddDuration({"drain-timeout", "QUNZU_DRAIN_TIMEOUT",
                     "On SIGTERM, how long calls in flight may take to finish."},
                    &f.drain_timeout, absl::Seconds(10), absl::ZeroDuration(), absl::Minutes(10));
  flags.AddDuration({"idempotency-retention", "QUNZU_IDEMPOTENCY_RETENTION",
                     "How long request ids are remembered for retries, then deleted."},
                    &f.idempotency_retention, absl::Hours(24 * 7), absl::Hours(1),
                    absl::Hours(24 * 365));
  flags.AddDuration({"outbox-retention", "QUNZU_OUTBOX_RETENTION",
                     "How long delivered outbox rows are kept, then deleted."},
                    &f.outbox_retention, absl::Hours(24 * 7), absl::Hours(1),
                    absl::Hours(24 * 365));
  flags.AddChoice({"log-level", "QUNZU_LOG_LEVEL", "Least severe level logged."}, &f.log_level,
                  "info", {"debug", "info", "warning", "error"});
}

// The one-line secret in the file `path` named by `flag`, surrounding
// whitespace removed.
absl::StatusOr<std::string> ReadSecretFile(const std::string& flag, const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return MakeError(absl::StatusCode::kNotFound, "CONFIG_FILE_UNREADABLE",
                     flag + ": cannot read " + path);
  }
  std::stringstream text;
  text << in.rdbuf();
  std::string secret(absl::StripAsciiWhitespace(text.str()));
  if (secret.empty()) return InvalidField(flag, path + " is empty");
  return secret;
}

absl::StatusOr<std::string> ReadTokenFile(const std::string& path, bool required) {
  if (path.empty()) {
    if (!required) return std::string();
    return InvalidField("--service-token-file",
                        "is required: this service delivers its audit events to the audit "
                        "service (or set QUNZU_SERVICE_TOKEN_FILE)");
  }
  return ReadSecretFile("--service-token-file", path);
}

absl::StatusOr<std::shared_ptr<const Authorizer>> LoadAuthorizer(const CommonFlags& f,
                                                                 const std::string& service) {
  if (f.auth_config.empty()) {
    return InvalidField("--auth-config", "is required (or set QUNZU_AUTH_CONFIG)");
  }
  common::v1::AuthConfig config;
  RETURN_IF_ERROR(LoadTextProtoFile(f.auth_config, &config));
  absl::StatusOr<Authorizer> authorizer = Authorizer::Create(config, {service});
  if (!authorizer.ok()) {
    return MakeError(authorizer.status().code(), ErrorReason(authorizer.status()),
                     absl::StrCat(f.auth_config, ": ", authorizer.status().message()));
  }
  return std::make_shared<const Authorizer>(*std::move(authorizer));
}

// Blocks SIGTERM and SIGINT in every thread started after this, so the main
// thread can take them with sigwait; SIGPIPE is ignored (a closed log pipe or
// socket is an error to handle, not a reason to die).
sigset_t BlockShutdownSignals() {
  signal(SIGPIPE, SIG_IGN);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

int Fail(const std::string& program, const absl::Status& status) {
  LogError("start_failed", {{"reason", ErrorReason(status)}, {"message", status.message()}});
  std::fprintf(stderr, "%s: %s\n", program.c_str(), std::string(status.message()).c_str());
  return 1;
}

}  // namespace

int RunService(int argc, char** argv, const ServiceDefinition& def) {
  const std::string program = "qunzu-" + def.name;
  // Debian's Abseil is built with Mutex deadlock detection on, which costs
  // every lock a graph lookup under a global lock; tests keep it, a
  // service does not.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  sigset_t shutdown_signals = BlockShutdownSignals();
  SetErrorDomain(def.name + ".qunzu");

  FlagSet flags(program, "Qunzu " + def.name + " service.");
  CommonFlags f;
  AddCommonFlags(flags, def, f);
  if (def.add_flags) def.add_flags(flags);
  ParseFlagsOrExit(flags, argc, argv);
  InitLogging({def.name, *ParseLogLevel(f.log_level), nullptr, nullptr});

  absl::StatusOr<std::shared_ptr<const Authorizer>> authorizer =
      LoadAuthorizer(f, def.grpc_service);
  if (!authorizer.ok()) return Fail(program, authorizer.status());
  const bool feeds_audit = def.name != "audit";
  absl::StatusOr<std::string> service_token = ReadTokenFile(f.service_token_file, feeds_audit);
  if (!service_token.ok()) return Fail(program, service_token.status());

  absl::StatusOr<MysqlOptions> mysql_options = ParseMysqlDsn(f.mysql_dsn);
  if (!mysql_options.ok()) {
    return Fail(program, InvalidField("--mysql-dsn", mysql_options.status().message()));
  }
  mysql_options->connect_timeout = f.mysql_connect_timeout;
  absl::StatusOr<std::unique_ptr<MysqlPool>> mysql =
      MysqlPool::Create(*mysql_options, f.mysql_schema, static_cast<int>(f.mysql_pool_size));
  if (!mysql.ok()) return Fail(program, mysql.status());
  if (absl::Status s = ApplyMigrations(**mysql, kCommonComponent, CommonMigrations()); !s.ok()) {
    return Fail(program, s);
  }
  if (absl::Status s = ApplyMigrations(**mysql, def.name, def.migrations); !s.ok()) {
    return Fail(program, s);
  }

  std::unique_ptr<RedisClient> redis;
  if (def.uses_redis) {
    RedisOptions redis_options;
    redis_options.address = f.redis_addr;
    redis_options.pool_size = static_cast<int>(f.redis_pool_size);
    redis_options.username = f.redis_username;
    if (!f.redis_password_file.empty()) {
      absl::StatusOr<std::string> password =
          ReadSecretFile("--redis-password-file", f.redis_password_file);
      if (!password.ok()) return Fail(program, password.status());
      redis_options.password = *std::move(password);
    } else if (!f.redis_username.empty()) {
      return Fail(program, InvalidField("--redis-username", "needs --redis-password-file"));
    }
    absl::StatusOr<std::unique_ptr<RedisClient>> client = RedisClient::Create(redis_options);
    if (!client.ok()) return Fail(program, client.status());
    redis = *std::move(client);
  }

  absl::StatusOr<std::unique_ptr<MetricsServer>> metrics =
      MetricsServer::Start(absl::StrCat(f.listen_host, ":", f.metrics_port));
  if (!metrics.ok()) return Fail(program, metrics.status());

  std::shared_ptr<grpc::Channel> audit_channel;
  if (feeds_audit) {
    audit_channel = grpc::CreateChannel(f.audit_target, grpc::InsecureChannelCredentials());
  }
  ServiceDeps deps{**mysql, redis.get(), (*metrics)->registry(), audit_channel, *service_token};
  absl::StatusOr<std::unique_ptr<grpc::Service>> service = def.make_service(deps);
  if (!service.ok()) return Fail(program, service.status());

  GrpcServer::Options server_options;
  server_options.address = absl::StrCat(f.listen_host, ":", f.grpc_port);
  server_options.authorizer = *authorizer;
  server_options.registry = &(*metrics)->registry();
  absl::StatusOr<std::unique_ptr<GrpcServer>> server =
      GrpcServer::Start(server_options, {service->get()}, {def.grpc_service});
  if (!server.ok()) return Fail(program, server.status());

  std::vector<DependencyMonitor::Probe> probes;
  MysqlPool* pool = mysql->get();
  probes.push_back({"mysql", [pool] { return pool->Ping(); }});
  if (redis) {
    RedisClient* client = redis.get();
    probes.push_back({"redis", [client] {
                        RETURN_IF_ERROR(client->Ping());
                        return client->CheckEvictionPolicy();
                      }});
  }
  GrpcServer* grpc_server = server->get();
  DependencyMonitor monitor(
      std::move(probes), f.health_interval,
      [grpc_server](bool serving, const absl::Status& cause) {
        grpc_server->SetServing(serving);
        if (serving) {
          LogInfo("serving");
        } else {
          LogWarning("not_serving", {{"reason", ErrorReason(cause)}, {"cause", cause.message()}});
        }
      },
      (*metrics)->registry());
  monitor.Start();

  // State changes reach the audit log through the outbox (DESIGN §1).
  std::unique_ptr<AuditAppendReceiver> audit_receiver;
  std::unique_ptr<OutboxRelay> relay;
  if (feeds_audit) {
    audit_receiver = std::make_unique<AuditAppendReceiver>(audit_channel, def.name, *service_token);
    OutboxRelayOptions relay_options;
    relay_options.topic = kAuditTopic;
    absl::StatusOr<std::unique_ptr<OutboxRelay>> created =
        OutboxRelay::Create(**mysql, *audit_receiver, (*metrics)->registry(), relay_options);
    if (!created.ok()) return Fail(program, created.status());
    relay = *std::move(created);
    relay->Start();
  }
  // Idempotency keys and delivered outbox rows are kept bounded.
  HousekeepingOptions housekeeping_options;
  housekeeping_options.idempotency_retention = f.idempotency_retention;
  housekeeping_options.outbox_retention = f.outbox_retention;
  absl::StatusOr<std::unique_ptr<Housekeeper>> housekeeper = Housekeeper::Create(
      **mysql, (*metrics)->registry(), SystemClock::Get(), housekeeping_options);
  if (!housekeeper.ok()) return Fail(program, housekeeper.status());
  (*housekeeper)->Start();
  LogInfo("listening", {{"grpc_port", (*server)->port()}, {"metrics_port", (*metrics)->port()}});

  int signal_number = 0;
  sigwait(&shutdown_signals, &signal_number);
  LogInfo("draining", {{"signal", signal_number}});
  monitor.Stop();
  (*server)->Shutdown(f.drain_timeout);
  if (relay) relay->Stop();
  (*housekeeper)->Stop();
  LogInfo("stopped");
  return 0;
}

}  // namespace qunzu
