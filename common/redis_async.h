// A non-blocking Redis client for request paths that must not hold a thread
// for a round trip (moderation's ScreenMessage, a gRPC callback method): a
// pipeline is handed over with a completion callback, written by one event
// loop thread on one hiredis async connection, and its replies complete it.
// Redis answers a connection in order, so the oldest pipeline in flight is
// always the next to complete and the only deadline to watch.
//
// Errors are those of RedisClient (redis.h): a transport failure — cannot
// connect, the connection dropped, no answer within connect_timeout +
// command_timeout — is UNAVAILABLE REDIS_UNAVAILABLE naming the address, and
// fails every pipeline in flight on that connection (their commands may or
// may not have run); a Redis error reply comes back in its slot. A Redis
// that stops answering is dropped and a new connection made for the next
// pipeline; after a failed connect, pipelines fail at once for
// kReconnectBackoff instead of each trying again.
#ifndef QUNZU_COMMON_REDIS_ASYNC_H_
#define QUNZU_COMMON_REDIS_ASYNC_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/redis.h"

struct redisAsyncContext;
struct redisReply;

namespace qunzu {

class AsyncRedis {
 public:
  // Runs on the client's loop thread: it must not block (hand blocking work
  // to a thread of its own) and may submit further pipelines.
  using Done = std::function<void(absl::StatusOr<std::vector<RedisReply>>)>;

  // How long pipelines fail at once after a failed connect.
  static constexpr absl::Duration kReconnectBackoff = absl::Milliseconds(100);

  // Validates options as RedisClient::Create does (pool_size is unused: one
  // connection carries every pipeline) and starts the loop thread; does not
  // connect.
  static absl::StatusOr<std::unique_ptr<AsyncRedis>> Create(const RedisOptions& options);
  // Fails what is still queued or in flight (UNAVAILABLE) and stops.
  ~AsyncRedis();
  AsyncRedis(const AsyncRedis&) = delete;
  AsyncRedis& operator=(const AsyncRedis&) = delete;

  // Sends commands as one pipeline; done gets every reply in order, or the
  // transport failure. Thread-safe; done is always called exactly once, on
  // the loop thread, never inside Pipeline.
  void Pipeline(std::vector<RedisCommand> commands, Done done);

  const std::string& address() const { return options_.address; }

 private:
  struct Call;
  struct Loop;

  AsyncRedis(RedisOptions options, RedisEndpoint endpoint);

  void Run();
  // Loop thread only, from here on.
  void Drain();
  void Send(std::unique_ptr<Call> call);
  bool EnsureConnected(std::string* why);
  // Drops the connection: every call in flight fails with why.
  void Drop(const std::string& why);
  void OnReply(redisReply* reply);
  void CompleteFront();
  absl::Status Unavailable(const std::string& what) const;

  static void ReplyCallback(redisAsyncContext* context, void* reply, void* privdata);
  static void ConnectCallback(const redisAsyncContext* context, int status);
  static void DisconnectCallback(const redisAsyncContext* context, int status);

  const RedisOptions options_;
  const RedisEndpoint endpoint_;
  std::unique_ptr<Loop> loop_;

  absl::Mutex mu_;
  std::vector<std::unique_ptr<Call>> queued_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  // The loop thread's own.
  redisAsyncContext* context_ = nullptr;
  // Why the calls in flight fail while the connection is being dropped.
  std::string drop_reason_;
  std::string connect_error_;
  absl::Time retry_after_ = absl::InfinitePast();
  // Sent, oldest first; the front completes next.
  std::deque<std::unique_ptr<Call>> in_flight_;
  std::thread thread_;
};

}  // namespace qunzu

#endif  // QUNZU_COMMON_REDIS_ASYNC_H_
