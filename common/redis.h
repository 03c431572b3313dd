// A thread-safe Redis client over a small pool of synchronous hiredis
// connections: single commands, one-round-trip pipelines and Lua scripts run
// by SHA1. Connections are made lazily and replaced after any failure, so a
// Redis that goes away and comes back needs no restart of the caller.
//
// Errors: a transport failure (cannot resolve or connect, timeout, connection
// dropped) is UNAVAILABLE with reason REDIS_UNAVAILABLE and names the
// address; a Redis error reply to Command or Eval is INTERNAL with reason
// REDIS_ERROR; a reply of an unexpected type asked for through an As*
// accessor is INTERNAL with reason REDIS_UNEXPECTED_REPLY.
#ifndef QUNZU_COMMON_REDIS_H_
#define QUNZU_COMMON_REDIS_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

struct redisContext;
struct redisReply;

namespace qunzu {

// How to reach Redis and how long to wait for it.
struct RedisOptions {
  // "host:port", "[v6addr]:port" or "unix:/path/to.sock".
  std::string address = "127.0.0.1:6379";
  // Bounds name resolution plus the TCP or unix-socket connect.
  absl::Duration connect_timeout = absl::Seconds(1);
  // Bounds each send and each reply read of a command or pipeline.
  absl::Duration command_timeout = absl::Seconds(1);
  // Most connections open at once; callers beyond it wait for a free one.
  int pool_size = 4;
  // With a password, every new connection authenticates (AUTH, with the
  // ACL user when one is set) before it is used. Neither appears in any
  // status or log.
  std::string username;
  std::string password;
};

// A parsed RedisOptions::address.
struct RedisEndpoint {
  // Empty for a unix socket.
  std::string host;
  // 1..65535 for TCP; 0 for a unix socket.
  int port = 0;
  // The socket path for "unix:/path"; empty for TCP.
  std::string unix_path;
};

// Parses "host:port", "[v6addr]:port" or "unix:/path". Anything else is
// INVALID_ARGUMENT (reason INVALID_FIELD, field "redis_address") quoting it.
absl::StatusOr<RedisEndpoint> ParseRedisAddress(absl::string_view address);

// One reply from Redis. Holds bytes exactly as sent (binary-safe).
class RedisReply {
 public:
  enum class Type { kNil, kString, kInteger, kArray, kStatus, kError };

  // Factories, mostly for fakes and tests.
  static RedisReply Nil();
  static RedisReply String(std::string bytes);
  static RedisReply Integer(int64_t value);
  static RedisReply Array(std::vector<RedisReply> elements);
  static RedisReply Status(std::string text);
  static RedisReply Error(std::string text);

  Type type() const { return type_; }
  bool is_nil() const { return type_ == Type::kNil; }
  bool is_error() const { return type_ == Type::kError; }

  // The bytes of a string, status or error reply; empty for other types.
  const std::string& str() const { return str_; }
  // The value of an integer reply; 0 for other types.
  int64_t integer() const { return integer_; }
  // The elements of an array reply; empty for other types.
  const std::vector<RedisReply>& elements() const { return elements_; }

  // The bytes of a string or status reply; any other type is an error.
  absl::StatusOr<std::string> AsString() const;
  // As AsString, but nil is std::nullopt (e.g. GET of a missing key).
  absl::StatusOr<std::optional<std::string>> AsOptionalString() const;
  // An integer reply, or a string reply holding a decimal integer (what Lua
  // scripts and GET return); anything else is an error.
  absl::StatusOr<int64_t> AsInteger() const;
  // OK unless this is an error reply, which becomes INTERNAL REDIS_ERROR.
  absl::Status ErrorStatus() const;

  // A short human-readable rendering, for logs and test failures.
  std::string DebugString() const;

 private:
  Type type_ = Type::kNil;
  std::string str_;
  int64_t integer_ = 0;
  std::vector<RedisReply> elements_;
};

// A hiredis reply as a RedisReply (for the asynchronous client).
RedisReply ConvertHiredisReply(const redisReply& raw);

// One command as its arguments, e.g. {"SET", key, value}. Binary-safe.
using RedisCommand = std::vector<std::string>;

// A Lua script with its SHA1, computed once. Keep long-lived instances (e.g.
// a function-local static) so every call runs by EVALSHA.
class RedisScript {
 public:
  explicit RedisScript(std::string source);
  const std::string& source() const { return source_; }
  // Lower-case hex SHA1 of source, the name Redis caches the script under.
  const std::string& sha1() const { return sha1_; }

 private:
  std::string source_;
  std::string sha1_;
};

// What both clients' Create do first: validates options (address syntax,
// positive timeouts, pool_size >= 1; INVALID_ARGUMENT naming the field),
// sets SIGPIPE to ignored if it had the default action (a write to a
// connection the server closed is then an error, not a crash), and returns
// the parsed address.
absl::StatusOr<RedisEndpoint> PrepareRedisClient(const RedisOptions& options);

// The numeric addresses of host (itself when numeric), within timeout:
// DEADLINE_EXCEEDED when resolution takes longer (getaddrinfo cannot be
// interrupted, so it runs on a detached thread that may outlive the call),
// NOT_FOUND when the name does not resolve. Both clients connect with it.
absl::StatusOr<std::vector<std::string>> ResolveRedisHost(const std::string& host,
                                                          absl::Duration timeout);

// The AUTH a new connection sends first (with the ACL user when one is
// set); empty without a password.
RedisCommand AuthCommand(const RedisOptions& options);

// Thread-safe client. Construction never touches the network; the first call
// connects. Every call returns within about connect_timeout (when it must
// connect) plus command_timeout per reply it waits for, or, when all
// pool_size connections are busy, after waiting at most connect_timeout +
// command_timeout for one to free up.
//
// Reconnect contract: a connection that failed in any way is closed, and so
// are all idle connections (they likely share its fate, e.g. a Redis
// restart); the next call opens a new one. An idle connection that the server
// has closed (CLIENT KILL, restart, idle timeout) is noticed when it is taken
// from the pool and replaced before use. When the close is not yet visible
// (it raced the call), that one call fails with UNAVAILABLE; calls are never
// retried automatically, since the command may have run. So after the server
// drops connections, a sequence of calls from one thread has at most one
// failure before it succeeds again.
class RedisClient {
 public:
  // Validates options (address syntax, positive timeouts, pool_size >= 1);
  // does not connect. Sets SIGPIPE to ignored if it had the default action,
  // so a write to a connection the server closed is an error, not a crash.
  static absl::StatusOr<std::unique_ptr<RedisClient>> Create(const RedisOptions& options);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Runs one command. A Redis error reply is INTERNAL REDIS_ERROR.
  absl::StatusOr<RedisReply> Command(const RedisCommand& command);

  // Sends all commands in one write and then reads all replies: one round
  // trip. Per-command Redis errors come back as error-type replies in their
  // slots (the other commands did run); only a transport failure fails the
  // whole call, and then any subset of the commands may have run.
  absl::StatusOr<std::vector<RedisReply>> Pipeline(const std::vector<RedisCommand>& commands);

  // Runs script with EVALSHA; on NOSCRIPT (script cache flushed, or a new
  // server) sends the source with EVAL, which also caches it again. A Redis error reply (including
  // one the script raised) is INTERNAL REDIS_ERROR; scripts should return domain outcomes as
  // values.
  absl::StatusOr<RedisReply> Eval(const RedisScript& script, const std::vector<std::string>& keys,
                                  const std::vector<std::string>& args);

  // OK when Redis answers PING with PONG.
  absl::Status Ping();

  // FAILED_PRECONDITION REDIS_EVICTS_PROJECTIONS when Redis' maxmemory-policy
  // is an allkeys-* one: when memory runs out it may evict keys without an
  // expiry — the projections the hot path trusts, and an evicted blacklist
  // lets a blacklisted sender post. OK for noeviction and volatile-*, and
  // when Redis refuses CONFIG GET (managed Redis often disables it: then
  // the operator's setting cannot be checked here).
  absl::Status CheckEvictionPolicy();

  // The address this client was created with.
  const std::string& address() const { return options_.address; }
  // The options it was created with (e.g. for an AsyncRedis beside it).
  const RedisOptions& options() const { return options_; }

 private:
  struct ContextDeleter {
    void operator()(redisContext* context) const;
  };
  using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;

  RedisClient(RedisOptions options, RedisEndpoint endpoint);

  absl::StatusOr<ContextPtr> Acquire();
  void Release(ContextPtr context, bool healthy);
  absl::StatusOr<ContextPtr> Connect() const;
  // AUTH on a fresh connection when a password is configured.
  absl::Status Authenticate(redisContext& context) const;
  absl::StatusOr<std::vector<RedisReply>> RoundTrip(
      redisContext* context, const std::vector<RedisCommand>& commands) const;
  absl::StatusOr<std::vector<RedisReply>> Run(const std::vector<RedisCommand>& commands);
  absl::Status Unavailable(absl::string_view what) const;

  const RedisOptions options_;
  const RedisEndpoint endpoint_;
  absl::Mutex mu_;
  std::vector<ContextPtr> idle_ ABSL_GUARDED_BY(mu_);
  // Connections idle, in use or being opened.
  int open_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace qunzu

#endif  // QUNZU_COMMON_REDIS_H_
