// A non-blocking Redis client for request paths that must not hold a thread
// for a round trip (moderation's ScreenMessage, a gRPC callback method): a
// pipeline is written on one hiredis async connection by the thread that
// hands it over, with a completion callback — or, while a reply to one
// written earlier is coming, left in the connection's buffer and written
// with every other pipeline queued meanwhile by whichever thread takes that
// reply (so under load one write and one wake of Redis carry many
// pipelines); one event-loop thread reads the replies and completes them. Redis answers a
// connection in order, so the oldest pipeline in flight is always the next to complete and the only
// deadline to watch (looked at every kDeadlineTick at least).
//
// Errors are those of RedisClient (redis.h): a transport failure — cannot
// connect, the connection dropped, no answer within connect_timeout +
// command_timeout — is UNAVAILABLE REDIS_UNAVAILABLE naming the address, and
// fails every pipeline in flight on that connection (their commands may or
// may not have run); a Redis error reply comes back in its slot. A Redis
// that stops answering is dropped and a new connection made for the next
// pipeline; after a failed connect, pipelines fail at once for
// kReconnectBackoff instead of each trying again. A refused AUTH is
// UNAVAILABLE REDIS_AUTH_FAILED, and the connection is dropped rather than
// used as the default user.
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
  // Runs on the client's loop thread — or on the calling thread, inside
  // Pipeline, when the pipeline fails at once (no connection): it must not
  // block (hand blocking work to a thread of its own) and may submit
  // further pipelines. It is never called with the client's lock held.
  using Done = std::function<void(absl::StatusOr<std::vector<RedisReply>>)>;
  // Told how many posted commands were lost since it was last told (their
  // connection dropped before the reply, or Redis refused them); on the
  // loop thread, without the client's lock. For a metric: a lost EXPIRE is
  // a key that never expires.
  using PostedLost = std::function<void(int64_t commands)>;

  // How long pipelines fail at once after a failed connect.
  static constexpr absl::Duration kReconnectBackoff = absl::Milliseconds(100);
  // How late a deadline may be noticed.
  static constexpr absl::Duration kDeadlineTick = absl::Milliseconds(50);

  // Validates options as RedisClient::Create does (PrepareRedisClient;
  // pool_size is unused: one connection carries every pipeline) and starts
  // the loop thread; does not connect.
  static absl::StatusOr<std::unique_ptr<AsyncRedis>> Create(const RedisOptions& options,
                                                            PostedLost posted_lost = nullptr);
  // Fails what is still queued or in flight (UNAVAILABLE) and stops.
  ~AsyncRedis();
  AsyncRedis(const AsyncRedis&) = delete;
  AsyncRedis& operator=(const AsyncRedis&) = delete;

  // Sends commands as one pipeline; done gets every reply in order, or the
  // transport failure. Thread-safe; done is called exactly once.
  void Pipeline(std::vector<RedisCommand> commands, Done done);

  // Sends a command whose reply nobody waits for (a record, an EXPIRE, a
  // correction): written with the next write on the connection — at once
  // when none is in flight — so under load it costs no system call of its
  // own. A Redis error reply, or a connection lost before the reply, is
  // logged and the command dropped. A later Pipeline's reply means every
  // command posted before it has run.
  void Post(RedisCommand command);

  const std::string& address() const { return options_.address; }

 private:
  struct Call;
  struct Loop;

  AsyncRedis(RedisOptions options, RedisEndpoint endpoint, PostedLost posted_lost);

  void Run();
  // Answers calls (outside the lock).
  void RunCompleted(std::vector<std::unique_ptr<Call>>& completed);
  // With mu_ held, from here on; calls done go to completed_.
  void Send(std::unique_ptr<Call> call) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool EnsureConnected(std::string* why, const char** reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops the connection: every call in flight fails with why.
  void Drop(const std::string& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CompleteFront() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Hands one command to hiredis (formatted into its output buffer).
  using ReplyFn = void(redisAsyncContext*, void*, void*);
  bool Queue(const RedisCommand& command, ReplyFn* fn, void* privdata)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Hands the posted commands to hiredis (written by the next write).
  void SendPosted() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes what hiredis holds, when connected; with read, also takes the
  // replies already waiting.
  void WriteNow(bool read) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool Connected() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Unavailable(const std::string& what, const char* reason = "REDIS_UNAVAILABLE") const;

  static void ReplyCallback(redisAsyncContext* context, void* reply, void* privdata);
  static void PostedCallback(redisAsyncContext* context, void* reply, void* privdata);
  static void AuthCallback(redisAsyncContext* context, void* reply, void* privdata);
  static void ConnectCallback(const redisAsyncContext* context, int status);
  static void DisconnectCallback(const redisAsyncContext* context, int status);

  const RedisOptions options_;
  const RedisEndpoint endpoint_;
  const PostedLost posted_lost_hook_;
  std::unique_ptr<Loop> loop_;

  // Guards the hiredis context (hiredis is not thread-safe) and all below.
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  redisAsyncContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
  // Why the calls in flight fail while the connection is being dropped.
  std::string drop_reason_ ABSL_GUARDED_BY(mu_);
  const char* drop_code_ ABSL_GUARDED_BY(mu_) = "REDIS_UNAVAILABLE";
  std::string connect_error_ ABSL_GUARDED_BY(mu_);
  const char* connect_reason_ ABSL_GUARDED_BY(mu_) = "REDIS_UNAVAILABLE";
  absl::Time retry_after_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // Sent, oldest first; the front completes next.
  std::deque<std::unique_ptr<Call>> in_flight_ ABSL_GUARDED_BY(mu_);
  // How many of the last of in_flight_ sit in hiredis's buffer, not yet
  // written: queued while a reply to an earlier one was coming, written by
  // whichever thread takes a reply next (at most, if a dropped connection
  // failed some).
  size_t unsent_ ABSL_GUARDED_BY(mu_) = 0;
  // Done, to be answered once the lock is released.
  std::vector<std::unique_ptr<Call>> completed_ ABSL_GUARDED_BY(mu_);
  // Posted, not yet handed to hiredis; and posted commands lost with a
  // connection since the last log line.
  std::vector<RedisCommand> posted_ ABSL_GUARDED_BY(mu_);
  // Queue's argument arrays, kept to save their allocations.
  std::vector<const char*> argv_ ABSL_GUARDED_BY(mu_);
  std::vector<size_t> lengths_ ABSL_GUARDED_BY(mu_);
  int64_t posted_lost_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace qunzu

#endif  // QUNZU_COMMON_REDIS_ASYNC_H_
