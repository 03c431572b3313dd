#include "common/redis.h"

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <csignal>
#include <thread>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"

namespace qunzu {
namespace {

constexpr absl::string_view kAddressField = "redis_address";

absl::Status BadAddress(absl::string_view address, absl::string_view problem) {
  return InvalidField(kAddressField, absl::StrCat("\"", absl::CHexEscape(address), "\" ", problem));
}

absl::StatusOr<int> ParsePort(absl::string_view address, absl::string_view text) {
  int port = 0;
  if (text.empty() || text.find_first_not_of("0123456789") != absl::string_view::npos ||
      !absl::SimpleAtoi(text, &port) || port < 1 || port > 65535) {
    return BadAddress(address, "has no port in 1..65535");
  }
  return port;
}

absl::StatusOr<RedisEndpoint> ParseUnixAddress(absl::string_view address) {
  RedisEndpoint endpoint;
  endpoint.unix_path = std::string(address.data() + 5, address.size() - 5);
  if (endpoint.unix_path.empty()) return BadAddress(address, "has an empty socket path");
  if (endpoint.unix_path.size() >= sizeof(sockaddr_un::sun_path)) {
    return BadAddress(address, "has a socket path too long for a unix socket");
  }
  return endpoint;
}

timeval TimevalOf(absl::Duration duration) {
  if (duration < absl::Milliseconds(1)) duration = absl::Milliseconds(1);
  return absl::ToTimeval(duration);
}

std::string Sha1Hex(absl::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha1(), nullptr);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), static_cast<size_t>(length)));
}

}  // namespace

RedisReply ConvertHiredisReply(const redisReply& raw) {
  switch (raw.type) {
    case REDIS_REPLY_STRING:
      return RedisReply::String(std::string(raw.str, raw.len));
    case REDIS_REPLY_INTEGER:
      return RedisReply::Integer(raw.integer);
    case REDIS_REPLY_STATUS:
      return RedisReply::Status(std::string(raw.str, raw.len));
    case REDIS_REPLY_ERROR:
      return RedisReply::Error(std::string(raw.str, raw.len));
    case REDIS_REPLY_ARRAY: {
      std::vector<RedisReply> elements;
      elements.reserve(raw.elements);
      for (size_t i = 0; i < raw.elements; ++i)
        elements.push_back(ConvertHiredisReply(*raw.element[i]));
      return RedisReply::Array(std::move(elements));
    }
    default:
      return RedisReply::Nil();
  }
}

namespace {

// Why a context failed; errno must be the one the failing call left.
std::string DescribeFailure(const redisContext& context, int saved_errno) {
  if (context.err == REDIS_ERR_IO && (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK)) {
    return "timed out waiting for the reply";
  }
  if (context.err == 0) return "unknown failure";
  return context.errstr;
}

// True when an idle connection has nothing to read and no hang-up pending;
// data or EOF on an idle connection both mean it cannot be reused.
bool IdleConnectionUsable(const redisContext& context) {
  pollfd entry{context.fd, POLLIN, 0};
  return poll(&entry, 1, 0) == 0;
}

bool IsNumericHost(const std::string& host) {
  unsigned char buffer[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buffer) == 1 ||
         inet_pton(AF_INET6, host.c_str(), buffer) == 1;
}

struct Resolution {
  absl::Mutex mu;
  bool done ABSL_GUARDED_BY(mu) = false;
  std::string error ABSL_GUARDED_BY(mu);
  std::vector<std::string> addresses ABSL_GUARDED_BY(mu);
};

void ResolveInto(const std::string& host, Resolution& out) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found);
  std::vector<std::string> addresses;
  for (addrinfo* it = found; rc == 0 && it != nullptr; it = it->ai_next) {
    char text[NI_MAXHOST];
    if (getnameinfo(it->ai_addr, it->ai_addrlen, text, sizeof(text), nullptr, 0, NI_NUMERICHOST) ==
        0) {
      addresses.emplace_back(text);
    }
  }
  if (found != nullptr) freeaddrinfo(found);
  absl::MutexLock lock(&out.mu);
  out.done = true;
  out.addresses = std::move(addresses);
  if (rc != 0) out.error = gai_strerror(rc);
  if (rc == 0 && out.addresses.empty()) out.error = "no addresses";
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ResolveRedisHost(const std::string& host,
                                                          absl::Duration timeout) {
  if (IsNumericHost(host)) return std::vector<std::string>{host};
  auto resolution = std::make_shared<Resolution>();
  std::thread([host, resolution] { ResolveInto(host, *resolution); }).detach();
  absl::MutexLock lock(&resolution->mu);
  if (!resolution->mu.AwaitWithTimeout(absl::Condition(&resolution->done), timeout)) {
    return absl::DeadlineExceededError("name resolution timed out");
  }
  if (!resolution->error.empty()) {
    return absl::NotFoundError(absl::StrCat("cannot resolve ", host, ": ", resolution->error));
  }
  return resolution->addresses;
}

absl::StatusOr<RedisEndpoint> ParseRedisAddress(absl::string_view address) {
  if (absl::StartsWith(address, "unix:")) return ParseUnixAddress(address);
  RedisEndpoint endpoint;
  absl::string_view port_text;
  if (absl::StartsWith(address, "[")) {
    size_t close = address.find("]:");
    if (close == absl::string_view::npos) return BadAddress(address, "is not [v6addr]:port");
    endpoint.host = std::string(address.data() + 1, close - 1);
    port_text = address.substr(close + 2);
  } else {
    size_t colon = address.rfind(':');
    if (colon == absl::string_view::npos) {
      return BadAddress(address, "is not host:port, [v6addr]:port or unix:/path");
    }
    endpoint.host = std::string(address.data(), colon);
    port_text = address.substr(colon + 1);
    if (endpoint.host.find(':') != std::string::npos) {
      return BadAddress(address, "has an IPv6 host without [brackets]");
    }
  }
  if (endpoint.host.empty()) return BadAddress(address, "has an empty host");
  for (char c : endpoint.host) {
    if (static_cast<unsigned char>(c) <= ' ' || c == '/') {
      return BadAddress(address, "has an invalid character in the host");
    }
  }
  ASSIGN_OR_RETURN(endpoint.port, ParsePort(address, port_text));
  return endpoint;
}

RedisReply RedisReply::Nil() { return RedisReply(); }

RedisReply RedisReply::String(std::string bytes) {
  RedisReply reply;
  reply.type_ = Type::kString;
  reply.str_ = std::move(bytes);
  return reply;
}

RedisReply RedisReply::Integer(int64_t value) {
  RedisReply reply;
  reply.type_ = Type::kInteger;
  reply.integer_ = value;
  return reply;
}

RedisReply RedisReply::Array(std::vector<RedisReply> elements) {
  RedisReply reply;
  reply.type_ = Type::kArray;
  reply.elements_ = std::move(elements);
  return reply;
}

RedisReply RedisReply::Status(std::string text) {
  RedisReply reply = String(std::move(text));
  reply.type_ = Type::kStatus;
  return reply;
}

RedisReply RedisReply::Error(std::string text) {
  RedisReply reply = String(std::move(text));
  reply.type_ = Type::kError;
  return reply;
}

absl::StatusOr<std::string> RedisReply::AsString() const {
  RETURN_IF_ERROR(ErrorStatus());
  if (type_ == Type::kString || type_ == Type::kStatus) return str_;
  return MakeError(absl::StatusCode::kInternal, "REDIS_UNEXPECTED_REPLY",
                   "expected a string reply, got " + DebugString());
}

absl::StatusOr<std::optional<std::string>> RedisReply::AsOptionalString() const {
  if (type_ == Type::kNil) return std::optional<std::string>();
  ASSIGN_OR_RETURN(std::string value, AsString());
  return std::optional<std::string>(std::move(value));
}

absl::StatusOr<int64_t> RedisReply::AsInteger() const {
  RETURN_IF_ERROR(ErrorStatus());
  int64_t value = 0;
  if (type_ == Type::kInteger) return integer_;
  if (type_ == Type::kString && absl::SimpleAtoi(str_, &value)) return value;
  return MakeError(absl::StatusCode::kInternal, "REDIS_UNEXPECTED_REPLY",
                   "expected an integer reply, got " + DebugString());
}

absl::Status RedisReply::ErrorStatus() const {
  if (type_ != Type::kError) return absl::OkStatus();
  return MakeError(absl::StatusCode::kInternal, "REDIS_ERROR", "redis replied: " + str_);
}

std::string RedisReply::DebugString() const {
  switch (type_) {
    case Type::kNil:
      return "(nil)";
    case Type::kString:
      return absl::StrCat("\"", absl::CHexEscape(str_), "\"");
    case Type::kInteger:
      return absl::StrCat("(integer) ", integer_);
    case Type::kStatus:
      return absl::StrCat("(status) ", str_);
    case Type::kError:
      return absl::StrCat("(error) ", str_);
    case Type::kArray:
      break;
  }
  return absl::StrCat(
      "[",
      absl::StrJoin(elements_, ", ",
                    [](std::string* out, const RedisReply& e) { out->append(e.DebugString()); }),
      "]");
}

RedisScript::RedisScript(std::string source) : source_(std::move(source)) {
  sha1_ = Sha1Hex(source_);
}

void RedisClient::ContextDeleter::operator()(redisContext* context) const { redisFree(context); }

absl::StatusOr<RedisEndpoint> PrepareRedisClient(const RedisOptions& options) {
  ASSIGN_OR_RETURN(RedisEndpoint endpoint, ParseRedisAddress(options.address));
  if (options.connect_timeout <= absl::ZeroDuration()) {
    return InvalidField("redis_connect_timeout", "must be positive");
  }
  if (options.command_timeout <= absl::ZeroDuration()) {
    return InvalidField("redis_command_timeout", "must be positive");
  }
  if (options.pool_size < 1) return InvalidField("redis_pool_size", "must be at least 1");
  struct sigaction current {};
  if (sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
    signal(SIGPIPE, SIG_IGN);
  }
  return endpoint;
}

RedisCommand AuthCommand(const RedisOptions& options) {
  if (options.password.empty()) return {};
  if (options.username.empty()) return {"AUTH", options.password};
  return {"AUTH", options.username, options.password};
}

absl::StatusOr<std::unique_ptr<RedisClient>> RedisClient::Create(const RedisOptions& options) {
  ASSIGN_OR_RETURN(RedisEndpoint endpoint, PrepareRedisClient(options));
  return std::unique_ptr<RedisClient>(new RedisClient(options, std::move(endpoint)));
}

RedisClient::RedisClient(RedisOptions options, RedisEndpoint endpoint)
    : options_(std::move(options)), endpoint_(std::move(endpoint)) {}

RedisClient::~RedisClient() = default;

absl::Status RedisClient::Unavailable(absl::string_view what) const {
  return MakeError(absl::StatusCode::kUnavailable, "REDIS_UNAVAILABLE",
                   absl::StrCat("redis at ", options_.address, ": ", what),
                   {{"address", options_.address}});
}

absl::Status RedisClient::Authenticate(redisContext& context) const {
  const RedisCommand auth = AuthCommand(options_);
  if (auth.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::vector<RedisReply> replies, RoundTrip(&context, {auth}));
  if (replies[0].is_error()) {
    // The server's words ("WRONGPASS invalid username-password pair") never
    // quote the credentials.
    return MakeError(
        absl::StatusCode::kUnavailable, "REDIS_AUTH_FAILED",
        absl::StrCat("redis at ", options_.address, ": authentication failed: ", replies[0].str()),
        {{"address", options_.address}});
  }
  return absl::OkStatus();
}

absl::StatusOr<RedisClient::ContextPtr> RedisClient::Connect() const {
  const absl::Time deadline = absl::Now() + options_.connect_timeout;
  std::vector<std::string> hosts;
  if (endpoint_.unix_path.empty()) {
    auto resolved = ResolveRedisHost(endpoint_.host, options_.connect_timeout);
    if (!resolved.ok()) return Unavailable(resolved.status().message());
    hosts = *std::move(resolved);
  } else {
    hosts.push_back(endpoint_.unix_path);
  }
  std::string failure = "connect timed out";
  for (const std::string& host : hosts) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    ContextPtr context(endpoint_.unix_path.empty()
                           ? redisConnectWithTimeout(host.c_str(), endpoint_.port, TimevalOf(left))
                           : redisConnectUnixWithTimeout(host.c_str(), TimevalOf(left)));
    if (context == nullptr) return Unavailable("cannot allocate a connection");
    if (context->err == 0 &&
        redisSetTimeout(context.get(), TimevalOf(options_.command_timeout)) == REDIS_OK &&
        (!endpoint_.unix_path.empty() || redisEnableKeepAlive(context.get()) == REDIS_OK)) {
      RETURN_IF_ERROR(Authenticate(*context));
      return context;
    }
    failure = absl::StrCat("cannot connect to ", host, ": ", context->errstr);
  }
  return Unavailable(failure);
}

absl::StatusOr<RedisClient::ContextPtr> RedisClient::Acquire() {
  {
    absl::MutexLock lock(&mu_);
    auto can_acquire = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !idle_.empty() || open_ < options_.pool_size;
    };
    const absl::Duration wait = options_.connect_timeout + options_.command_timeout;
    if (!mu_.AwaitWithTimeout(absl::Condition(&can_acquire), wait)) {
      return Unavailable(
          absl::StrCat("no pooled connection became free within ", absl::FormatDuration(wait)));
    }
    while (!idle_.empty()) {
      ContextPtr context = std::move(idle_.back());
      idle_.pop_back();
      if (IdleConnectionUsable(*context)) return context;
      --open_;
    }
    ++open_;
  }
  auto connected = Connect();
  if (!connected.ok()) {
    absl::MutexLock lock(&mu_);
    --open_;
  }
  return connected;
}

void RedisClient::Release(ContextPtr context, bool healthy) {
  absl::MutexLock lock(&mu_);
  if (healthy) {
    idle_.push_back(std::move(context));
    return;
  }
  context.reset();
  open_ -= 1 + static_cast<int>(idle_.size());
  idle_.clear();
}

absl::StatusOr<std::vector<RedisReply>> RedisClient::RoundTrip(
    redisContext* context, const std::vector<RedisCommand>& commands) const {
  for (const RedisCommand& command : commands) {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (const std::string& arg : command) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    if (redisAppendCommandArgv(context, static_cast<int>(argv.size()), argv.data(),
                               lengths.data()) != REDIS_OK) {
      return Unavailable(DescribeFailure(*context, errno));
    }
  }
  std::vector<RedisReply> replies;
  replies.reserve(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(context, &raw) != REDIS_OK || raw == nullptr) {
      return Unavailable(DescribeFailure(*context, errno));
    }
    replies.push_back(ConvertHiredisReply(*static_cast<redisReply*>(raw)));
    freeReplyObject(raw);
  }
  return replies;
}

absl::StatusOr<std::vector<RedisReply>> RedisClient::Run(
    const std::vector<RedisCommand>& commands) {
  if (commands.empty()) return std::vector<RedisReply>();
  for (const RedisCommand& command : commands) {
    if (command.empty()) return InvalidField("command", "has no arguments");
  }
  ASSIGN_OR_RETURN(ContextPtr context, Acquire());
  auto replies = RoundTrip(context.get(), commands);
  Release(std::move(context), replies.ok());
  return replies;
}

absl::StatusOr<RedisReply> RedisClient::Command(const RedisCommand& command) {
  ASSIGN_OR_RETURN(std::vector<RedisReply> replies, Run({command}));
  RETURN_IF_ERROR(replies[0].ErrorStatus());
  return std::move(replies[0]);
}

absl::StatusOr<std::vector<RedisReply>> RedisClient::Pipeline(
    const std::vector<RedisCommand>& commands) {
  return Run(commands);
}

absl::StatusOr<RedisReply> RedisClient::Eval(const RedisScript& script,
                                             const std::vector<std::string>& keys,
                                             const std::vector<std::string>& args) {
  RedisCommand command = {"EVALSHA", script.sha1(), std::to_string(keys.size())};
  command.insert(command.end(), keys.begin(), keys.end());
  command.insert(command.end(), args.begin(), args.end());
  ASSIGN_OR_RETURN(std::vector<RedisReply> replies, Run({command}));
  if (replies[0].is_error() && absl::StartsWith(replies[0].str(), "NOSCRIPT")) {
    command[0] = "EVAL";
    command[1] = script.source();
    ASSIGN_OR_RETURN(replies, Run({command}));
  }
  RETURN_IF_ERROR(replies[0].ErrorStatus());
  return std::move(replies[0]);
}

absl::Status RedisClient::Ping() {
  ASSIGN_OR_RETURN(RedisReply reply, Command({"PING"}));
  if (reply.type() == RedisReply::Type::kStatus && reply.str() == "PONG") return absl::OkStatus();
  return MakeError(absl::StatusCode::kInternal, "REDIS_UNEXPECTED_REPLY",
                   "unexpected PING reply " + reply.DebugString());
}

absl::Status RedisClient::CheckEvictionPolicy() {
  ASSIGN_OR_RETURN(std::vector<RedisReply> replies,
                   Pipeline({{"CONFIG", "GET", "maxmemory-policy"}}));
  const RedisReply& reply = replies[0];
  if (reply.is_error()) return absl::OkStatus();
  // RESP2: [name, value]; a RESP3 map reads the same as a RedisReply.
  const std::vector<RedisReply>& pair = reply.elements();
  if (pair.size() != 2) return absl::OkStatus();
  const std::string& policy = pair[1].str();
  if (!absl::StartsWith(policy, "allkeys-")) return absl::OkStatus();
  return MakeError(absl::StatusCode::kFailedPrecondition, "REDIS_EVICTS_PROJECTIONS",
                   absl::StrCat("Redis at ", options_.address, " has maxmemory-policy ", policy,
                                ": it may evict the projections the hot path reads (an evicted "
                                "blacklist lets a blacklisted sender post); set noeviction"),
                   {{"policy", policy}});
}

}  // namespace qunzu
