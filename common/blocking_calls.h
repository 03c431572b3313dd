// Unary callback methods whose bodies block (MySQL, another service), for a
// service that serves every method through gRPC's callback API.
//
// Why every method: on gRPC 1.51, a server with both sync and callback
// methods (moderation's ScreenMessage is a callback method) held the sync
// calls of a client in another process for ~100 ms about every 1.1 s, at
// 1,000 calls/s as at 10,000 (docs/benchmarks.md, "sync methods beside a
// callback method"); callback methods on the same server were not held. A
// body that waits must not run on gRPC's few callback threads (it would
// hold every callback call behind it), so it runs here, on threads of its
// own, and the call is finished from there.
#ifndef QUNZU_COMMON_BLOCKING_CALLS_H_
#define QUNZU_COMMON_BLOCKING_CALLS_H_

#include <grpcpp/server_context.h>
#include <grpcpp/support/server_callback.h>
#include <grpcpp/support/status.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/handler.h"
#include "common/status.h"

namespace qunzu {

// Its threads are named "qunzu-blocking". With a registry it exports, under
// the label pool="<pool>": qunzu_blocking_calls_threads (its threads),
// qunzu_blocking_calls_pending (work handed over and not finished: above
// the threads, calls are waiting their turn) and
// qunzu_blocking_calls_abandoned_total (calls answered without running
// their body because the caller had gone — cancelled, or its deadline
// passed while it waited).
class BlockingCalls {
 public:
  // `threads` bodies run at once; more wait their turn in order.
  explicit BlockingCalls(int threads, prometheus::Registry* registry = nullptr,
                         const std::string& pool = "");
  // Runs every body already handed over (their calls are answered), then
  // stops the threads.
  ~BlockingCalls();
  BlockingCalls(const BlockingCalls&) = delete;
  BlockingCalls& operator=(const BlockingCalls&) = delete;

  // Runs body() -> grpc::Status on one of the threads and finishes the
  // call with it. The request and response stay valid until then (gRPC
  // keeps them until the call is finished).
  //
  // A call whose caller has gone by the time a thread takes it (cancelled,
  // or past its deadline) is answered CANCELLED or DEADLINE_EXCEEDED without
  // running its body: nobody would read the answer, and the work (MySQL,
  // other services) is spared when the pool is behind. A caller retries
  // with the same request id, as after any lost answer.
  template <typename Body>
  grpc::ServerUnaryReactor* Serve(grpc::CallbackServerContext* context, Body body) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    Submit([this, context, reactor, body = std::move(body)]() mutable {
      if (std::optional<grpc::Status> gone = CallerGone(*context); gone.has_value()) {
        reactor->Finish(*gone);
        return;
      }
      grpc::Status status;
      try {
        status = body();
      } catch (...) {
        // Bodies map their own failures (Serve in handler.h); this is the
        // last guard, so that a call is always answered.
        status = ToGrpcStatus(MakeError(absl::StatusCode::kInternal, "INTERNAL_ERROR",
                                        "the request failed unexpectedly"));
      }
      reactor->Finish(status);
    });
    return reactor;
  }

  // The usual handler (Serve in handler.h) on one of the threads: runs
  // fn(const CallInfo&) -> absl::Status for an authenticated, authorised
  // call and finishes the call with its mapped status. fn runs after this
  // returns, so it captures by value (the request and response pointers
  // stay valid until the call is finished).
  template <typename Fn>
  grpc::ServerUnaryReactor* Handle(grpc::CallbackServerContext* context, Fn fn) {
    return Serve(context, [context, fn = std::move(fn)]() mutable -> grpc::Status {
      return qunzu::Serve(context, fn);
    });
  }

  // Runs work on one of the threads (after what was handed over before).
  void Submit(std::function<void()> work);

  // Work handed over and not yet finished (queued or running).
  int pending() const;
  // Waits until pending() >= n; false after `timeout`.
  bool AwaitPending(int n, absl::Duration timeout) const;
  // Waits until pending() == 0; false after `timeout`.
  bool AwaitIdle(absl::Duration timeout) const;

 private:
  void Run();
  // CANCELLED or DEADLINE_EXCEEDED (with their reason) for a call whose
  // caller has gone, counted as abandoned; nullopt for one still wanted.
  std::optional<grpc::Status> CallerGone(const grpc::CallbackServerContext& context);

  prometheus::Gauge* pending_gauge_ = nullptr;
  prometheus::Counter* abandoned_ = nullptr;

  mutable absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

// The usual handler (Serve in handler.h) for a body that does not block
// (it only computes), finished on the calling gRPC thread: no hand-over.
template <typename Fn>
grpc::ServerUnaryReactor* ServeInline(grpc::CallbackServerContext* context, Fn&& fn) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(Serve(context, std::forward<Fn>(fn)));
  return reactor;
}

}  // namespace qunzu

#endif  // QUNZU_COMMON_BLOCKING_CALLS_H_
