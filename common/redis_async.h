// A non-blocking Redis client for request paths that must not hold a thread
// for a round trip (moderation's ScreenMessage, a gRPC callback method): a
// pipeline is written on one connection by the thread that hands it over,
// with a completion callback — or, while a reply to one written earlier is
// coming, left in the client's buffer and written with every other pipeline
// queued meanwhile by whichever thread takes that reply (so under load one
// write and one wake of Redis carry many pipelines); one event-loop thread
// (named redis-loop, for top -H and profiles) reads the replies and
// completes them. Redis answers a connection in order,
// so the oldest pipeline in flight is always the next to complete and the
// only deadline to watch (looked at every kDeadlineTick at least). The
// client speaks RESP itself (commands encoded straight into its write
// buffer, replies parsed straight into RedisReply), RESP2 or, with a cache,
// RESP3.
//
// Client-side cache (Options::cache_entries > 0): the connection says
// HELLO 3 and CLIENT TRACKING ON, so Redis remembers the keys it read and
// pushes an invalidation on that same connection when one changes. A
// pipeline's commands marked cacheable (reads of one key, named by their
// second argument) are answered from the cache when it holds them; a reply
// read from Redis is kept. Because a push comes in the connection's order, a
// cached reply is taken when the pipeline's own replies have come, after
// every invalidation Redis sent before it ran that pipeline: what the cache
// answers is what a read in the pipeline would have read. One invalidated
// meanwhile is read again (one more round trip, rare). A dropped connection
// empties the cache (pushes may have been lost with it).
//
// Errors are those of RedisClient (redis.h): a transport failure — cannot
// connect, the connection dropped, no answer within connect_timeout +
// command_timeout — is UNAVAILABLE REDIS_UNAVAILABLE naming the address, and
// fails every pipeline in flight on that connection (their commands may or
// may not have run); a Redis error reply comes back in its slot. A Redis
// that stops answering is dropped and a new connection made for the next
// pipeline; after a failed connect, pipelines fail at once for
// kReconnectBackoff instead of each trying again. A refused AUTH (or HELLO)
// is UNAVAILABLE REDIS_AUTH_FAILED, and the connection is dropped rather
// than used as the default user; a HELLO 3 refused otherwise (a Redis
// before 6.0, with a cache asked for) is UNAVAILABLE REDIS_UNSUPPORTED,
// saying so. A refused CLIENT TRACKING only leaves the cache unused. Bytes that are not RESP drop
// the connection (REDIS_UNAVAILABLE, "protocol error").
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
#include "common/resp_frame.h"

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
  // How long a command posted on the loop thread waits for a pipeline.
  static constexpr absl::Duration kPostedDelay = absl::Milliseconds(1);
  static constexpr absl::Duration kCacheStatsInterval = absl::Seconds(1);

  // Validates options as RedisClient::Create does (PrepareRedisClient;
  // pool_size is unused: one connection carries every pipeline) and starts
  // the loop thread; does not connect.
  struct CacheStats;
  // Told the cache's counts since the client was made, about once per
  // kCacheStatsInterval while it has a cache; on the loop thread, without
  // the client's lock. For metrics.
  using CacheStatsHook = std::function<void(const CacheStats&)>;
  struct Options {
    PostedLost posted_lost;
    // Most cached replies held (when full, the cache starts again empty);
    // 0: no cache, RESP2.
    size_t cache_entries = 0;
    CacheStatsHook cache_stats;
  };
  // What the cache has done since the client was made.
  struct CacheStats {
    int64_t hits = 0;
    int64_t misses = 0;
    // Keys Redis said changed, and replies read again because their key
    // changed while their pipeline was in flight.
    int64_t invalidations = 0;
    int64_t rereads = 0;
    // Times the whole cache was emptied (a dropped connection, a full
    // cache, Redis flushing its tracking).
    int64_t flushes = 0;
    int64_t entries = 0;
  };

  static absl::StatusOr<std::unique_ptr<AsyncRedis>> Create(const RedisOptions& options,
                                                            PostedLost posted_lost = nullptr);
  static absl::StatusOr<std::unique_ptr<AsyncRedis>> Create(const RedisOptions& options,
                                                            Options client_options);
  // Fails what is still queued or in flight (UNAVAILABLE) and stops.
  ~AsyncRedis();
  AsyncRedis(const AsyncRedis&) = delete;
  AsyncRedis& operator=(const AsyncRedis&) = delete;

  // Sends commands as one pipeline; done gets every reply in order, or the
  // transport failure. Thread-safe; done is called exactly once.
  void Pipeline(std::vector<RedisCommand> commands, Done done);
  // As Pipeline; commands[i] with cacheable[i] (cacheable is empty or one
  // per command) may be answered from the cache. Mark only read-only
  // commands of one key, commands[i][1] (GET, HGET, HMGET, ...): a change to
  // that key is what invalidates them. Without a cache, as Pipeline.
  void Pipeline(std::vector<RedisCommand> commands, std::vector<bool> cacheable, Done done);

  // Sends a command whose reply nobody waits for (a record, an EXPIRE, a
  // correction): written with the next write on the connection, so that it
  // costs no system call (nor a wake of Redis) of its own. With nothing in
  // flight, one posted from another thread is written at once; one posted
  // on the loop thread (from a Done) waits up to kPostedDelay for a
  // pipeline to carry it. A Redis error reply, or a connection lost before
  // the reply, is logged and the command dropped. A later Pipeline's reply
  // means every command posted before it has run.
  void Post(RedisCommand command);

  const std::string& address() const { return options_.address; }
  CacheStats cache_stats() const;

 private:
  struct Call;
  struct Loop;
  struct Cache;

  AsyncRedis(RedisOptions options, RedisEndpoint endpoint, Options client_options);

  void Run();
  // Answers calls (outside the lock).
  void RunCompleted(std::vector<std::unique_ptr<Call>>& completed);
  // With mu_ held, from here on; calls done go to completed_.
  void Send(std::unique_ptr<Call> call) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Opens a connection (its handshake queued first) unless one is open.
  bool EnsureConnected(std::string* why, const char** reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A non-blocking connect finished (the loop saw the socket writable).
  void FinishConnect() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ConnectFailed(const std::string& error) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops the connection: every call in flight fails with why (reason
  // drop_code_), the cache is emptied.
  void Drop(const std::string& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The connection's state back to none (its socket closed or never open).
  void ForgetConnection() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Encodes a call's commands in sent order into out_.
  void Encode(const Call& call) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Hands the posted commands over as one call (written by the next write).
  void SendPosted() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes what out_ holds, when connected; with read, also takes the
  // replies already waiting.
  void WriteNow(bool read) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reads what has come and dispatches every whole reply.
  void ReadNow() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnReply(RedisReply reply) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnPush(const RedisReply& push) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The front call has every reply it was sent for.
  void CompleteFront() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The handshake's AUTH or HELLO was refused: REDIS_AUTH_FAILED for the
  // credentials, REDIS_UNSUPPORTED for a Redis without RESP3.
  void HandshakeRefused(const std::string& command, const std::string& error)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // What epoll should hear of the socket.
  void UpdateInterest() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Unavailable(const std::string& what, const char* reason = "REDIS_UNAVAILABLE") const;

  const RedisOptions options_;
  const RedisEndpoint endpoint_;
  const Options client_options_;
  std::unique_ptr<Loop> loop_;

  // Guards the connection and all below.
  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // The connection's socket (-1: none); connected_ once its connect is done.
  int fd_ ABSL_GUARDED_BY(mu_) = -1;
  bool connected_ ABSL_GUARDED_BY(mu_) = false;
  // Redis tracks this connection's reads (the handshake's CLIENT TRACKING
  // was answered OK): replies may be cached.
  bool tracking_ ABSL_GUARDED_BY(mu_) = false;
  // Bytes to write (from out_sent_ on) and bytes read, not yet a whole reply.
  std::string out_ ABSL_GUARDED_BY(mu_);
  size_t out_sent_ ABSL_GUARDED_BY(mu_) = 0;
  // The socket took only part of out_: the loop writes the rest on EPOLLOUT.
  bool write_blocked_ ABSL_GUARDED_BY(mu_) = false;
  // A new connection's handshake (AUTH, or HELLO and CLIENT TRACKING) is
  // written alone, the first handshake_end_ bytes of out_; nothing else is
  // until Redis has accepted it, so that no command ever runs as the
  // default user or without tracking.
  bool handshake_pending_ ABSL_GUARDED_BY(mu_) = false;
  size_t handshake_end_ ABSL_GUARDED_BY(mu_) = 0;
  std::string in_ ABSL_GUARDED_BY(mu_);
  // How much of the reply at in_'s start (or the read's) has been framed.
  RespFrameScanner frame_ ABSL_GUARDED_BY(mu_);
  // What each recv reads into.
  const std::unique_ptr<char[]> read_buffer_;
  // Why the calls in flight fail while the connection is being dropped.
  const char* drop_code_ ABSL_GUARDED_BY(mu_) = "REDIS_UNAVAILABLE";
  std::string connect_error_ ABSL_GUARDED_BY(mu_);
  const char* connect_reason_ ABSL_GUARDED_BY(mu_) = "REDIS_UNAVAILABLE";
  absl::Time retry_after_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // Sent, oldest first; the front completes next.
  std::deque<std::unique_ptr<Call>> in_flight_ ABSL_GUARDED_BY(mu_);
  // How many of the last of in_flight_ sit in out_, not yet written: queued
  // while a reply to an earlier one was coming, written by whichever thread
  // takes a reply next.
  size_t unsent_ ABSL_GUARDED_BY(mu_) = 0;
  // Done, to be answered once the lock is released.
  std::vector<std::unique_ptr<Call>> completed_ ABSL_GUARDED_BY(mu_);
  // Posted, not yet handed over; and posted commands lost since the last
  // log line.
  std::vector<RedisCommand> posted_ ABSL_GUARDED_BY(mu_);
  int64_t posted_lost_ ABSL_GUARDED_BY(mu_) = 0;
  std::unique_ptr<Cache> cache_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace qunzu

#endif  // QUNZU_COMMON_REDIS_ASYNC_H_
