// The non-blocking Redis client against the test Redis (through `make test`
// or with-servers.sh) and against fake servers that refuse, never answer
// or answer late.
#include "common/redis_async.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/notification.h"
#include "common/status.h"
#include "tests/common/fake_redis_server.h"
#include "tests/test_support.h"

namespace qunzu {
namespace {

using ::qunzu::testing::ExpectRedisUnavailable;
using ::qunzu::testing::FakeServer;
using ::qunzu::testing::RedisAddrOrDie;
using ::qunzu::testing::UniqueName;
using ::testing::HasSubstr;

std::unique_ptr<AsyncRedis> NewAsync(const std::string& address,
                                     absl::Duration timeout = absl::Milliseconds(500)) {
  RedisOptions options;
  options.address = address;
  options.connect_timeout = timeout;
  options.command_timeout = timeout;
  auto client = AsyncRedis::Create(options);
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? *std::move(client) : nullptr;
}

// Runs one pipeline and waits for its completion.
absl::StatusOr<std::vector<RedisReply>> RunPipeline(AsyncRedis& client,
                                                    std::vector<RedisCommand> commands) {
  absl::Notification done;
  absl::StatusOr<std::vector<RedisReply>> result;
  client.Pipeline(std::move(commands), [&](absl::StatusOr<std::vector<RedisReply>> replies) {
    result = std::move(replies);
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

std::unique_ptr<RedisClient> Admin() {
  RedisOptions options;
  options.address = RedisAddrOrDie();
  return RedisClient::Create(options).value();
}

// Options to connect as a new ACL user of the test server.
RedisOptions AclUser(RedisClient& admin, const std::string& user, const std::string& password) {
  EXPECT_TRUE(admin.Command({"ACL", "SETUSER", user, "on", ">" + password, "~*", "+@all"}).ok());
  RedisOptions options;
  options.address = RedisAddrOrDie();
  options.username = user;
  options.password = password;
  return options;
}

std::string Prefix() { return "{" + UniqueName("redis-async") + "}:"; }

TEST(AsyncRedisTest, APipelineGetsEveryReplyInOrderWithErrorsInTheirSlots) {
  auto client = NewAsync(RedisAddrOrDie());
  const std::string p = Prefix();
  auto replies = RunPipeline(*client, {{"SET", p + "s", "text"},
                                       {"INCR", p + "s"},
                                       {"HSET", p + "h", "f", std::string("a\0b", 3)},
                                       {"HMGET", p + "h", "f", "missing"},
                                       {"GET", p + "none"}});
  ASSERT_TRUE(replies.ok()) << replies.status();
  ASSERT_EQ(replies->size(), 5U);
  EXPECT_EQ((*replies)[0].str(), "OK");
  EXPECT_TRUE((*replies)[1].is_error());
  EXPECT_EQ((*replies)[2].integer(), 1);
  ASSERT_EQ((*replies)[3].elements().size(), 2U);
  EXPECT_EQ((*replies)[3].elements()[0].str(), std::string("a\0b", 3));
  EXPECT_TRUE((*replies)[3].elements()[1].is_nil());
  EXPECT_TRUE((*replies)[4].is_nil());
  // An empty pipeline completes too.
  auto none = RunPipeline(*client, {});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(AsyncRedisTest, PipelinesFromManyThreadsEachGetTheirOwnReplies) {
  auto client = NewAsync(RedisAddrOrDie());
  const std::string p = Prefix();
  constexpr int kThreads = 8;
  constexpr int kCalls = 300;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  std::vector<int> wrong(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string key = absl::StrCat(p, "counter", t);
      // Each thread keeps many pipelines in flight, then checks them all.
      std::vector<absl::StatusOr<std::vector<RedisReply>>> results(kCalls);
      absl::Mutex mu;
      int left = kCalls;
      for (int n = 0; n < kCalls; ++n) {
        client->Pipeline({{"INCR", key}, {"ECHO", absl::StrCat(t, ":", n)}},
                         [&, n](absl::StatusOr<std::vector<RedisReply>> replies) {
                           absl::MutexLock lock(&mu);
                           results[static_cast<size_t>(n)] = std::move(replies);
                           --left;
                         });
      }
      absl::MutexLock lock(&mu);
      mu.Await(absl::Condition(
          +[](int* remaining) { return *remaining == 0; }, &left));
      for (int n = 0; n < kCalls; ++n) {
        const auto& r = results[static_cast<size_t>(n)];
        // Sent in order from one thread: the counter says which came first.
        if (!r.ok() || (*r)[0].integer() != n + 1 || (*r)[1].str() != absl::StrCat(t, ":", n)) {
          ++wrong[static_cast<size_t>(t)];
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(wrong[static_cast<size_t>(t)], 0) << t;
}

TEST(AsyncRedisTest, PostedCommandsRunInOrderBeforeALaterPipelinesReply) {
  auto client = NewAsync(RedisAddrOrDie());
  const std::string p = Prefix();
  // Idle: written at once. Then many while a pipeline is (most likely) in
  // flight: they go out with the next write. A refused one (a type error)
  // is dropped and the others still run.
  client->Post({"SET", p + "n", "0"});
  absl::Notification first;
  client->Pipeline({{"PING"}},
                   [&](const absl::StatusOr<std::vector<RedisReply>>&) { first.Notify(); });
  for (int i = 0; i < 100; ++i) client->Post({"INCR", p + "n"});
  client->Post({"HSET", p + "n", "f", "v"});  // WRONGTYPE: logged, dropped
  client->Post({"INCR", p + "n"});
  auto read = RunPipeline(*client, {{"GET", p + "n"}});
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ((*read)[0].str(), "101");
  first.WaitForNotification();
}

// Posted from a Done (the loop thread) with nothing in flight: carried by
// the next pipeline, or written by the loop within kPostedDelay when none
// comes.
TEST(AsyncRedisTest, CommandsPostedOnTheLoopThreadGoOutWithTheNextPipelineOrSoonAfter) {
  auto client = NewAsync(RedisAddrOrDie());
  auto admin = Admin();
  const std::string p = Prefix();
  absl::Notification posted;
  client->Pipeline({{"PING"}}, [&](const absl::StatusOr<std::vector<RedisReply>>&) {
    client->Post({"SET", p + "carried", "1"});
    posted.Notify();
  });
  posted.WaitForNotification();
  auto read = RunPipeline(*client, {{"GET", p + "carried"}});
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ((*read)[0].str(), "1");

  absl::Notification alone;
  client->Pipeline({{"PING"}}, [&](const absl::StatusOr<std::vector<RedisReply>>&) {
    client->Post({"SET", p + "alone", "1"});
    alone.Notify();
  });
  alone.WaitForNotification();
  // No pipeline follows: the loop writes it. Looked for through another
  // connection, one round trip after another, for at most 5 s.
  const absl::Time give_up = absl::Now() + absl::Seconds(5);
  bool seen = false;
  while (!seen && absl::Now() < give_up) {
    auto exists = admin->Command({"EXISTS", p + "alone"});
    ASSERT_TRUE(exists.ok()) << exists.status();
    seen = exists->integer() == 1;
  }
  EXPECT_TRUE(seen);
}

// While a reply is coming, pipelines handed over wait for it in the
// client's buffer and then go out together, and each gets its own replies.
TEST(AsyncRedisTest, PipelinesHandedOverWhileAReplyIsComingGoOutWithTheNextWrite) {
  FakeServer server;
  server.Listen(1);
  auto client = NewAsync(server.address(), absl::Seconds(5));
  absl::Notification first_read;
  absl::Notification others_handed_over;
  std::thread serve([&] {
    const int peer = server.Accept();
    std::string received;
    EXPECT_TRUE(FakeServer::ReadCommands(peer, 1, &received));
    first_read.Notify();
    others_handed_over.WaitForNotification();
    // Handed over, not written: nothing more has come.
    char byte = 0;
    EXPECT_EQ(recv(peer, &byte, 1, MSG_DONTWAIT), -1);
    EXPECT_EQ(errno, EAGAIN);
    const std::string first_reply = ":1\r\n";
    EXPECT_EQ(write(peer, first_reply.data(), first_reply.size()),
              static_cast<ssize_t>(first_reply.size()));
    // Taking that reply writes the other two pipelines' three commands.
    received.clear();
    EXPECT_TRUE(FakeServer::ReadCommands(peer, 3, &received));
    const std::string replies = ":2\r\n:3\r\n:4\r\n";
    EXPECT_EQ(write(peer, replies.data(), replies.size()), static_cast<ssize_t>(replies.size()));
    close(peer);
  });
  std::vector<absl::StatusOr<std::vector<RedisReply>>> results(3);
  absl::BlockingCounter done(3);
  auto run = [&](size_t i, std::vector<RedisCommand> commands) {
    client->Pipeline(std::move(commands), [&, i](absl::StatusOr<std::vector<RedisReply>> r) {
      results[i] = std::move(r);
      done.DecrementCount();
    });
  };
  run(0, {{"INCR", "a"}});
  first_read.WaitForNotification();
  run(1, {{"INCR", "a"}, {"INCR", "a"}});
  run(2, {{"INCR", "a"}});
  others_handed_over.Notify();
  done.Wait();
  serve.join();
  std::vector<std::vector<int64_t>> got;
  for (const auto& result : results) {
    ASSERT_TRUE(result.ok()) << result.status();
    got.emplace_back();
    for (const RedisReply& reply : *result) got.back().push_back(reply.integer());
  }
  EXPECT_EQ(got, (std::vector<std::vector<int64_t>>{{1}, {2, 3}, {4}}));
}

// A posted command Redis refuses is counted as lost, on the loop thread.
TEST(AsyncRedisTest, LostPostedCommandsAreCounted) {
  absl::Mutex mu;
  int64_t lost = 0;
  RedisOptions options;
  options.address = RedisAddrOrDie();
  auto client = AsyncRedis::Create(options, [&](int64_t commands) {
                  absl::MutexLock lock(&mu);
                  lost += commands;
                }).value();
  const std::string key = UniqueName("posted-lost");
  client->Post({"INCR"});  // wrong number of arguments: refused
  client->Post({"INCR", key});
  auto replies = RunPipeline(*client, {{"GET", key}});
  ASSERT_TRUE(replies.ok()) << replies.status();
  EXPECT_EQ((*replies)[0].str(), "1");  // the good one ran, in order
  absl::MutexLock lock(&mu);
  EXPECT_TRUE(mu.AwaitWithTimeout(absl::Condition(
                                      +[](int64_t* n) { return *n == 1; }, &lost),
                                  absl::Seconds(5)));
  EXPECT_EQ(lost, 1);
}

TEST(AsyncRedisTest, ASilentServerFailsThePipelineAtItsDeadline) {
  FakeServer silent;
  silent.Listen(8);  // the kernel completes connects; nobody ever answers
  auto client = NewAsync(silent.address(), absl::Milliseconds(300));
  const absl::Time start = absl::Now();
  auto replies = RunPipeline(*client, {{"PING"}});
  const absl::Duration elapsed = absl::Now() - start;
  ExpectRedisUnavailable(replies.status(), silent.address());
  EXPECT_THAT(replies.status().message(), HasSubstr("no reply within"));
  // connect_timeout + command_timeout for the first pipeline on a new
  // connection.
  EXPECT_GE(elapsed, absl::Milliseconds(300));
  EXPECT_LT(elapsed, absl::Milliseconds(1500));
}

TEST(AsyncRedisTest, AnUnresolvableHostIsUnavailableWithinTheConnectTimeout) {
  auto client = NewAsync("no-such-host.invalid:6379");
  const absl::Time start = absl::Now();
  auto replies = RunPipeline(*client, {{"PING"}});
  ExpectRedisUnavailable(replies.status(), "no-such-host.invalid:6379");
  EXPECT_THAT(replies.status().message(), HasSubstr("no-such-host.invalid"));
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(1500));
}

TEST(AsyncRedisTest, AHostNameIsResolvedAndConnectedTo) {
  const std::string address = RedisAddrOrDie();
  ASSERT_TRUE(absl::StartsWith(address, "127.0.0.1:")) << address;
  auto client = NewAsync("localhost:" + address.substr(address.find(':') + 1));
  auto replies = RunPipeline(*client, {{"PING"}});
  ASSERT_TRUE(replies.ok()) << replies.status();
  EXPECT_EQ((*replies)[0].str(), "PONG");
}

TEST(AsyncRedisTest, ARefusedConnectFailsAtOnceAndIsNotRetriedForTheBackoff) {
  FakeServer server;  // bound, not listening: connections are refused
  auto client = NewAsync(server.address());
  const absl::Time start = absl::Now();
  client->Post({"PING"});  // cannot connect: dropped, never waited for
  auto first = RunPipeline(*client, {{"PING"}});
  ExpectRedisUnavailable(first.status(), server.address());
  auto second = RunPipeline(*client, {{"PING"}});
  ExpectRedisUnavailable(second.status(), server.address());
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(100));
  EXPECT_THAT(second.status().message(), HasSubstr("not reconnecting"));
  // The server comes up; once the backoff is over, the next pipeline
  // connects.
  server.Listen(8);
  server.Serve(1, "+PONG\r\n");
  absl::SleepFor(AsyncRedis::kReconnectBackoff);
  auto third = RunPipeline(*client, {{"PING"}});
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ((*third)[0].str(), "PONG");
}

TEST(AsyncRedisTest, AKilledConnectionFailsWhatIsInFlightAndTheNextPipelineReconnects) {
  auto client = NewAsync(RedisAddrOrDie());
  auto admin = Admin();
  auto id = RunPipeline(*client, {{"CLIENT", "ID"}});
  ASSERT_TRUE(id.ok()) << id.status();
  const int64_t old_id = (*id)[0].integer();
  // In flight while the server kills the connection: a blocking pop.
  absl::Notification failed;
  absl::Status blocked;
  client->Pipeline({{"BLPOP", Prefix() + "never", "0"}},
                   [&](const absl::StatusOr<std::vector<RedisReply>>& replies) {
                     blocked = replies.status();
                     failed.Notify();
                   });
  // Whether or not the BLPOP has reached the server, it is in flight on the
  // connection killed.
  auto killed = admin->Command({"CLIENT", "KILL", "ID", absl::StrCat(old_id)});
  ASSERT_TRUE(killed.ok()) << killed.status();
  ASSERT_EQ(killed->integer(), 1);
  failed.WaitForNotification();
  ExpectRedisUnavailable(blocked, RedisAddrOrDie());
  auto again = RunPipeline(*client, {{"CLIENT", "ID"}});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_NE((*again)[0].integer(), old_id);
}

TEST(AsyncRedisTest, EveryPipelineIsAnsweredWhileTheConnectionIsKilledAgainAndAgain) {
  // A user of its own, so that the kills hit this client's connections
  // only (other tests share the server).
  auto admin = Admin();
  const std::string p = Prefix();
  const std::string user = p + "victim";
  auto client = AsyncRedis::Create(AclUser(*admin, user, "pw")).value();
  constexpr int kThreads = 4;
  constexpr int kCalls = 2000;
  absl::Mutex mu;
  int answered = 0;
  std::atomic<bool> sending{true};
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int n = 0; n < kCalls; ++n) {
        client->Post({"INCR", absl::StrCat(p, "posted", t)});
        client->Pipeline({{"INCR", absl::StrCat(p, "c", t)}, {"PING"}},
                         [&](const absl::StatusOr<std::vector<RedisReply>>& replies) {
                           absl::MutexLock lock(&mu);
                           ++answered;
                           if (!replies.ok()) {
                             EXPECT_EQ(replies.status().code(), absl::StatusCode::kUnavailable);
                           }
                         });
      }
    });
  }
  // The server drops the connection while the pipelines stream in.
  std::thread killer([&] {
    while (sending.load()) {
      (void)admin->Command({"CLIENT", "KILL", "USER", user});
    }
  });
  for (auto& thread : threads) thread.join();
  {
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(
        +[](int* got) { return *got == kThreads * kCalls; }, &answered));
  }
  // Still being killed, pipelines get through (the burst above may all have
  // waited behind one handshake and died with its connection).
  bool through = false;
  for (const absl::Time give_up = absl::Now() + absl::Seconds(10);
       !through && absl::Now() < give_up;) {
    through = RunPipeline(*client, {{"PING"}}).ok();
  }
  sending.store(false);
  killer.join();
  EXPECT_TRUE(through);
  // And then it works again (after at most one failure and the backoff).
  auto again = RunPipeline(*client, {{"PING"}});
  if (!again.ok()) {
    absl::SleepFor(AsyncRedis::kReconnectBackoff);
    again = RunPipeline(*client, {{"PING"}});
  }
  EXPECT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(admin->Command({"ACL", "DELUSER", user}).ok());
}

TEST(AsyncRedisTest, DestroyingTheClientFailsWhatIsInFlight) {
  FakeServer silent;
  silent.Listen(8);
  auto client = NewAsync(silent.address(), absl::Seconds(30));
  absl::Notification done;
  absl::Status status;
  client->Pipeline({{"PING"}}, [&](const absl::StatusOr<std::vector<RedisReply>>& replies) {
    status = replies.status();
    done.Notify();
  });
  const absl::Time start = absl::Now();
  client.reset();
  ASSERT_TRUE(done.HasBeenNotified());
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_THAT(status.message(), HasSubstr("shutting down"));
}

TEST(AsyncRedisTest, AuthenticatesAndNeverGoesOnAsTheDefaultUser) {
  auto admin = Admin();
  const std::string user = Prefix() + "user";
  RedisOptions options = AclUser(*admin, user, "right");
  auto client = AsyncRedis::Create(options).value();
  auto whoami = RunPipeline(*client, {{"ACL", "WHOAMI"}});
  ASSERT_TRUE(whoami.ok()) << whoami.status();
  EXPECT_EQ((*whoami)[0].str(), user);

  options.password = "wrong";
  // Nothing handed over behind a refused AUTH runs, as any user.
  const std::string key = Prefix() + "never";
  auto refused =
      RunPipeline(*AsyncRedis::Create(options).value(), {{"SET", key, "x"}, {"ACL", "WHOAMI"}});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorReason(refused.status()), "REDIS_AUTH_FAILED");
  EXPECT_THAT(refused.status().message(), HasSubstr("authentication failed"));
  EXPECT_THAT(std::string(refused.status().message()), ::testing::Not(HasSubstr("wrong")));
  auto exists = admin->Command({"EXISTS", key});
  ASSERT_TRUE(exists.ok()) << exists.status();
  EXPECT_EQ(exists->integer(), 0);
  EXPECT_TRUE(admin->Command({"ACL", "DELUSER", user}).ok());
}

TEST(AsyncRedisTest, UnixSocketAddressWorks) {
  const char* run_dir = std::getenv("QUNZU_RUN_DIR");
  ASSERT_NE(run_dir, nullptr) << "QUNZU_RUN_DIR is set by deploy/local/with-servers.sh";
  auto client = NewAsync(absl::StrCat("unix:", run_dir, "/redis.sock"));
  auto replies = RunPipeline(*client, {{"PING"}});
  ASSERT_TRUE(replies.ok()) << replies.status();
  EXPECT_EQ((*replies)[0].str(), "PONG");
}

}  // namespace
}  // namespace qunzu
