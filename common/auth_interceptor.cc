#include "common/auth_interceptor.h"

#include <array>
#include <functional>
#include <mutex>
#include <optional>

#include "absl/container/flat_hash_map.h"
#include "common/status.h"

namespace qunzu {
namespace {

using grpc::experimental::InterceptionHookPoints;

// Decisions of calls in flight, keyed by their ServerContext. Sharded so
// concurrent calls rarely share a lock.
class DecisionRegistry {
 public:
  void Put(const grpc::ServerContextBase* context, absl::StatusOr<Caller> decision) {
    Shard& shard = ShardOf(context);
    std::lock_guard<std::mutex> lock(shard.mu);
    shard.decisions.insert_or_assign(context, std::move(decision));
  }

  void Erase(const grpc::ServerContextBase* context) {
    Shard& shard = ShardOf(context);
    std::lock_guard<std::mutex> lock(shard.mu);
    shard.decisions.erase(context);
  }

  std::optional<absl::StatusOr<Caller>> Get(const grpc::ServerContextBase* context) {
    Shard& shard = ShardOf(context);
    std::lock_guard<std::mutex> lock(shard.mu);
    auto it = shard.decisions.find(context);
    if (it == shard.decisions.end()) return std::nullopt;
    return it->second;
  }

 private:
  struct Shard {
    std::mutex mu;
    absl::flat_hash_map<const grpc::ServerContextBase*, absl::StatusOr<Caller>> decisions;
  };

  Shard& ShardOf(const grpc::ServerContextBase* context) {
    return shards_[std::hash<const void*>()(context) % shards_.size()];
  }

  std::array<Shard, 32> shards_;
};

DecisionRegistry& Registry() {
  static DecisionRegistry* registry = new DecisionRegistry();
  return *registry;
}

class AuthInterceptor : public grpc::experimental::Interceptor {
 public:
  AuthInterceptor(const Authorizer* authorizer, grpc::experimental::ServerRpcInfo* info)
      : authorizer_(authorizer), info_(info) {}

  ~AuthInterceptor() override { Registry().Erase(info_->server_context()); }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      Decide(*methods->GetRecvInitialMetadata());
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS) &&
        denial_.has_value()) {
      methods->ModifySendStatus(ToGrpcStatus(*denial_));
    }
    methods->Proceed();
  }

 private:
  void Decide(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) {
    std::optional<absl::string_view> authorization;
    auto it = metadata.find("authorization");
    if (it != metadata.end())
      authorization = absl::string_view(it->second.data(), it->second.size());
    absl::StatusOr<Caller> decision = authorizer_->Check(info_->method(), authorization);
    if (!decision.ok()) denial_ = decision.status();
    Registry().Put(info_->server_context(), std::move(decision));
  }

  const Authorizer* authorizer_;
  grpc::experimental::ServerRpcInfo* info_;
  std::optional<absl::Status> denial_;
};

}  // namespace

AuthInterceptorFactory::AuthInterceptorFactory(std::shared_ptr<const Authorizer> authorizer)
    : authorizer_(std::move(authorizer)) {}

grpc::experimental::Interceptor* AuthInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new AuthInterceptor(authorizer_.get(), info);
}

absl::StatusOr<Caller> CallerOf(const grpc::ServerContextBase* context) {
  if (auto decision = Registry().Get(context)) return *std::move(decision);
  return MakeError(absl::StatusCode::kInternal, "AUTH_NOT_INSTALLED",
                   "no authentication decision for this call");
}

}  // namespace qunzu
