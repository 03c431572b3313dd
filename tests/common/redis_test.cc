#include "common/redis.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
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
using ::testing::Not;

std::unique_ptr<RedisClient> NewClient(const std::string& address, int pool_size = 4) {
  RedisOptions options;
  options.address = address;
  options.pool_size = pool_size;
  options.connect_timeout = absl::Milliseconds(500);
  options.command_timeout = absl::Milliseconds(500);
  auto client = RedisClient::Create(options);
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? *std::move(client) : nullptr;
}

// A "{t:...}:" key prefix unique to this test run (one hash slot).
std::string Prefix() { return "{" + UniqueName("redis") + "}:"; }

TEST(ParseRedisAddressTest, AcceptsTcpIpv6AndUnix) {
  auto tcp = ParseRedisAddress("redis.example:6380");
  ASSERT_TRUE(tcp.ok()) << tcp.status();
  EXPECT_EQ(tcp->host, "redis.example");
  EXPECT_EQ(tcp->port, 6380);
  auto v6 = ParseRedisAddress("[::1]:6379");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->host, "::1");
  auto unix_socket = ParseRedisAddress("unix:/run/redis.sock");
  ASSERT_TRUE(unix_socket.ok()) << unix_socket.status();
  EXPECT_EQ(unix_socket->unix_path, "/run/redis.sock");
  EXPECT_EQ(unix_socket->port, 0);
}

TEST(ParseRedisAddressTest, RejectsMalformedAddressesNamingThem) {
  for (const char* bad : {"", "localhost", "localhost:", ":6379", "host:0", "host:65536",
                          "host:12x", "::1:6379", "[::1]6379", "unix:", "two words:1"}) {
    auto parsed = ParseRedisAddress(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(ErrorMetadata(parsed.status(), "field"), "redis_address");
    EXPECT_THAT(parsed.status().message(), HasSubstr(absl::StrCat("\"", bad, "\""))) << bad;
  }
}

TEST(RedisClientTest, CreateValidatesOptionsWithoutConnecting) {
  RedisOptions options;
  options.address = "127.0.0.1:1";  // nothing listens there; Create must not care
  EXPECT_TRUE(RedisClient::Create(options).ok());
  options.pool_size = 0;
  EXPECT_EQ(RedisClient::Create(options).status().code(), absl::StatusCode::kInvalidArgument);
  options.pool_size = 1;
  options.command_timeout = absl::ZeroDuration();
  EXPECT_EQ(RedisClient::Create(options).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(RedisReplyTest, AccessorsCheckTypes) {
  EXPECT_EQ(*RedisReply::String("42").AsInteger(), 42);
  EXPECT_EQ(*RedisReply::Integer(7).AsInteger(), 7);
  EXPECT_EQ(*RedisReply::Status("OK").AsString(), "OK");
  EXPECT_EQ(*RedisReply::Nil().AsOptionalString(), std::nullopt);
  EXPECT_EQ(ErrorReason(RedisReply::Integer(1).AsString().status()), "REDIS_UNEXPECTED_REPLY");
  EXPECT_EQ(ErrorReason(RedisReply::Error("ERR x").AsString().status()), "REDIS_ERROR");
  EXPECT_EQ(RedisReply::Array({RedisReply::Integer(1), RedisReply::Nil()}).DebugString(),
            "[(integer) 1, (nil)]");
}

TEST(RedisClientTest, CommandRoundTripAndErrorReply) {
  auto client = NewClient(RedisAddrOrDie());
  const std::string key = Prefix() + "k";
  ASSERT_TRUE(client->Ping().ok());
  ASSERT_TRUE(client->Command({"SET", key, "v1"}).ok());
  auto got = client->Command({"GET", key});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got->AsString(), "v1");
  auto missing = client->Command({"GET", key + "-missing"});
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_TRUE(missing->is_nil());

  auto bad = client->Command({"INCR", key});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(ErrorReason(bad.status()), "REDIS_ERROR");
  EXPECT_THAT(bad.status().message(), HasSubstr("not an integer"));
  EXPECT_TRUE(client->Ping().ok()) << "an error reply must not cost the connection";
}

TEST(RedisClientTest, AuthenticatesAsAnAclUserAndRefusesWrongCredentials) {
  // An ACL user of its own on the shared test server; the default user,
  // which every other test uses, stays as it is.
  auto admin = NewClient(RedisAddrOrDie());
  const std::string user = Prefix() + "user";
  const std::string password = "s3cret pass";
  ASSERT_TRUE(admin->Command({"ACL", "SETUSER", user, "on", ">" + password, "~*", "+@all"}).ok());

  RedisOptions options;
  options.address = RedisAddrOrDie();
  options.username = user;
  options.password = password;
  auto client = RedisClient::Create(options).value();
  ASSERT_TRUE(client->Ping().ok());
  auto whoami = client->Command({"ACL", "WHOAMI"});
  ASSERT_TRUE(whoami.ok()) << whoami.status();
  EXPECT_EQ(*whoami->AsString(), user);

  options.password = "wrong password";
  auto refused = RedisClient::Create(options).value()->Ping();
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorReason(refused), "REDIS_AUTH_FAILED");
  EXPECT_THAT(std::string(refused.message()), Not(HasSubstr("wrong password")));
  EXPECT_THAT(std::string(refused.message()), Not(HasSubstr(user)));
  EXPECT_TRUE(admin->Command({"ACL", "DELUSER", user}).ok());
}

TEST(RedisClientTest, ValuesAndKeysAreBinarySafe) {
  auto client = NewClient(RedisAddrOrDie());
  constexpr char kKey[] = "bin\0key \r\n";
  constexpr char kValue[] = "\0\r\n$3\r\n\xff\xfe*1\r\n";  // NUL, CRLF and RESP look-alikes
  const std::string key = Prefix() + std::string(kKey, sizeof(kKey) - 1);
  std::string value(kValue, sizeof(kValue) - 1);
  value += std::string(1 << 20, '\x80');
  ASSERT_TRUE(client->Command({"SET", key, value}).ok());
  auto got = client->Command({"GET", key});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->str().size(), value.size());
  EXPECT_TRUE(got->str() == value);
}

TEST(RedisClientTest, PipelineReturnsEveryReplyInOrderWithErrorsInTheirSlots) {
  auto client = NewClient(RedisAddrOrDie());
  const std::string p = Prefix();
  auto replies = client->Pipeline({{"SET", p + "a", "x"},
                                   {"INCR", p + "n"},
                                   {"INCRBY", p + "n", "41"},
                                   {"INCR", p + "a"},
                                   {"MGET", p + "a", p + "none"}});
  ASSERT_TRUE(replies.ok()) << replies.status();
  ASSERT_EQ(replies->size(), 5u);
  EXPECT_EQ((*replies)[0].type(), RedisReply::Type::kStatus);
  EXPECT_EQ((*replies)[1].integer(), 1);
  EXPECT_EQ((*replies)[2].integer(), 42);
  EXPECT_TRUE((*replies)[3].is_error());
  EXPECT_EQ((*replies)[4].DebugString(), "[\"x\", (nil)]");
  EXPECT_TRUE(client->Pipeline({})->empty());
}

TEST(RedisClientTest, PipelineSendsEverythingBeforeReadingAnyReply) {
  // The fake answers only after all three commands arrived: a client that
  // waited for each reply before sending the next would time out.
  FakeServer server;
  server.Listen(8);
  server.Serve(3, "+OK\r\n");
  auto client = NewClient(server.address());
  auto replies = client->Pipeline({{"SET", "a", "1"}, {"SET", "b", "2"}, {"SET", "c", "3"}});
  ASSERT_TRUE(replies.ok()) << replies.status();
  EXPECT_EQ(replies->size(), 3u);
}

TEST(RedisClientTest, EvalRunsBySha1AndFallsBackAfterScriptFlush) {
  auto client = NewClient(RedisAddrOrDie());
  const std::string p = Prefix();
  static const RedisScript script(
      "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('INCRBY', KEYS[2], ARGV[2])");
  auto first = client->Eval(script, {p + "s", p + "n"}, {"v", "5"});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->integer(), 5);
  auto cached = client->Command({"SCRIPT", "EXISTS", script.sha1()});
  ASSERT_TRUE(cached.ok()) << cached.status();
  EXPECT_EQ(cached->DebugString(), "[(integer) 1]");

  ASSERT_TRUE(client->Command({"SCRIPT", "FLUSH"}).ok());
  auto after_flush = client->Eval(script, {p + "s", p + "n"}, {"v", "2"});
  ASSERT_TRUE(after_flush.ok()) << after_flush.status();
  EXPECT_EQ(after_flush->integer(), 7);
  EXPECT_EQ(client->Command({"SCRIPT", "EXISTS", script.sha1()})->DebugString(), "[(integer) 1]");
}

TEST(RedisClientTest, EvalScriptErrorIsRedisError) {
  auto client = NewClient(RedisAddrOrDie());
  RedisScript script("return redis.error_reply('CAP_REACHED')");
  auto result = client->Eval(script, {}, {});
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(ErrorReason(result.status()), "REDIS_ERROR");
  EXPECT_THAT(result.status().message(), HasSubstr("CAP_REACHED"));
}

TEST(RedisClientTest, ConcurrentUseFromEightThreads) {
  auto client = NewClient(RedisAddrOrDie(), 3);
  const std::string p = Prefix();
  std::vector<std::thread> threads;
  threads.reserve(8);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      const std::string own = p + "own" + std::to_string(t);
      for (int i = 0; i < 100; ++i) {
        auto replies = client->Pipeline({{"INCR", p + "shared"}, {"SET", own, std::to_string(i)}});
        ASSERT_TRUE(replies.ok()) << replies.status();
        auto got = client->Command({"GET", own});
        ASSERT_TRUE(got.ok()) << got.status();
        ASSERT_EQ(*got->AsInteger(), i);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(*client->Command({"GET", p + "shared"})->AsInteger(), 800);
}

TEST(RedisClientTest, RefusedPortIsUnavailableAtOnce) {
  FakeServer closed;  // bound, not listening: connections are refused
  auto client = NewClient(closed.address());
  const absl::Time start = absl::Now();
  ExpectRedisUnavailable(client->Ping(), closed.address());
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(500));
}

TEST(RedisClientTest, UnresolvableHostIsUnavailableWithinTheTimeout) {
  auto client = NewClient("no-such-host.invalid:6379");
  const absl::Time start = absl::Now();
  ExpectRedisUnavailable(client->Ping(), "no-such-host.invalid:6379");
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(1500));
}

TEST(RedisClientTest, SilentServerTimesOutAsUnavailable) {
  FakeServer silent;
  silent.Listen(8);  // the kernel completes connects; nobody ever answers
  auto client = NewClient(silent.address());
  const absl::Time start = absl::Now();
  absl::Status status = client->Ping();
  const absl::Duration elapsed = absl::Now() - start;
  ExpectRedisUnavailable(status, silent.address());
  EXPECT_THAT(status.message(), HasSubstr("timed out"));
  EXPECT_GE(elapsed, absl::Milliseconds(450));
  EXPECT_LT(elapsed, absl::Milliseconds(1500));
}

TEST(RedisClientTest, ConnectTimeoutBoundsAHangingConnect) {
  // With backlog 0 and one connection already queued, Linux drops further
  // SYNs, so a connect hangs until the client gives up.
  FakeServer full;
  full.Listen(0);
  int queued = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(full.port()));
  ASSERT_EQ(connect(queued, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  auto client = NewClient(full.address());
  const absl::Time start = absl::Now();
  absl::Status status = client->Ping();
  const absl::Duration elapsed = absl::Now() - start;
  close(queued);
  ExpectRedisUnavailable(status, full.address());
  EXPECT_GE(elapsed, absl::Milliseconds(450));
  EXPECT_LT(elapsed, absl::Milliseconds(1500));
}

TEST(RedisClientTest, WorksAgainWhenTheServerComesBack) {
  FakeServer server;
  auto client = NewClient(server.address());
  ExpectRedisUnavailable(client->Ping(), server.address());
  server.Listen(8);
  server.Serve(1, "+PONG\r\n");
  EXPECT_TRUE(client->Ping().ok());
}

absl::StatusOr<int64_t> ClientId(RedisClient& client) {
  auto reply = client.Command({"CLIENT", "ID"});
  if (!reply.ok()) return reply.status();
  return reply->AsInteger();
}

TEST(RedisClientTest, ReconnectsAfterTheServerKillsTheConnection) {
  auto victim = NewClient(RedisAddrOrDie(), 1);
  auto admin = NewClient(RedisAddrOrDie(), 1);
  auto old_id = ClientId(*victim);
  ASSERT_TRUE(old_id.ok()) << old_id.status();
  auto killed = admin->Command({"CLIENT", "KILL", "ID", std::to_string(*old_id)});
  ASSERT_TRUE(killed.ok()) << killed.status();
  ASSERT_EQ(killed->integer(), 1);

  // The documented contract: the next call succeeds on a new connection, or,
  // if the close raced it, fails once with UNAVAILABLE and the one after
  // succeeds.
  auto new_id = ClientId(*victim);
  if (!new_id.ok()) {
    ExpectRedisUnavailable(new_id.status(), RedisAddrOrDie());
    new_id = ClientId(*victim);
  }
  ASSERT_TRUE(new_id.ok()) << new_id.status();
  EXPECT_NE(*new_id, *old_id);
}

TEST(RedisClientTest, UnixSocketAddressWorks) {
  const char* run_dir = std::getenv("QUNZU_RUN_DIR");
  ASSERT_NE(run_dir, nullptr) << "QUNZU_RUN_DIR is set by deploy/local/with-servers.sh";
  auto client = NewClient(absl::StrCat("unix:", run_dir, "/redis.sock"));
  const std::string key = Prefix() + "unix";
  ASSERT_TRUE(client->Command({"SET", key, "over a socket"}).ok());
  EXPECT_EQ(*client->Command({"GET", key})->AsString(), "over a socket");
}

TEST(RedisClientTest, MissingUnixSocketIsUnavailable) {
  auto client = NewClient("unix:/nonexistent/redis.sock");
  ExpectRedisUnavailable(client->Ping(), "unix:/nonexistent/redis.sock");
}

}  // namespace
}  // namespace qunzu

namespace qunzu {
namespace {

std::string PolicyReply(const std::string& policy) {
  return absl::StrCat("*2\r\n$16\r\nmaxmemory-policy\r\n$", policy.size(), "\r\n", policy, "\r\n");
}

TEST(RedisEvictionPolicyTest, APolicyThatMayEvictProjectionsIsRefusedSayingWhich) {
  for (const char* policy : {"allkeys-lru", "allkeys-lfu", "allkeys-random"}) {
    SCOPED_TRACE(policy);
    FakeServer server;
    server.Listen(1);
    server.Serve(1, PolicyReply(policy));
    absl::Status status = NewClient(server.address())->CheckEvictionPolicy();
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
    EXPECT_EQ(ErrorReason(status), "REDIS_EVICTS_PROJECTIONS");
    EXPECT_EQ(ErrorMetadata(status, "policy"), policy);
    EXPECT_THAT(status.message(), HasSubstr(policy));
    EXPECT_THAT(status.message(), HasSubstr("noeviction"));
  }
}

TEST(RedisEvictionPolicyTest, PoliciesThatKeepKeysWithoutExpiryAndARefusedConfigPass) {
  for (const std::string& reply :
       {PolicyReply("noeviction"), PolicyReply("volatile-lru"), PolicyReply("volatile-ttl"),
        std::string("-ERR unknown command 'CONFIG'\r\n"), std::string("*0\r\n")}) {
    SCOPED_TRACE(reply);
    FakeServer server;
    server.Listen(1);
    server.Serve(1, reply);
    EXPECT_TRUE(NewClient(server.address())->CheckEvictionPolicy().ok());
  }
  // The test Redis runs with Redis' default, noeviction.
  EXPECT_TRUE(NewClient(RedisAddrOrDie())->CheckEvictionPolicy().ok());
}

TEST(RedisEvictionPolicyTest, AnUnreachableRedisIsUnavailable) {
  FakeServer closed;  // bound, never listening: connects are refused
  ExpectRedisUnavailable(NewClient(closed.address())->CheckEvictionPolicy(), closed.address());
}

}  // namespace
}  // namespace qunzu
