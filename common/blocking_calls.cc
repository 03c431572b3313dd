#include "common/blocking_calls.h"

#include <pthread.h>

#include <chrono>

namespace qunzu {

BlockingCalls::BlockingCalls(int threads, prometheus::Registry* registry, const std::string& pool) {
  if (registry != nullptr) {
    const prometheus::Labels labels{{"pool", pool}};
    prometheus::BuildGauge()
        .Name("qunzu_blocking_calls_threads")
        .Help("Threads that run blocking RPC bodies (or other blocking work), by pool.")
        .Register(*registry)
        .Add(labels)
        .Set(threads);
    pending_gauge_ = &prometheus::BuildGauge()
                          .Name("qunzu_blocking_calls_pending")
                          .Help(
                              "Blocking work handed over and not yet finished (queued or "
                              "running), by pool; above its threads, calls wait their turn.")
                          .Register(*registry)
                          .Add(labels);
    abandoned_ = &prometheus::BuildCounter()
                      .Name("qunzu_blocking_calls_abandoned_total")
                      .Help(
                          "Calls answered without running their body because the caller had "
                          "gone (cancelled, or past its deadline) when a thread took them.")
                      .Register(*registry)
                      .Add(labels);
  }
  threads_.reserve(threads);
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
}

BlockingCalls::~BlockingCalls() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& thread : threads_) thread.join();
}

int BlockingCalls::pending() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(queue_.size()) + running_;
}

bool BlockingCalls::AwaitPending(int n, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto reached = [this, n]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return static_cast<int>(queue_.size()) + running_ >= n;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
}

bool BlockingCalls::AwaitIdle(absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return queue_.empty() && running_ == 0; };
  return mu_.AwaitWithTimeout(absl::Condition(&idle), timeout);
}

void BlockingCalls::Submit(std::function<void()> work) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(work));
  if (pending_gauge_ != nullptr) pending_gauge_->Increment();
}

std::optional<grpc::Status> BlockingCalls::CallerGone(const grpc::CallbackServerContext& context) {
  std::optional<grpc::Status> gone;
  if (context.IsCancelled()) {
    gone = ToGrpcStatus(
        MakeError(absl::StatusCode::kCancelled, "CANCELLED", "the call was cancelled"));
  } else if (context.deadline() <= std::chrono::system_clock::now()) {
    gone = ToGrpcStatus(MakeError(absl::StatusCode::kDeadlineExceeded, "DEADLINE_EXCEEDED",
                                  "the call's deadline passed while it waited its turn"));
  }
  if (gone.has_value() && abandoned_ != nullptr) abandoned_->Increment();
  return gone;
}

void BlockingCalls::Run() {
  // For an operator reading `top -H`.
  pthread_setname_np(pthread_self(), "qunzu-blocking");
  for (;;) {
    std::function<void()> work;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](BlockingCalls* self)
               ABSL_NO_THREAD_SAFETY_ANALYSIS { return self->stopping_ || !self->queue_.empty(); },
          this));
      // Stopping: what was handed over still runs, so every call is answered.
      if (queue_.empty()) return;
      work = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
    }
    work();
    absl::MutexLock lock(&mu_);
    --running_;
    if (pending_gauge_ != nullptr) pending_gauge_->Decrement();
  }
}

}  // namespace qunzu
