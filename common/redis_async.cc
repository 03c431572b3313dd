#include "common/redis_async.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status.h"

namespace qunzu {

struct AsyncRedis::Call {
  std::vector<RedisCommand> commands;
  Done done;
  absl::Time deadline;
  std::vector<RedisReply> replies;
  size_t remaining = 0;
  // Set by the first reply that did not come (the connection failed).
  std::string failure;
  const char* failure_reason = "REDIS_UNAVAILABLE";
};

// The epoll set: the wake-up eventfd and the Redis connection's socket,
// with the interest hiredis asked for through its event hooks.
struct AsyncRedis::Loop {
  int epoll_fd = -1;
  int wake_fd = -1;
  // The connection's socket (-1: none), what hiredis wants to hear of it
  // (set by its event hooks) and what epoll is told (Apply).
  int redis_fd = -1;
  uint32_t wanted = 0;
  uint32_t registered = 0;
  bool added = false;

  ~Loop() {
    if (wake_fd >= 0) close(wake_fd);
    if (epoll_fd >= 0) close(epoll_fd);
  }
  // One epoll_ctl only when the interest changed: a pipeline written at once
  // asks for EPOLLOUT and drops it again without a system call.
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

AsyncRedis* Owner(const redisAsyncContext* context) {
  return static_cast<AsyncRedis*>(context->data);
}

}  // namespace

absl::StatusOr<std::unique_ptr<AsyncRedis>> AsyncRedis::Create(const RedisOptions& options,
                                                               PostedLost posted_lost) {
  ASSIGN_OR_RETURN(RedisEndpoint endpoint, PrepareRedisClient(options));
  std::unique_ptr<AsyncRedis> client(
      new AsyncRedis(options, std::move(endpoint), std::move(posted_lost)));
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

AsyncRedis::AsyncRedis(RedisOptions options, RedisEndpoint endpoint, PostedLost posted_lost)
    : options_(std::move(options)),
      endpoint_(std::move(endpoint)),
      posted_lost_hook_(std::move(posted_lost)),
      loop_(std::make_unique<Loop>()) {}

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

void AsyncRedis::Pipeline(std::vector<RedisCommand> commands, Done done) {
  auto call = std::make_unique<Call>();
  call->commands = std::move(commands);
  call->done = std::move(done);
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
      const bool reply_coming = in_flight_.size() > unsent_ && Connected();
      SendPosted();
      const size_t before = in_flight_.size();
      Send(std::move(call));
      if (reply_coming) {
        unsent_ += in_flight_.size() - before;
        // Replies already waiting are taken here rather than by a wake of
        // the loop thread; if they were the last ones coming, write now.
        redisAsyncHandleRead(context_);
        if (context_ != nullptr && in_flight_.size() <= unsent_) WriteNow(false);
      } else {
        // Written from this thread; under load, replies to earlier
        // pipelines are often waiting: taken here too.
        WriteNow(busy);
      }
    }
    completed.swap(completed_);
  }
  RunCompleted(completed);
}

void AsyncRedis::Post(RedisCommand command) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  posted_.push_back(std::move(command));
  // Busy: the next pipeline or reply writes it with its own.
  if (in_flight_.empty()) {
    SendPosted();
    WriteNow(false);
  }
}

void AsyncRedis::WriteNow(bool read) {
  if (Connected()) {
    // What hiredis cannot write now it writes when the loop sees EPOLLOUT.
    redisAsyncHandleWrite(context_);
    unsent_ = 0;
    if (read && context_ != nullptr) redisAsyncHandleRead(context_);
  }
  loop_->Apply();
}

bool AsyncRedis::Connected() const {
  return context_ != nullptr && (context_->c.flags & REDIS_CONNECTED) != 0;
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
  for (const RedisCommand& command : posted_) {
    if (!Queue(command, &PostedCallback, nullptr)) ++posted_lost_;
  }
  posted_.clear();
}

bool AsyncRedis::Queue(const RedisCommand& command, ReplyFn* fn, void* privdata) {
  argv_.clear();
  lengths_.clear();
  for (const std::string& arg : command) {
    argv_.push_back(arg.data());
    lengths_.push_back(arg.size());
  }
  return redisAsyncCommandArgv(context_, fn, privdata, static_cast<int>(argv_.size()), argv_.data(),
                               lengths_.data()) == REDIS_OK;
}

void AsyncRedis::PostedCallback(redisAsyncContext* context, void* reply, void*) {
  const auto* r = static_cast<const redisReply*>(reply);
  if (r == nullptr) {
    ++Owner(context)->posted_lost_;
  } else if (r->type == REDIS_REPLY_ERROR) {
    LogWarning("redis_posted_command_failed",
               {{"address", Owner(context)->address()}, {"error", std::string(r->str, r->len)}});
    ++Owner(context)->posted_lost_;  // refused: as lost as a dropped one
  }
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
  std::array<epoll_event, 4> events{};
  std::vector<std::unique_ptr<Call>> completed;
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
        if (context_ == nullptr || event.data.fd != loop_->redis_fd) continue;
        if ((event.events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) {
          redisAsyncHandleRead(context_);
          took_replies = true;
        }
        // The read may have dropped the connection.
        if (context_ != nullptr && (event.events & EPOLLOUT) != 0) {
          redisAsyncHandleWrite(context_);
        }
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
      loop_->Apply();
      completed.swap(completed_);
    }
    RunCompleted(completed);
    if (lost > 0 && posted_lost_hook_) posted_lost_hook_(lost);
    if (stop) return;
  }
}

bool AsyncRedis::EnsureConnected(std::string* why, const char** reason) {
  if (context_ != nullptr) return true;
  const absl::Time now = absl::Now();
  if (now < retry_after_) {
    *why = absl::StrCat("not reconnecting for ", absl::FormatDuration(kReconnectBackoff),
                        " after: ", connect_error_);
    *reason = connect_reason_;
    return false;
  }
  redisAsyncContext* context = endpoint_.unix_path.empty()
                                   ? redisAsyncConnect(endpoint_.host.c_str(), endpoint_.port)
                                   : redisAsyncConnectUnix(endpoint_.unix_path.c_str());
  if (context == nullptr || context->err != 0) {
    connect_error_ = context == nullptr ? "out of memory" : context->errstr;
    connect_reason_ = kUnavailableReason;
    if (context != nullptr) redisAsyncFree(context);
    retry_after_ = now + kReconnectBackoff;
    *why = absl::StrCat("cannot connect: ", connect_error_);
    return false;
  }
  context_ = context;
  drop_reason_.clear();
  context->data = this;
  loop_->redis_fd = context->c.fd;
  // hiredis's event hooks; data is the loop, which outlives every context.
  context->ev.data = loop_.get();
  context->ev.addRead = [](void* data) { static_cast<Loop*>(data)->wanted |= EPOLLIN; };
  context->ev.delRead = [](void* data) { static_cast<Loop*>(data)->wanted &= ~uint32_t{EPOLLIN}; };
  context->ev.addWrite = [](void* data) { static_cast<Loop*>(data)->wanted |= EPOLLOUT; };
  context->ev.delWrite = [](void* data) {
    static_cast<Loop*>(data)->wanted &= ~uint32_t{EPOLLOUT};
  };
  context->ev.cleanup = [](void* data) { static_cast<Loop*>(data)->Forget(); };
  redisAsyncSetConnectCallback(context, &ConnectCallback);
  redisAsyncSetDisconnectCallback(context, &DisconnectCallback);
  // Sent ahead of every pipeline on this connection.
  if (const RedisCommand auth = AuthCommand(options_); !auth.empty()) {
    Queue(auth, &AuthCallback, nullptr);
  }
  return true;
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
  const bool connected = (context_->c.flags & REDIS_CONNECTED) != 0;
  call->deadline = absl::Now() + options_.command_timeout +
                   (connected ? absl::ZeroDuration() : options_.connect_timeout);
  call->replies.reserve(call->commands.size());
  Call* raw = call.get();
  for (const RedisCommand& command : call->commands) {
    if (!Queue(command, &ReplyCallback, raw)) {
      if (raw->failure.empty()) raw->failure = "the connection refused a command";
      continue;
    }
    ++raw->remaining;
  }
  call->commands.clear();  // hiredis holds them, formatted
  if (raw->remaining == 0) {
    completed_.push_back(std::move(call));
    return;
  }
  in_flight_.push_back(std::move(call));
}

void AsyncRedis::AuthCallback(redisAsyncContext* context, void* reply, void*) {
  const auto* r = static_cast<const redisReply*>(reply);
  if (r == nullptr || r->type != REDIS_REPLY_ERROR) return;
  // Never go on as the default user: drop the connection (hiredis frees it
  // once this callback returns) and back off.
  AsyncRedis* self = Owner(context);
  LogError("redis_auth_failed", {{"address", self->address()}});
  self->connect_error_ = "authentication failed";
  self->connect_reason_ = kAuthFailedReason;
  self->drop_reason_ = "authentication failed";
  self->drop_code_ = kAuthFailedReason;
  self->retry_after_ = absl::Now() + kReconnectBackoff;
  self->context_ = nullptr;
  redisAsyncFree(context);
}

void AsyncRedis::ReplyCallback(redisAsyncContext* context, void* reply, void* privdata) {
  AsyncRedis* self = Owner(context);
  auto* call = static_cast<Call*>(privdata);
  if (reply == nullptr) {
    if (call->failure.empty()) {
      call->failure_reason = self->drop_code_;
      call->failure = !self->drop_reason_.empty()  ? self->drop_reason_
                      : context->errstr[0] != '\0' ? std::string(context->errstr)
                                                   : "the connection closed";
    }
  } else if (call->failure.empty()) {
    call->replies.push_back(ConvertHiredisReply(*static_cast<const redisReply*>(reply)));
  }
  if (--call->remaining == 0) self->CompleteFront();
}

void AsyncRedis::CompleteFront() {
  // Replies come in the order calls were sent: the call done is the oldest.
  // It is answered once the lock is released.
  completed_.push_back(std::move(in_flight_.front()));
  in_flight_.pop_front();
  // Calls failed with a dropped connection include unwritten ones.
  unsent_ = std::min(unsent_, in_flight_.size());
}

void AsyncRedis::ConnectCallback(const redisAsyncContext* context, int status) {
  if (status == REDIS_OK) return;
  AsyncRedis* self = Owner(context);
  // hiredis frees the context after this returns, failing what it holds.
  self->connect_error_ = context->errstr;
  self->connect_reason_ = kUnavailableReason;
  self->drop_reason_ = absl::StrCat("cannot connect: ", context->errstr);
  self->retry_after_ = absl::Now() + kReconnectBackoff;
  self->context_ = nullptr;
}

void AsyncRedis::DisconnectCallback(const redisAsyncContext* context, int) {
  AsyncRedis* self = Owner(context);
  self->context_ = nullptr;
  self->drop_code_ = kUnavailableReason;
}

void AsyncRedis::Drop(const std::string& why) {
  if (context_ == nullptr) return;
  drop_reason_ = why;
  redisAsyncContext* context = context_;
  // Fails every call in flight with why (their callbacks get no reply).
  redisAsyncFree(context);
  context_ = nullptr;
  loop_->Forget();
  drop_reason_.clear();
  drop_code_ = kUnavailableReason;
}

}  // namespace qunzu
