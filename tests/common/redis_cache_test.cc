// The non-blocking client's RESP reader and its client-side cache: replies
// of every RESP3 type from a fake server, bytes that are not RESP, and the
// cache against the test Redis — answered from the cache, invalidated by a
// change made through another connection before the next pipeline, read
// again when the change comes while the pipeline is in flight, emptied
// when the connection drops, refused credentials.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/redis_async.h"
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

absl::StatusOr<std::vector<RedisReply>> RunPipeline(AsyncRedis& client,
                                                    std::vector<RedisCommand> commands,
                                                    std::vector<bool> cacheable = {}) {
  absl::Notification done;
  absl::StatusOr<std::vector<RedisReply>> result;
  client.Pipeline(std::move(commands), std::move(cacheable),
                  [&](absl::StatusOr<std::vector<RedisReply>> replies) {
                    result = std::move(replies);
                    done.Notify();
                  });
  done.WaitForNotification();
  return result;
}

std::unique_ptr<AsyncRedis> Cached(const RedisOptions& options, size_t entries = 1000) {
  AsyncRedis::Options client;
  client.cache_entries = entries;
  return AsyncRedis::Create(options, std::move(client)).value();
}

RedisOptions TestRedis() {
  RedisOptions options;
  options.address = RedisAddrOrDie();
  return options;
}

std::unique_ptr<RedisClient> Admin() { return RedisClient::Create(TestRedis()).value(); }

std::string Key(const std::string& what) { return "{" + UniqueName("redis-cache") + "}:" + what; }

// A fake server that, once `commands` commands have come, writes `replies`
// in pieces of `piece` bytes (each its own write).
absl::StatusOr<std::vector<RedisReply>> AgainstFake(int commands, const std::string& replies,
                                                    size_t piece = 0) {
  FakeServer server;
  server.Listen(1);
  std::thread serve([&] {
    const int peer = server.Accept();
    std::string received;
    EXPECT_TRUE(FakeServer::ReadCommands(peer, commands, &received));
    const size_t step = piece == 0 ? replies.size() : piece;
    for (size_t at = 0; at < replies.size(); at += step) {
      const size_t n = std::min(step, replies.size() - at);
      EXPECT_EQ(write(peer, replies.data() + at, n), static_cast<ssize_t>(n));
      // Paced so that the pieces reach the client apart (not a wait for
      // any condition).
      if (piece != 0) absl::SleepFor(absl::Milliseconds(1));
    }
    // Held open until the client has read (or refused) what it got.
    char byte = 0;
    (void)!read(peer, &byte, 1);
    close(peer);
  });
  RedisOptions options;
  options.address = server.address();
  auto client = AsyncRedis::Create(options).value();
  std::vector<RedisCommand> sent(static_cast<size_t>(commands), RedisCommand{"PING"});
  auto result = RunPipeline(*client, std::move(sent));
  client.reset();  // closes the connection: the fake's read returns
  serve.join();
  return result;
}

TEST(AsyncRedisRespTest, EveryRespThreeTypeBecomesAReply) {
  static constexpr char kReplies[] =
      "%2\r\n+a\r\n:1\r\n$1\r\nb\r\n_\r\n"  // map: keys and values in turn
      "~2\r\n:1\r\n:2\r\n"                  // set
      "#t\r\n#f\r\n"                        // booleans
      ",3.25\r\n"                           // double
      "(12345678901234567890\r\n"           // big number
      "=7\r\ntxt:abc\r\n"                   // verbatim: the format dropped
      "!5\r\nOOPS!\r\n"                     // blob error
      "_\r\n"                               // null
      "|1\r\n+ttl\r\n:3\r\n$2\r\nhi\r\n"    // an attribute, then its reply
      ">2\r\n$7\r\nmessage\r\n$1\r\nx\r\n"  // a push that is not an invalidation
      "$3\r\nb\0c\r\n"                      // binary-safe
      "*-1\r\n"                             // RESP2 null array
      "$-1\r\n";                            // RESP2 null bulk
  auto replies = AgainstFake(12, std::string(kReplies, sizeof(kReplies) - 1));
  ASSERT_TRUE(replies.ok()) << replies.status();
  ASSERT_EQ(replies->size(), 12u);
  const std::vector<RedisReply>& r = *replies;
  ASSERT_EQ(r[0].elements().size(), 4u);
  EXPECT_EQ(r[0].elements()[0].str(), "a");
  EXPECT_EQ(r[0].elements()[1].integer(), 1);
  EXPECT_EQ(r[0].elements()[2].str(), "b");
  EXPECT_TRUE(r[0].elements()[3].is_nil());
  EXPECT_EQ(r[1].elements().size(), 2u);
  EXPECT_EQ(r[2].integer(), 1);
  EXPECT_EQ(r[3].integer(), 0);
  EXPECT_EQ(r[4].str(), "3.25");
  EXPECT_EQ(r[5].str(), "12345678901234567890");
  EXPECT_EQ(r[6].str(), "abc");
  EXPECT_TRUE(r[7].is_error());
  EXPECT_EQ(r[7].str(), "OOPS!");
  EXPECT_TRUE(r[8].is_nil());
  EXPECT_EQ(r[9].str(), "hi");
  EXPECT_EQ(r[10].str(), std::string("b\0c", 3));
  EXPECT_TRUE(r[11].is_nil());
}

TEST(AsyncRedisRespTest, BytesThatAreNotRespDropTheConnection) {
  for (const std::string bad : {"?what\r\n", ":12x\r\n", "$3\r\nabcde\r\n", "#x\r\n",
                                "=2\r\nab\r\n", "*1\r\n>1\r\n:1\r\n", "*-2\r\n", "!-1\r\n"}) {
    SCOPED_TRACE(bad);
    auto replies = AgainstFake(1, bad);
    EXPECT_EQ(replies.status().code(), absl::StatusCode::kUnavailable) << replies.status();
    EXPECT_THAT(replies.status().message(), HasSubstr("protocol error"));
  }
}

TEST(AsyncRedisRespTest, AReplySplitAcrossReadsIsPutTogether) {
  auto replies = AgainstFake(1, "*2\r\n$5\r\nhello\r\n:42\r\n", 1);
  ASSERT_TRUE(replies.ok()) << replies.status();
  ASSERT_EQ((*replies)[0].elements().size(), 2u);
  EXPECT_EQ((*replies)[0].elements()[0].str(), "hello");
  EXPECT_EQ((*replies)[0].elements()[1].integer(), 42);
}

// A random reply of every RESP2/RESP3 type, nested up to `depth`, as bytes
// (appended to wire) and as the RedisReply it must become.
RedisReply RandomReply(std::mt19937& random, int depth, std::string* wire) {
  auto pick = [&](int n) { return static_cast<int>(random() % static_cast<unsigned>(n)); };
  auto text = [&] {
    std::string t;
    const int n = pick(12);
    for (int i = 0; i < n; ++i) t.push_back(static_cast<char>('a' + pick(26)));
    return t;
  };
  const int which = pick(depth > 0 ? 14 : 10);
  switch (which) {
    case 0: {
      const std::string t = text();
      absl::StrAppend(wire, "+", t, "\r\n");
      return RedisReply::Status(t);
    }
    case 1: {
      const std::string t = "ERR " + text();
      absl::StrAppend(wire, "-", t, "\r\n");
      return RedisReply::Error(t);
    }
    case 2: {
      const int64_t n = static_cast<int64_t>(random()) - (int64_t{1} << 31);
      absl::StrAppend(wire, ":", n, "\r\n");
      return RedisReply::Integer(n);
    }
    case 3: {
      // Binary-safe, "\r\n" inside included.
      std::string t = text() + (pick(2) == 0 ? std::string("\r\n\0", 3) : "") + text();
      absl::StrAppend(wire, "$", t.size(), "\r\n", t, "\r\n");
      return RedisReply::String(t);
    }
    case 4:
      absl::StrAppend(wire, pick(2) == 0 ? "$-1\r\n" : "_\r\n");
      return RedisReply::Nil();
    case 5: {
      const bool yes = pick(2) == 0;
      absl::StrAppend(wire, yes ? "#t\r\n" : "#f\r\n");
      return RedisReply::Integer(yes ? 1 : 0);
    }
    case 6: {
      const std::string t = absl::StrCat(pick(1000), ".", pick(100));
      absl::StrAppend(wire, pick(2) == 0 ? "," : "(", t, "\r\n");
      return RedisReply::String(t);
    }
    case 7: {
      const std::string t = text();
      absl::StrAppend(wire, "=", t.size() + 4, "\r\ntxt:", t, "\r\n");
      return RedisReply::String(t);
    }
    case 8: {
      const std::string t = text();
      absl::StrAppend(wire, "!", t.size(), "\r\n", t, "\r\n");
      return RedisReply::Error(t);
    }
    case 9:
      absl::StrAppend(wire, "*-1\r\n");
      return RedisReply::Nil();
    case 10:
    case 11:
    case 12: {
      // An array or a set of n, or a map of n pairs.
      const bool map = which == 12;
      const int n = pick(map ? 4 : 5);
      absl::StrAppend(wire, map ? "%" : (pick(2) == 0 ? "*" : "~"), n, "\r\n");
      std::vector<RedisReply> elements;
      elements.reserve(static_cast<size_t>(map ? 2 * n : n));
      for (int i = 0; i < (map ? 2 * n : n); ++i) {
        elements.push_back(RandomReply(random, depth - 1, wire));
      }
      return RedisReply::Array(std::move(elements));
    }
    default: {
      // Attributes, skipped: what counts is the reply after them.
      const int n = pick(3);
      absl::StrAppend(wire, "|", n, "\r\n");
      for (int i = 0; i < 2 * n; ++i) RandomReply(random, depth - 1, wire);
      return RandomReply(random, depth - 1, wire);
    }
  }
}

TEST(AsyncRedisRespTest, RandomRepliesCutAnywhereArriveAsSent) {
  for (uint32_t seed = 1; seed <= 12; ++seed) {
    SCOPED_TRACE(seed);
    std::mt19937 random(seed);
    std::string wire;
    std::vector<RedisReply> expected;
    expected.reserve(40);
    for (int i = 0; i < 40; ++i) expected.push_back(RandomReply(random, 3, &wire));
    auto replies = AgainstFake(40, wire, 1 + random() % 97);
    ASSERT_TRUE(replies.ok()) << replies.status();
    ASSERT_EQ(replies->size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
      ASSERT_EQ((*replies)[i].DebugString(), expected[i].DebugString()) << i;
    }
  }
}

TEST(AsyncRedisRespTest, RepliesLargerThanOneReadAndManyAtOnceArriveWhole) {
  auto admin = Admin();
  const std::string key = Key("large");
  std::string value(size_t{300} * 1024, 'x');
  for (size_t i = 0; i < value.size(); i += 997) value[i] = static_cast<char>('a' + i % 26);
  ASSERT_TRUE(admin->Command({"SET", key, value}).ok());
  for (const size_t cache : {size_t{0}, size_t{100}}) {
    SCOPED_TRACE(cache);
    auto client = Cached(TestRedis(), cache);
    std::vector<RedisCommand> commands;
    commands.reserve(1001);
    commands.push_back({"GET", key});
    for (int i = 0; i < 1000; ++i) commands.push_back({"ECHO", absl::StrCat(i)});
    auto replies = RunPipeline(*client, commands);
    ASSERT_TRUE(replies.ok()) << replies.status();
    ASSERT_EQ(replies->size(), 1001u);
    EXPECT_EQ((*replies)[0].str(), value);
    for (int i = 0; i < 1000; ++i) ASSERT_EQ((*replies)[i + 1].str(), absl::StrCat(i));
  }
}

TEST(AsyncRedisRespTest, AggregatesOfManyElementsOverManyReadsArriveWhole) {
  // ~2.4 MB of array and ~4 MB of map (RESP3 with the cache, RESP2
  // without): dozens of reads each, framed once across them.
  auto admin = Admin();
  const std::string list = Key("list");
  const std::string hash = Key("hash");
  constexpr int kElements = 200000;
  for (int start = 0; start < kElements; start += 10000) {
    RedisCommand push = {"RPUSH", list};
    RedisCommand set = {"HSET", hash};
    for (int i = start; i < start + 10000; ++i) {
      push.push_back(absl::StrCat("item-", i));
      set.push_back(absl::StrCat("field-", i));
      set.push_back(absl::StrCat(i));
    }
    ASSERT_TRUE(admin->Command(push).ok());
    ASSERT_TRUE(admin->Command(set).ok());
  }
  for (const size_t cache : {size_t{0}, size_t{100}}) {
    SCOPED_TRACE(cache);
    auto client = Cached(TestRedis(), cache);
    auto replies =
        RunPipeline(*client, {{"LRANGE", list, "0", "-1"}, {"HGETALL", hash}}, {true, true});
    ASSERT_TRUE(replies.ok()) << replies.status();
    const std::vector<RedisReply>& items = (*replies)[0].elements();
    ASSERT_EQ(items.size(), static_cast<size_t>(kElements));
    for (int i = 0; i < kElements; ++i) ASSERT_EQ(items[i].str(), absl::StrCat("item-", i));
    const std::vector<RedisReply>& pairs = (*replies)[1].elements();
    ASSERT_EQ(pairs.size(), static_cast<size_t>(2 * kElements));
    std::vector<bool> seen(kElements);
    for (size_t i = 0; i < pairs.size(); i += 2) {
      int n = 0;
      ASSERT_TRUE(absl::SimpleAtoi(pairs[i + 1].str(), &n));
      ASSERT_GE(n, 0);
      ASSERT_LT(n, kElements);
      ASSERT_EQ(pairs[i].str(), absl::StrCat("field-", n));
      seen[n] = true;
    }
    EXPECT_EQ(std::count(seen.begin(), seen.end(), true), kElements);
  }
}

TEST(AsyncRedisCacheTest, ACachedReadIsAnsweredUntilItsKeyChangesThroughAnyConnection) {
  auto admin = Admin();
  const std::string key = Key("blacklist");
  const std::string other = Key("other");
  const std::string hash = Key("group");
  ASSERT_TRUE(admin->Command({"SET", key, "v1"}).ok());
  ASSERT_TRUE(admin->Command({"HSET", hash, "state", "ACTIVE", "tier", "SMALL"}).ok());
  auto client = Cached(TestRedis());
  const std::vector<RedisCommand> reads = {
      {"GET", key}, {"HGET", hash, "state"}, {"HMGET", hash, "state", "tier"}, {"INCR", other}};
  const std::vector<bool> cacheable = {true, true, true, false};

  auto first = RunPipeline(*client, reads, cacheable);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ((*first)[0].str(), "v1");
  AsyncRedis::CacheStats stats = client->cache_stats();
  EXPECT_EQ(stats.misses, 3);
  EXPECT_EQ(stats.hits, 0);
  EXPECT_EQ(stats.entries, 3);

  // Cached: the same replies; the uncached INCR still ran.
  auto second = RunPipeline(*client, reads, cacheable);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ((*second)[0].str(), "v1");
  EXPECT_EQ((*second)[1].str(), "ACTIVE");
  ASSERT_EQ((*second)[2].elements().size(), 2u);
  EXPECT_EQ((*second)[2].elements()[1].str(), "SMALL");
  EXPECT_EQ((*second)[3].integer(), 2);
  stats = client->cache_stats();
  EXPECT_EQ(stats.hits, 3);
  EXPECT_EQ(stats.misses, 3);

  // A change made through another connection, finished before the next
  // pipeline is handed over, is seen by it: the invalidation came first.
  ASSERT_TRUE(admin->Command({"SET", key, "v2"}).ok());
  ASSERT_TRUE(admin->Command({"HSET", hash, "tier", "LARGE"}).ok());
  auto third = RunPipeline(*client, reads, cacheable);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ((*third)[0].str(), "v2");
  EXPECT_EQ((*third)[2].elements()[1].str(), "LARGE");
  EXPECT_EQ((*third)[1].str(), "ACTIVE");  // read again with its hash
  stats = client->cache_stats();
  EXPECT_EQ(stats.invalidations, 2);
  // Read from Redis again: when handed over (the invalidations already
  // read) or when its replies came (they came just before).
  EXPECT_EQ(stats.misses + stats.rereads, 6);
  EXPECT_EQ(stats.hits, 3);

  // A key that expires is a change too; a deleted one reads nil.
  ASSERT_TRUE(admin->Command({"DEL", key}).ok());
  auto fourth = RunPipeline(*client, reads, cacheable);
  ASSERT_TRUE(fourth.ok()) << fourth.status();
  EXPECT_TRUE((*fourth)[0].is_nil());
  auto fifth = RunPipeline(*client, reads, cacheable);
  ASSERT_TRUE(fifth.ok()) << fifth.status();
  EXPECT_TRUE((*fifth)[0].is_nil());  // nil is cached as well
  EXPECT_EQ(client->cache_stats().hits, stats.hits + 2 + 3);

  // Commands not marked, and clients without a cache, always read.
  auto unmarked = RunPipeline(*client, {{"GET", key}});
  ASSERT_TRUE(unmarked.ok()) << unmarked.status();
  auto uncached = AsyncRedis::Create(TestRedis()).value();
  ASSERT_TRUE(RunPipeline(*uncached, reads, cacheable).ok());
  ASSERT_TRUE(RunPipeline(*uncached, reads, cacheable).ok());
  EXPECT_EQ(uncached->cache_stats().hits, 0);
  EXPECT_EQ(uncached->cache_stats().entries, 0);
}

TEST(AsyncRedisCacheTest, AReplyWhoseKeyChangesWhileItsPipelineIsInFlightIsReadAgain) {
  auto admin = Admin();
  const std::string key = Key("state");
  const std::string list = Key("wake");
  ASSERT_TRUE(admin->Command({"SET", key, "old"}).ok());
  auto client = Cached(TestRedis());
  ASSERT_TRUE(RunPipeline(*client, {{"GET", key}}, {true}).ok());  // cached now

  // Handed over while cached; Redis blocks on the BLPOP until the key has
  // changed, so the invalidation comes before the pipeline's own reply.
  absl::Notification done;
  absl::StatusOr<std::vector<RedisReply>> result;
  client->Pipeline({{"GET", key}, {"BLPOP", list, "5"}}, {true, false},
                   [&](absl::StatusOr<std::vector<RedisReply>> replies) {
                     result = std::move(replies);
                     done.Notify();
                   });
  ASSERT_TRUE(admin->Command({"SET", key, "new"}).ok());
  ASSERT_TRUE(admin->Command({"RPUSH", list, "go"}).ok());
  done.WaitForNotification();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ((*result)[0].str(), "new");
  ASSERT_EQ((*result)[1].elements().size(), 2u);
  const AsyncRedis::CacheStats stats = client->cache_stats();
  EXPECT_EQ(stats.rereads, 1);
  EXPECT_EQ(stats.invalidations, 1);
}

TEST(AsyncRedisCacheTest, APipelineOfCachedReadsAloneStillWaitsForTheInvalidationsBeforeIt) {
  auto admin = Admin();
  const std::string key = Key("only");
  ASSERT_TRUE(admin->Command({"SET", key, "1"}).ok());
  auto client = Cached(TestRedis());
  for (int i = 2; i <= 50; ++i) {
    ASSERT_TRUE(RunPipeline(*client, {{"GET", key}}, {true}).ok());
    ASSERT_TRUE(admin->Command({"SET", key, absl::StrCat(i)}).ok());
    auto read = RunPipeline(*client, {{"GET", key}}, {true});
    ASSERT_TRUE(read.ok()) << read.status();
    ASSERT_EQ((*read)[0].str(), absl::StrCat(i));
  }
}

TEST(AsyncRedisCacheTest, ADroppedConnectionEmptiesTheCache) {
  auto admin = Admin();
  const std::string key = Key("dropped");
  ASSERT_TRUE(admin->Command({"SET", key, "before"}).ok());
  auto client = Cached(TestRedis());
  auto id = RunPipeline(*client, {{"GET", key}, {"CLIENT", "ID"}}, {true, false});
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_EQ(client->cache_stats().entries, 1);
  ASSERT_TRUE(admin->Command({"CLIENT", "KILL", "ID", absl::StrCat((*id)[1].integer())}).ok());
  // Changed while no connection tracked it: no invalidation will ever come.
  ASSERT_TRUE(admin->Command({"SET", key, "after"}).ok());
  // The first pipeline may meet the dead connection; the next reconnects.
  absl::StatusOr<std::vector<RedisReply>> read = RunPipeline(*client, {{"GET", key}}, {true});
  if (!read.ok()) {
    ExpectRedisUnavailable(read.status(), RedisAddrOrDie());
    read = RunPipeline(*client, {{"GET", key}}, {true});
  }
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ((*read)[0].str(), "after");
  EXPECT_GE(client->cache_stats().flushes, 1);
}

TEST(AsyncRedisCacheTest, AFullCacheStartsAgainEmpty) {
  auto admin = Admin();
  auto client = Cached(TestRedis(), 4);
  std::vector<RedisCommand> reads;
  reads.reserve(6);
  for (int i = 0; i < 6; ++i) reads.push_back({"GET", Key(absl::StrCat("k", i))});
  ASSERT_TRUE(RunPipeline(*client, reads, std::vector<bool>(reads.size(), true)).ok());
  const AsyncRedis::CacheStats stats = client->cache_stats();
  EXPECT_LE(stats.entries, 4);
  EXPECT_EQ(stats.flushes, 1);
}

TEST(AsyncRedisCacheTest, ItsCountsAreReportedFromTheLoopThread) {
  auto admin = Admin();
  const std::string key = Key("reported");
  ASSERT_TRUE(admin->Command({"SET", key, "1"}).ok());
  absl::Mutex mu;
  AsyncRedis::CacheStats reported;
  AsyncRedis::Options options;
  options.cache_entries = 100;
  options.cache_stats = [&](const AsyncRedis::CacheStats& stats) {
    absl::MutexLock lock(&mu);
    reported = stats;
  };
  auto client = AsyncRedis::Create(TestRedis(), std::move(options)).value();
  ASSERT_TRUE(RunPipeline(*client, {{"GET", key}}, {true}).ok());
  ASSERT_TRUE(RunPipeline(*client, {{"GET", key}}, {true}).ok());
  absl::MutexLock lock(&mu);
  // Within about kCacheStatsInterval.
  EXPECT_TRUE(mu.AwaitWithTimeout(
      absl::Condition(
          +[](AsyncRedis::CacheStats* s) { return s->hits == 1 && s->misses == 1; }, &reported),
      absl::Seconds(5)));
  EXPECT_EQ(reported.entries, 1);
}

TEST(AsyncRedisCacheTest, ARedisWithoutRespThreeIsRefusedSayingWhy) {
  FakeServer server;
  server.Listen(1);
  std::thread serve([&] {
    const int peer = server.Accept();
    std::string received;
    // HELLO and CLIENT TRACKING come alone, before anything else.
    EXPECT_TRUE(FakeServer::ReadCommands(peer, 2, &received));
    EXPECT_EQ(received.find("GET"), std::string::npos);
    const std::string refused =
        "-ERR unknown command 'HELLO', with args beginning with: '3'\r\n-ERR unknown "
        "command\r\n";
    EXPECT_EQ(write(peer, refused.data(), refused.size()), static_cast<ssize_t>(refused.size()));
    char byte = 0;
    (void)!read(peer, &byte, 1);
    close(peer);
  });
  RedisOptions options;
  options.address = server.address();
  auto client = Cached(options);
  auto replies = RunPipeline(*client, {{"GET", "k"}}, {true});
  client.reset();
  serve.join();
  EXPECT_EQ(replies.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorReason(replies.status()), "REDIS_UNSUPPORTED");
  EXPECT_THAT(replies.status().message(), HasSubstr("RESP3"));
}

TEST(AsyncRedisCacheTest, RefusedCredentialsFailTheHandshakeAndNothingRunsAsTheDefaultUser) {
  auto admin = Admin();
  const std::string user = "{" + UniqueName("redis-cache") + "}:user";
  ASSERT_TRUE(admin->Command({"ACL", "SETUSER", user, "on", ">right", "~*", "+@all"}).ok());
  RedisOptions options = TestRedis();
  options.username = user;
  options.password = "right";
  auto client = Cached(options);
  auto whoami = RunPipeline(*client, {{"ACL", "WHOAMI"}});
  ASSERT_TRUE(whoami.ok()) << whoami.status();
  EXPECT_EQ((*whoami)[0].str(), user);

  const std::string key = Key("never");
  options.password = "wrong";
  auto refused = RunPipeline(*Cached(options), {{"SET", key, "x"}});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorReason(refused.status()), "REDIS_AUTH_FAILED");
  EXPECT_THAT(std::string(refused.status().message()), ::testing::Not(HasSubstr("wrong")));
  auto exists = admin->Command({"EXISTS", key});
  ASSERT_TRUE(exists.ok());
  EXPECT_EQ(exists->integer(), 0);
  EXPECT_TRUE(admin->Command({"ACL", "DELUSER", user}).ok());
}

}  // namespace
}  // namespace qunzu
