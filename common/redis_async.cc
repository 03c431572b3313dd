#include "common/redis_async.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/log.h"
#include "common/status.h"

namespace qunzu {

struct AsyncRedis::Call {
  enum class Kind {
    kPipeline,
    // Posted commands: nobody waits; a refused one is counted as lost.
    kPosted,
    // A new connection's AUTH, or HELLO and CLIENT TRACKING.
    kHandshake,
  };
  Kind kind = Kind::kPipeline;
  // Kept until the call is done: a cached reply invalidated while the call
  // was in flight is read again.
  std::vector<RedisCommand> commands;
  std::vector<bool> cacheable;
  // Per cacheable command: what the cache holds its reply under.
  std::vector<std::string> signatures;
  Done done;
  absl::Time deadline;
  // One per command.
  std::vector<RedisReply> replies;
  // The commands written, in order: their replies come from Redis
  // (kBarrier: a PING written for a call whose replies are all cached).
  std::vector<uint32_t> sent;
  size_t received = 0;
  // The commands the cache held when the call was handed over (their
  // replies copied then); looked up again when the call's own replies have
  // come if the cache changed meanwhile.
  std::vector<uint32_t> from_cache;
  uint64_t cache_changes = 0;
  // Set when the connection failed.
  std::string failure;
  const char* failure_reason = "REDIS_UNAVAILABLE";
};

// Replies by key, each under its command (name and arguments but the key).
struct AsyncRedis::Cache {
  absl::flat_hash_map<std::string, std::vector<std::pair<std::string, RedisReply>>> by_key;
  size_t entries = 0;
  // Counts every change to what the cache holds: a call whose cached
  // replies were copied when it was handed over, with no change since,
  // takes them as they are.
  uint64_t changes = 0;
  CacheStats stats;

  // The command's name and arguments but its key, each after its length.
  static std::string Signature(const RedisCommand& command) {
    std::string signature;
    for (size_t i = 0; i < command.size(); ++i) {
      if (i == 1) continue;
      absl::StrAppend(&signature, command[i].size(), ":", command[i]);
    }
    return signature;
  }
  const RedisReply* Find(const std::string& key, const std::string& signature) const {
    auto it = by_key.find(key);
    if (it == by_key.end()) return nullptr;
    for (const auto& [sig, reply] : it->second) {
      if (sig == signature) return &reply;
    }
    return nullptr;
  }
  void Store(const std::string& key, const std::string& signature, const RedisReply& reply,
             size_t capacity) {
    if (entries >= capacity) Clear();
    ++changes;
    auto& replies = by_key[key];
    for (auto& [sig, held] : replies) {
      if (sig == signature) {
        held = reply;
        return;
      }
    }
    replies.emplace_back(signature, reply);
    ++entries;
  }
  void Invalidate(const std::string& key) {
    auto it = by_key.find(key);
    if (it == by_key.end()) return;
    entries -= it->second.size();
    by_key.erase(it);
    ++changes;
    ++stats.invalidations;
  }
  void Clear() {
    if (entries == 0) return;
    by_key.clear();
    entries = 0;
    ++changes;
    ++stats.flushes;
  }
};

// The epoll set: the wake-up eventfd and the Redis connection's socket.
struct AsyncRedis::Loop {
  int epoll_fd = -1;
  int wake_fd = -1;
  // The connection's socket (-1: none), what the client wants to hear of
  // it and what epoll is told (Apply).
  int redis_fd = -1;
  uint32_t wanted = 0;
  uint32_t registered = 0;
  bool added = false;

  ~Loop() {
    if (wake_fd >= 0) close(wake_fd);
    if (epoll_fd >= 0) close(epoll_fd);
  }
  // One epoll_ctl only when the interest changed: a pipeline written at once
  // never asks for EPOLLOUT.
  void Apply() {
    if (redis_fd < 0 || (added && wanted == registered)) return;
    epoll_event event{};
    event.events = wanted;
    event.data.fd = redis_fd;
    epoll_ctl(epoll_fd, added ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, redis_fd, &event);
    added = true;
    registered = wanted;
  }
  void Forget() {
    if (added) epoll_ctl(epoll_fd, EPOLL_CTL_DEL, redis_fd, nullptr);
    added = false;
    redis_fd = -1;
    wanted = 0;
    registered = 0;
  }
};

namespace {

constexpr char kUnavailableReason[] = "REDIS_UNAVAILABLE";
constexpr char kAuthFailedReason[] = "REDIS_AUTH_FAILED";
constexpr char kUnsupportedReason[] = "REDIS_UNSUPPORTED";
// Aggregates nested deeper than this are not RESP we asked for.
constexpr int kMaxDepth = static_cast<int>(RespFrameScanner::kMaxDepth);
constexpr size_t kReadChunk = size_t{64} * 1024;
// In Call::sent: the PING that orders a call whose replies are all cached
// after the invalidations coming.
constexpr uint32_t kBarrier = UINT32_MAX;

void AppendLength(std::string* out, char type, size_t n) {
  char digits[24];
  char* end = digits + sizeof(digits);
  char* p = end;
  do {
    *--p = static_cast<char>('0' + n % 10);
    n /= 10;
  } while (n != 0);
  out->push_back(type);
  out->append(p, static_cast<size_t>(end - p));
  out->append("\r\n", 2);
}

void EncodeCommand(const RedisCommand& command, std::string* out) {
  AppendLength(out, '*', command.size());
  for (const std::string& arg : command) {
    AppendLength(out, '$', arg.size());
    out->append(arg);
    out->append("\r\n", 2);
  }
}

enum class Parsed { kReply, kIncomplete, kBad };

// One RESP2 or RESP3 reply from in at *pos: on kReply *pos is past it and
// *push tells a push (RESP3 '>') from a reply. Maps become arrays of keys
// and values, sets arrays, booleans integers, doubles and big numbers
// strings, nulls nil; attributes are skipped.
Parsed ParseReply(absl::string_view in, size_t* pos, RedisReply* out, bool* push, int depth = 0) {
  if (depth > kMaxDepth) return Parsed::kBad;
  for (;;) {
    if (*pos >= in.size()) return Parsed::kIncomplete;
    const size_t eol = in.find("\r\n", *pos);
    if (eol == absl::string_view::npos) return Parsed::kIncomplete;
    const char type = in[*pos];
    const absl::string_view line = in.substr(*pos + 1, eol - *pos - 1);
    size_t next = eol + 2;
    int64_t n = 0;
    auto aggregate = [&](int64_t count) -> Parsed {
      std::vector<RedisReply> elements;
      elements.reserve(static_cast<size_t>(std::min<int64_t>(count, 1024)));
      for (int64_t i = 0; i < count; ++i) {
        RedisReply element;
        bool inner_push = false;
        const Parsed parsed = ParseReply(in, &next, &element, &inner_push, depth + 1);
        if (parsed != Parsed::kReply) return parsed;
        if (inner_push) return Parsed::kBad;
        elements.push_back(std::move(element));
      }
      *out = RedisReply::Array(std::move(elements));
      *pos = next;
      return Parsed::kReply;
    };
    auto blob = [&](int64_t length) -> std::optional<absl::string_view> {
      if (in.size() < next + static_cast<size_t>(length) + 2) return std::nullopt;
      const absl::string_view bytes = in.substr(next, static_cast<size_t>(length));
      next += static_cast<size_t>(length) + 2;
      return bytes;
    };
    switch (type) {
      case '+':
        *out = RedisReply::Status(std::string(line));
        *pos = next;
        return Parsed::kReply;
      case '-':
        *out = RedisReply::Error(std::string(line));
        *pos = next;
        return Parsed::kReply;
      case ':':
        if (!absl::SimpleAtoi(line, &n)) return Parsed::kBad;
        *out = RedisReply::Integer(n);
        *pos = next;
        return Parsed::kReply;
      case '_':
        *out = RedisReply::Nil();
        *pos = next;
        return Parsed::kReply;
      case '#':
        if (line != "t" && line != "f") return Parsed::kBad;
        *out = RedisReply::Integer(line == "t" ? 1 : 0);
        *pos = next;
        return Parsed::kReply;
      case ',':
      case '(':
        *out = RedisReply::String(std::string(line));
        *pos = next;
        return Parsed::kReply;
      case '$':
      case '!':
      case '=': {
        if (!absl::SimpleAtoi(line, &n) || n < -1) return Parsed::kBad;
        if (n == -1) {
          if (type != '$') return Parsed::kBad;
          *out = RedisReply::Nil();
          *pos = next;
          return Parsed::kReply;
        }
        const std::optional<absl::string_view> bytes = blob(n);
        if (!bytes.has_value()) return Parsed::kIncomplete;
        if (in.substr(next - 2, 2) != "\r\n") return Parsed::kBad;
        if (type == '!') {
          *out = RedisReply::Error(std::string(*bytes));
        } else if (type == '=') {
          // A verbatim string starts with its format ("txt:").
          if (bytes->size() < 4) return Parsed::kBad;
          *out = RedisReply::String(std::string(bytes->substr(4)));
        } else {
          *out = RedisReply::String(std::string(*bytes));
        }
        *pos = next;
        return Parsed::kReply;
      }
      case '*':
      case '~':
      case '>':
        if (!absl::SimpleAtoi(line, &n) || n < -1) return Parsed::kBad;
        if (n == -1) {
          if (type != '*') return Parsed::kBad;
          *out = RedisReply::Nil();
          *pos = next;
          return Parsed::kReply;
        }
        *push = type == '>';
        return aggregate(n);
      case '%':
        if (!absl::SimpleAtoi(line, &n) || n < 0 || n > (int64_t{1} << 40)) return Parsed::kBad;
        return aggregate(2 * n);
      case '|': {
        // Attributes describe the reply that follows: skipped.
        if (!absl::SimpleAtoi(line, &n) || n < 0 || n > (int64_t{1} << 40)) return Parsed::kBad;
        const Parsed parsed = aggregate(2 * n);
        if (parsed != Parsed::kReply) return parsed;
        continue;  // *pos is past the attributes
      }
      default:
        return Parsed::kBad;
    }
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<AsyncRedis>> AsyncRedis::Create(const RedisOptions& options,
                                                               PostedLost posted_lost) {
  Options client_options;
  client_options.posted_lost = std::move(posted_lost);
  return Create(options, std::move(client_options));
}

absl::StatusOr<std::unique_ptr<AsyncRedis>> AsyncRedis::Create(const RedisOptions& options,
                                                               Options client_options) {
  ASSIGN_OR_RETURN(RedisEndpoint endpoint, PrepareRedisClient(options));
  std::unique_ptr<AsyncRedis> client(
      new AsyncRedis(options, std::move(endpoint), std::move(client_options)));
  Loop& loop = *client->loop_;
  loop.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  loop.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (loop.epoll_fd < 0 || loop.wake_fd < 0) {
    return MakeError(absl::StatusCode::kInternal, "REDIS_LOOP_FAILED",
                     absl::StrCat("cannot set up the event loop: ", std::strerror(errno)));
  }
  epoll_event wake{};
  wake.events = EPOLLIN;
  wake.data.fd = loop.wake_fd;
  epoll_ctl(loop.epoll_fd, EPOLL_CTL_ADD, loop.wake_fd, &wake);
  AsyncRedis* self = client.get();
  client->thread_ = std::thread([self] { self->Run(); });
  return client;
}

AsyncRedis::AsyncRedis(RedisOptions options, RedisEndpoint endpoint, Options client_options)
    : options_(std::move(options)),
      endpoint_(std::move(endpoint)),
      client_options_(std::move(client_options)),
      loop_(std::make_unique<Loop>()),
      read_buffer_(new char[kReadChunk]),
      cache_(std::make_unique<Cache>()) {}

AsyncRedis::~AsyncRedis() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  const uint64_t one = 1;
  (void)!write(loop_->wake_fd, &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
}

absl::Status AsyncRedis::Unavailable(const std::string& what, const char* reason) const {
  return MakeError(absl::StatusCode::kUnavailable, reason,
                   absl::StrCat("redis at ", options_.address, ": ", what),
                   {{"address", options_.address}});
}

AsyncRedis::CacheStats AsyncRedis::cache_stats() const {
  absl::MutexLock lock(&mu_);
  CacheStats stats = cache_->stats;
  stats.entries = static_cast<int64_t>(cache_->entries);
  return stats;
}

void AsyncRedis::Pipeline(std::vector<RedisCommand> commands, Done done) {
  Pipeline(std::move(commands), {}, std::move(done));
}

void AsyncRedis::Pipeline(std::vector<RedisCommand> commands, std::vector<bool> cacheable,
                          Done done) {
  auto call = std::make_unique<Call>();
  call->commands = std::move(commands);
  call->done = std::move(done);
  if (client_options_.cache_entries > 0 && cacheable.size() == call->commands.size()) {
    call->cacheable = std::move(cacheable);
  }
  std::vector<std::unique_ptr<Call>> completed;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      call->failure = "the client is shutting down";
      completed_.push_back(std::move(call));
    } else {
      const bool busy = !in_flight_.empty();
      // A reply to a pipeline already written is coming: whoever takes it
      // writes this one, with every other queued meanwhile — under load one
      // write and one wake of Redis carry many pipelines.
      const bool reply_coming = in_flight_.size() > unsent_ && connected_;
      const size_t before = in_flight_.size();
      SendPosted();
      Send(std::move(call));
      if (reply_coming) {
        unsent_ += in_flight_.size() - before;
        // Replies already waiting are taken here rather than by a wake of
        // the loop thread; if they were the last ones coming, write now.
        ReadNow();
        if (fd_ >= 0 && in_flight_.size() <= unsent_) WriteNow(false);
      } else {
        // Written from this thread; under load, replies to earlier
        // pipelines are often waiting: taken here too.
        WriteNow(busy);
      }
      UpdateInterest();
    }
    completed.swap(completed_);
  }
  RunCompleted(completed);
}

void AsyncRedis::Post(RedisCommand command) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  posted_.push_back(std::move(command));
  // Busy: the next pipeline or reply writes it with its own. On the loop
  // thread: the next pipeline, or the loop within kPostedDelay.
  if (in_flight_.empty() && std::this_thread::get_id() != thread_.get_id()) {
    SendPosted();
    WriteNow(false);
    UpdateInterest();
  }
}

void AsyncRedis::SendPosted() {
  if (posted_.empty()) return;
  std::string why;
  const char* reason = kUnavailableReason;
  if (!EnsureConnected(&why, &reason)) {
    posted_lost_ += static_cast<int64_t>(posted_.size());
    posted_.clear();
    return;
  }
  auto call = std::make_unique<Call>();
  call->kind = Call::Kind::kPosted;
  call->commands.swap(posted_);
  call->deadline = absl::Now() + options_.command_timeout +
                   (connected_ ? absl::ZeroDuration() : options_.connect_timeout);
  call->sent.resize(call->commands.size());
  for (uint32_t i = 0; i < call->sent.size(); ++i) call->sent[i] = i;
  Encode(*call);
  in_flight_.push_back(std::move(call));
}

void AsyncRedis::Send(std::unique_ptr<Call> call) {
  std::string why;
  const char* reason = kUnavailableReason;
  if (!EnsureConnected(&why, &reason)) {
    call->failure = why;
    call->failure_reason = reason;
    completed_.push_back(std::move(call));
    return;
  }
  call->deadline = absl::Now() + options_.command_timeout +
                   (connected_ ? absl::ZeroDuration() : options_.connect_timeout);
  const size_t n = call->commands.size();
  call->replies.resize(n);
  call->sent.reserve(n);
  if (!call->cacheable.empty()) call->signatures.resize(n);
  for (uint32_t i = 0; i < n; ++i) {
    if (!call->cacheable.empty() && call->cacheable[i] && call->commands[i].size() >= 2) {
      call->signatures[i] = Cache::Signature(call->commands[i]);
      if (const RedisReply* cached =
              tracking_ ? cache_->Find(call->commands[i][1], call->signatures[i]) : nullptr) {
        call->replies[i] = *cached;
        call->from_cache.push_back(i);
        continue;
      }
      ++cache_->stats.misses;
    }
    call->sent.push_back(i);
  }
  // Every reply cached: a PING still goes, so that they are taken after the
  // invalidations Redis sent before it.
  if (call->sent.empty()) call->sent.push_back(kBarrier);
  call->cache_changes = cache_->changes;
  Encode(*call);
  in_flight_.push_back(std::move(call));
}

void AsyncRedis::Encode(const Call& call) {
  if (out_sent_ == out_.size()) {
    out_.clear();
    out_sent_ = 0;
  }
  for (const uint32_t i : call.sent) {
    if (i == kBarrier) {
      EncodeCommand({"PING"}, &out_);
    } else {
      EncodeCommand(call.commands[i], &out_);
    }
  }
}

bool AsyncRedis::EnsureConnected(std::string* why, const char** reason) {
  if (fd_ >= 0) return true;
  const absl::Time now = absl::Now();
  if (now < retry_after_) {
    *why = absl::StrCat("not reconnecting for ", absl::FormatDuration(kReconnectBackoff),
                        " after: ", connect_error_);
    *reason = connect_reason_;
    return false;
  }
  int fd = -1;
  std::string error = "no address to connect to";
  bool in_progress = false;
  auto attempt = [&](int family, const sockaddr* address, socklen_t length) {
    const int s = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0) {
      error = std::strerror(errno);
      return false;
    }
    if (family != AF_UNIX) {
      const int one = 1;
      setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (connect(s, address, length) == 0 || errno == EINPROGRESS) {
      in_progress = errno == EINPROGRESS;
      fd = s;
      return true;
    }
    error = std::strerror(errno);
    close(s);
    return false;
  };
  if (!endpoint_.unix_path.empty()) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (endpoint_.unix_path.size() >= sizeof(address.sun_path)) {
      error = "socket path too long";
    } else {
      std::memcpy(address.sun_path, endpoint_.unix_path.c_str(), endpoint_.unix_path.size() + 1);
      errno = 0;
      attempt(AF_UNIX, reinterpret_cast<const sockaddr*>(&address), sizeof(address));
    }
  } else if (absl::StatusOr<std::vector<std::string>> hosts =
                 ResolveRedisHost(endpoint_.host, options_.connect_timeout);
             !hosts.ok()) {
    // Bounded by the connect timeout, as the synchronous client's.
    error = std::string(hosts.status().message());
  } else {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;  // no lookup here
    const std::string port = absl::StrCat(endpoint_.port);
    for (const std::string& host : *hosts) {
      addrinfo* found = nullptr;
      if (getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0) continue;
      errno = 0;
      const bool connected = attempt(found->ai_family, found->ai_addr, found->ai_addrlen);
      freeaddrinfo(found);
      if (connected) break;
    }
  }
  if (fd < 0) {
    connect_error_ = error;
    connect_reason_ = kUnavailableReason;
    retry_after_ = now + kReconnectBackoff;
    *why = absl::StrCat("cannot connect: ", connect_error_);
    *reason = connect_reason_;
    return false;
  }
  ForgetConnection();
  fd_ = fd;
  connected_ = !in_progress;
  drop_code_ = kUnavailableReason;
  loop_->redis_fd = fd;
  // Sent ahead of every pipeline on this connection.
  auto handshake = std::make_unique<Call>();
  handshake->kind = Call::Kind::kHandshake;
  if (client_options_.cache_entries > 0) {
    RedisCommand hello = {"HELLO", "3"};
    if (!options_.password.empty()) {
      hello.insert(hello.end(), {"AUTH", options_.username.empty() ? "default" : options_.username,
                                 options_.password});
    }
    handshake->commands = {std::move(hello), {"CLIENT", "TRACKING", "ON"}};
  } else if (RedisCommand auth = AuthCommand(options_); !auth.empty()) {
    handshake->commands = {std::move(auth)};
  }
  if (!handshake->commands.empty()) {
    handshake->deadline = now + options_.connect_timeout + options_.command_timeout;
    for (uint32_t i = 0; i < handshake->commands.size(); ++i) handshake->sent.push_back(i);
    Encode(*handshake);
    handshake_end_ = out_.size();
    handshake_pending_ = true;
    in_flight_.push_back(std::move(handshake));
  }
  return true;
}

void AsyncRedis::FinishConnect() {
  int error = 0;
  socklen_t length = sizeof(error);
  if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
  if (error != 0) {
    ConnectFailed(std::strerror(error));
    return;
  }
  connected_ = true;
  WriteNow(false);
}

void AsyncRedis::ConnectFailed(const std::string& error) {
  connect_error_ = error;
  connect_reason_ = kUnavailableReason;
  retry_after_ = absl::Now() + kReconnectBackoff;
  Drop(absl::StrCat("cannot connect: ", error));
}

void AsyncRedis::UpdateInterest() {
  if (fd_ < 0) return;
  // Bytes left unwritten on purpose (a reply is coming) do not ask for
  // EPOLLOUT; only a write the socket refused does.
  loop_->wanted = EPOLLIN | (!connected_ || write_blocked_ ? uint32_t{EPOLLOUT} : uint32_t{0});
  loop_->Apply();
}

void AsyncRedis::WriteNow(bool read) {
  if (fd_ < 0 || !connected_) return;
  const size_t limit = handshake_pending_ ? handshake_end_ : out_.size();
  while (out_sent_ < limit) {
    const ssize_t n = send(fd_, out_.data() + out_sent_, limit - out_sent_, MSG_NOSIGNAL);
    if (n > 0) {
      out_sent_ += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;  // on EPOLLOUT
    Drop(absl::StrCat("write failed: ", std::strerror(errno)));
    return;
  }
  write_blocked_ = out_sent_ < limit;
  if (out_sent_ == out_.size()) {
    out_.clear();
    out_sent_ = 0;
  }
  // Behind a handshake not yet answered, every other call waits.
  unsent_ = handshake_pending_ ? in_flight_.size() - 1 : 0;
  if (read) ReadNow();
}

void AsyncRedis::ReadNow() {
  if (fd_ < 0 || !connected_) return;
  for (;;) {
    const ssize_t n = recv(fd_, read_buffer_.get(), kReadChunk, 0);
    if (n == 0) {
      Drop("the connection closed");
      return;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      Drop(absl::StrCat("read failed: ", std::strerror(errno)));
      return;
    }
    // Whole replies are parsed where they were read; a part of one waits in
    // in_ for the rest.
    absl::string_view data(read_buffer_.get(), static_cast<size_t>(n));
    const bool held = !in_.empty();
    if (held) {
      in_.append(data.data(), data.size());
      data = in_;
    }
    size_t pos = 0;
    while (pos < data.size()) {
      // Where the reply ends is found across reads once; the reply is
      // parsed once, when all of it is there.
      size_t length = 0;
      const RespFrameScanner::Result framed = frame_.Scan(data.substr(pos), &length);
      if (framed == RespFrameScanner::Result::kIncomplete) break;
      RedisReply reply;
      bool push = false;
      size_t parsed_length = 0;
      if (framed == RespFrameScanner::Result::kBad ||
          ParseReply(data.substr(pos, length), &parsed_length, &reply, &push) != Parsed::kReply ||
          parsed_length != length) {
        Drop("protocol error: the server sent something that is not RESP");
        return;
      }
      frame_.Reset();
      pos += length;
      if (push) {
        OnPush(reply);
      } else if (in_flight_.empty()) {
        Drop("protocol error: a reply nothing was sent for");
        return;
      } else {
        OnReply(std::move(reply));
        if (fd_ < 0) return;  // a refused handshake dropped the connection
      }
    }
    if (held) {
      in_.erase(0, pos);
    } else {
      in_.assign(data.data() + pos, data.size() - pos);
    }
    if (static_cast<size_t>(n) < kReadChunk) break;
  }
  // Nothing more coming and something queued (a cached reply read again):
  // written now.
  if (unsent_ > 0 && in_flight_.size() <= unsent_) WriteNow(false);
}

void AsyncRedis::OnPush(const RedisReply& push) {
  const std::vector<RedisReply>& parts = push.elements();
  if (parts.size() != 2 || parts[0].str() != "invalidate") return;  // not ours
  if (parts[1].is_nil()) {
    cache_->Clear();  // FLUSHALL, or Redis dropped its tracking table
    return;
  }
  for (const RedisReply& key : parts[1].elements()) cache_->Invalidate(key.str());
}

void AsyncRedis::OnReply(RedisReply reply) {
  Call& call = *in_flight_.front();
  const uint32_t slot = call.sent[call.received++];
  const bool last = call.received == call.sent.size();
  if (slot == kBarrier) {
    CompleteFront();
    return;
  }
  switch (call.kind) {
    case Call::Kind::kPosted:
      if (reply.is_error()) {
        LogWarning("redis_posted_command_failed",
                   {{"address", options_.address}, {"error", reply.str()}});
        ++posted_lost_;  // refused: as lost as a dropped one
      }
      if (last) in_flight_.pop_front();
      return;
    case Call::Kind::kHandshake:
      if (call.commands[slot][0] == "CLIENT") {
        tracking_ = !reply.is_error();
        if (reply.is_error()) {
          LogWarning("redis_tracking_refused",
                     {{"address", options_.address}, {"error", reply.str()}});
        }
      } else if (reply.is_error()) {
        // Never go on as the default user, nor on a protocol Redis did not
        // agree to.
        HandshakeRefused(call.commands[slot][0], reply.str());
        return;
      }
      if (last) {
        in_flight_.pop_front();
        // What waited behind it is written by ReadNow (all of in_flight_
        // is unsent now).
        handshake_pending_ = false;
      }
      return;
    case Call::Kind::kPipeline:
      if (!call.signatures.empty() && !call.signatures[slot].empty() && tracking_ &&
          !reply.is_error()) {
        cache_->Store(call.commands[slot][1], call.signatures[slot], reply,
                      client_options_.cache_entries);
      }
      call.replies[slot] = std::move(reply);
      if (last) CompleteFront();
      return;
  }
}

void AsyncRedis::CompleteFront() {
  std::unique_ptr<Call> call = std::move(in_flight_.front());
  in_flight_.pop_front();
  // Cached replies are taken now: every invalidation sent before Redis ran
  // this call's commands has been read. Those copied when the call was
  // handed over stand unless the cache changed since.
  std::vector<uint32_t> again;
  if (tracking_ && cache_->changes == call->cache_changes) {
    cache_->stats.hits += static_cast<int64_t>(call->from_cache.size());
    call->from_cache.clear();
  }
  for (const uint32_t i : call->from_cache) {
    const RedisReply* cached =
        tracking_ ? cache_->Find(call->commands[i][1], call->signatures[i]) : nullptr;
    if (cached == nullptr) {
      again.push_back(i);
      continue;
    }
    ++cache_->stats.hits;
    call->replies[i] = *cached;
  }
  // Calls failed with a dropped connection include unwritten ones.
  unsent_ = std::min(unsent_, in_flight_.size());
  if (again.empty() || fd_ < 0) {
    if (!again.empty()) call->failure = "the connection closed";
    completed_.push_back(std::move(call));
    return;
  }
  // Changed while the call was in flight: read again, as the last call.
  cache_->stats.rereads += static_cast<int64_t>(again.size());
  call->sent = std::move(again);
  call->received = 0;
  call->from_cache.clear();
  call->deadline = absl::Now() + options_.command_timeout;
  Encode(*call);
  in_flight_.push_back(std::move(call));
  ++unsent_;
}

void AsyncRedis::HandshakeRefused(const std::string& command, const std::string& error) {
  // Credentials refused (AUTH, or HELLO's AUTH): the server's words never
  // quote them, but are not repeated either. Anything else refusing HELLO
  // is a Redis without RESP3 (before 6.0).
  const bool credentials = command == "AUTH" || absl::StartsWith(error, "WRONGPASS") ||
                           absl::StartsWith(error, "NOAUTH") || absl::StartsWith(error, "NOPERM");
  if (credentials) {
    LogError("redis_auth_failed", {{"address", address()}});
    connect_error_ = "authentication failed";
    connect_reason_ = kAuthFailedReason;
  } else {
    LogError("redis_resp3_refused", {{"address", address()}, {"error", error}});
    connect_error_ = absl::StrCat(
        "the server refused HELLO 3 (", error,
        "): the client-side cache needs RESP3 and CLIENT TRACKING (Redis 6 or later); turn the "
        "cache off to use this server");
    connect_reason_ = kUnsupportedReason;
  }
  drop_code_ = connect_reason_;
  retry_after_ = absl::Now() + kReconnectBackoff;
  Drop(connect_error_);
}

void AsyncRedis::ForgetConnection() {
  fd_ = -1;
  connected_ = false;
  tracking_ = false;
  write_blocked_ = false;
  handshake_pending_ = false;
  out_.clear();
  out_sent_ = 0;
  in_.clear();
  frame_.Reset();
  unsent_ = 0;
}

void AsyncRedis::Drop(const std::string& why) {
  if (fd_ < 0) return;
  loop_->Forget();
  close(fd_);
  ForgetConnection();
  // Pushes may have been lost with the connection.
  cache_->Clear();
  for (std::unique_ptr<Call>& call : in_flight_) {
    switch (call->kind) {
      case Call::Kind::kPosted:
        posted_lost_ += static_cast<int64_t>(call->sent.size() - call->received);
        break;
      case Call::Kind::kHandshake:
        break;
      case Call::Kind::kPipeline:
        call->failure = why;
        call->failure_reason = drop_code_;
        completed_.push_back(std::move(call));
        break;
    }
  }
  in_flight_.clear();
  drop_code_ = kUnavailableReason;
}

void AsyncRedis::RunCompleted(std::vector<std::unique_ptr<Call>>& completed) {
  for (std::unique_ptr<Call>& call : completed) {
    if (!call->failure.empty()) {
      call->done(Unavailable(call->failure, call->failure_reason));
    } else {
      call->done(std::move(call->replies));
    }
  }
  completed.clear();
}

void AsyncRedis::Run() {
  pthread_setname_np(pthread_self(), "redis-loop");
  std::array<epoll_event, 4> events{};
  std::vector<std::unique_ptr<Call>> completed;
  const bool report_cache =
      client_options_.cache_entries > 0 && client_options_.cache_stats != nullptr;
  absl::Time next_report = absl::Now();
  for (;;) {
    // Deadlines are looked at least this often (a pipeline sent while the
    // loop waits does not wake it).
    absl::Duration wait = kDeadlineTick;
    {
      absl::MutexLock lock(&mu_);
      if (!in_flight_.empty()) {
        wait = std::min(wait,
                        std::max(absl::ZeroDuration(), in_flight_.front()->deadline - absl::Now()));
      }
      if (!posted_.empty()) wait = std::min(wait, kPostedDelay);
    }
    const int ready = epoll_wait(
        loop_->epoll_fd, events.data(), events.size(),
        static_cast<int>(absl::ToInt64Milliseconds(absl::Ceil(wait, absl::Milliseconds(1)))));
    bool stop = false;
    int64_t lost = 0;
    {
      absl::MutexLock lock(&mu_);
      bool took_replies = false;
      for (int i = 0; i < ready; ++i) {
        const epoll_event& event = events[static_cast<size_t>(i)];
        if (event.data.fd == loop_->wake_fd) {
          uint64_t count = 0;
          (void)!read(loop_->wake_fd, &count, sizeof(count));
          continue;
        }
        if (fd_ < 0 || event.data.fd != fd_) continue;
        if (!connected_) {
          if ((event.events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0) FinishConnect();
          continue;
        }
        if ((event.events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) {
          ReadNow();
          took_replies = true;
        }
        // The read may have dropped the connection.
        if ((event.events & EPOLLOUT) != 0) WriteNow(false);
      }
      // What was queued while the replies were coming goes out now (with
      // none taken, a reply is still coming, or the deadline drops it all).
      if (!posted_.empty() || (took_replies && unsent_ > 0)) {
        SendPosted();
        WriteNow(false);
      }
      if (posted_lost_ > 0) {
        LogWarning("redis_posted_commands_lost",
                   {{"address", options_.address}, {"commands", posted_lost_}});
        lost = posted_lost_;
        posted_lost_ = 0;
      }
      stop = stopping_;
      if (stop) {
        Drop("the client is shutting down");
      } else if (!in_flight_.empty() && in_flight_.front()->deadline <= absl::Now()) {
        Drop(absl::StrCat("no reply within ", absl::FormatDuration(options_.command_timeout)));
      }
      UpdateInterest();
      completed.swap(completed_);
    }
    RunCompleted(completed);
    if (lost > 0 && client_options_.posted_lost) client_options_.posted_lost(lost);
    if (report_cache && (stop || absl::Now() >= next_report)) {
      client_options_.cache_stats(cache_stats());
      next_report = absl::Now() + kCacheStatsInterval;
    }
    if (stop) return;
  }
}

}  // namespace qunzu
