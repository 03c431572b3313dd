#include "services/identity/identity_service.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <cstdlib>

#include "common/handler.h"
#include "common/log.h"
#include "services/identity/account_store.h"
#include "services/identity/credit_events.h"
#include "services/identity/pii_crypto.h"
#include "services/identity/projections.h"
#include "services/identity/provider_verifier.h"

namespace qunzu::identity {
namespace {

struct IdentityFlags {
  std::string pii_keys_file;
  int64_t max_accounts_per_id_number = 3;
  int64_t attempts_per_window = 5;
  absl::Duration attempt_window;
  std::string verifier;
  std::string provider_target;
  std::string provider_name;
  absl::Duration provider_deadline;
  int64_t provider_attempts = 3;
  std::string credit_target;
};

IdentityFlags& Flags() {
  static auto* flags = new IdentityFlags();
  return *flags;
}

template <typename Request, typename Response, typename Fn>
grpc::Status Handle(grpc::ServerContext* context, absl::string_view method, const Request& request,
                    Response* response, Fn fn) {
  return Serve(context, [&](const CallInfo& call) -> absl::Status {
    RequestContext ctx{call.caller, call.peer,
                       absl::StrCat("/qunzu.identity.v1.IdentityService/", method)};
    ASSIGN_OR_RETURN(*response, fn(ctx, request));
    return absl::OkStatus();
  });
}

// Everything the service owns; members are destroyed in reverse order, so
// the relay stops before its receiver and the logic go.
class OwningIdentityService final : public IdentityServiceImpl {
 public:
  struct Parts {
    std::unique_ptr<PiiCrypto> crypto;
    std::unique_ptr<Verifier> verifier;
    std::unique_ptr<ProjectionWriter> projections;
    std::unique_ptr<IdentityMetrics> metrics;
    std::unique_ptr<IdentityLogic> logic;
    std::unique_ptr<CreditEventReceiver> credit_receiver;
    std::unique_ptr<OutboxRelay> credit_relay;
  };
  explicit OwningIdentityService(std::unique_ptr<Parts> parts)
      : IdentityServiceImpl(*parts->logic), parts_(std::move(parts)) {}
  ~OwningIdentityService() override {
    if (parts_->credit_relay) parts_->credit_relay->Stop();
  }

 private:
  std::unique_ptr<Parts> parts_;
};

// The keys from --pii-keys-file, else from the QUNZU_IDENTITY_KEYS variable
// itself (kept off the command line, where `ps` would show it).
absl::StatusOr<PiiCrypto> LoadKeys(const std::string& file) {
  if (!file.empty()) return PiiCrypto::LoadFile(file);
  const char* inline_keys = std::getenv("QUNZU_IDENTITY_KEYS");
  if (inline_keys == nullptr || *inline_keys == '\0') {
    return InvalidField("--pii-keys-file",
                        "is required (or set QUNZU_IDENTITY_KEYS_FILE, or QUNZU_IDENTITY_KEYS "
                        "to the keys themselves)");
  }
  absl::StatusOr<PiiCrypto> crypto = PiiCrypto::Parse(inline_keys);
  if (!crypto.ok()) {
    return MakeError(crypto.status().code(), ErrorReason(crypto.status()),
                     absl::StrCat("QUNZU_IDENTITY_KEYS: ", crypto.status().message()));
  }
  return crypto;
}

}  // namespace

#define QUNZU_IDENTITY_HANDLER(Name)                                                \
  grpc::Status IdentityServiceImpl::Name(grpc::ServerContext* context,              \
                                         const v1::Name##Request* request,          \
                                         v1::Name##Response* response) {            \
    return Handle(context, #Name, *request, response,                               \
                  [this](const RequestContext& ctx, const v1::Name##Request& req) { \
                    return logic_.Name(ctx, req);                                   \
                  });                                                               \
  }

QUNZU_IDENTITY_HANDLER(CreateAccount)
QUNZU_IDENTITY_HANDLER(GetAccount)
QUNZU_IDENTITY_HANDLER(SubmitRealName)
QUNZU_IDENTITY_HANDLER(GetVerification)
QUNZU_IDENTITY_HANDLER(RevealIdentity)
QUNZU_IDENTITY_HANDLER(PublishAgreement)
QUNZU_IDENTITY_HANDLER(AcceptAgreement)
QUNZU_IDENTITY_HANDLER(GetAgreementStatus)

#undef QUNZU_IDENTITY_HANDLER

void AddIdentityFlags(FlagSet& flags) {
  IdentityFlags& f = Flags();
  flags.AddString({"pii-keys-file", "QUNZU_IDENTITY_KEYS_FILE",
                   "File of AES-256 field keys (`key <version> <hex>`) and the blind-index key "
                   "(`hmac <hex>`); required."},
                  &f.pii_keys_file, "");
  flags.AddInt64({"max-accounts-per-id-number", "QUNZU_IDENTITY_MAX_ACCOUNTS_PER_ID_NUMBER",
                  "How many accounts one resident ID number may verify."},
                 &f.max_accounts_per_id_number, 3, 1, 1000);
  flags.AddInt64({"verification-attempts", "QUNZU_IDENTITY_VERIFICATION_ATTEMPTS",
                  "Verification attempts allowed per account per window."},
                 &f.attempts_per_window, 5, 1, 1000);
  flags.AddDuration({"verification-window", "QUNZU_IDENTITY_VERIFICATION_WINDOW",
                     "The window of --verification-attempts."},
                    &f.attempt_window, absl::Hours(1), absl::Seconds(1), absl::Hours(24 * 30));
  flags.AddChoice({"verifier", "QUNZU_IDENTITY_VERIFIER",
                   "Who decides verifications: the offline checks or an external provider."},
                  &f.verifier, "offline", {"offline", "provider"});
  flags.AddString({"verification-provider-target", "QUNZU_IDENTITY_PROVIDER_TARGET",
                   "The provider (identity.v1.VerificationProvider), host:port."},
                  &f.provider_target, "");
  flags.AddString({"verification-provider-name", "QUNZU_IDENTITY_PROVIDER_NAME",
                   "The provider's name, recorded with each verification."},
                  &f.provider_name, "provider");
  flags.AddDuration({"verification-provider-deadline", "QUNZU_IDENTITY_PROVIDER_DEADLINE",
                     "Deadline of one provider call."},
                    &f.provider_deadline, absl::Seconds(2), absl::Milliseconds(10),
                    absl::Seconds(8));
  flags.AddInt64({"verification-provider-attempts", "QUNZU_IDENTITY_PROVIDER_ATTEMPTS",
                  "Provider calls in all when it answers UNAVAILABLE."},
                 &f.provider_attempts, 3, 1, 5);
  flags.AddString({"credit-target", "QUNZU_CREDIT_TARGET",
                   "The credit service, host:port, for IDENTITY_VERIFIED events."},
                  &f.credit_target, "127.0.0.1:50053");
}

absl::StatusOr<std::unique_ptr<grpc::Service>> MakeIdentityService(ServiceDeps& deps) {
  const IdentityFlags& f = Flags();
  auto parts = std::make_unique<OwningIdentityService::Parts>();
  parts->metrics = std::make_unique<IdentityMetrics>(deps.metrics);
  ASSIGN_OR_RETURN(PiiCrypto crypto, LoadKeys(f.pii_keys_file));
  parts->crypto = std::make_unique<PiiCrypto>(std::move(crypto));
  if (f.verifier == "provider") {
    if (f.provider_target.empty()) {
      return InvalidField("--verification-provider-target", "is required with --verifier=provider");
    }
    ProviderOptions options{f.provider_name, f.provider_deadline,
                            static_cast<int>(f.provider_attempts)};
    parts->verifier = std::make_unique<ProviderVerifier>(
        grpc::CreateChannel(f.provider_target, grpc::InsecureChannelCredentials()), options);
  } else {
    parts->verifier = std::make_unique<OfflineVerifier>();
  }
  if (deps.redis != nullptr) {
    parts->projections = std::make_unique<RedisProjectionWriter>(*deps.redis);
  }
  parts->credit_receiver = std::make_unique<CreditEventReceiver>(
      grpc::CreateChannel(f.credit_target, grpc::InsecureChannelCredentials()), deps.service_token);
  OutboxRelayOptions relay_options;
  relay_options.topic = kCreditTopic;
  ASSIGN_OR_RETURN(parts->credit_relay, OutboxRelay::Create(deps.mysql, *parts->credit_receiver,
                                                            deps.metrics, relay_options));
  OutboxRelay* relay = parts->credit_relay.get();
  IdentityOptions options{f.max_accounts_per_id_number, f.attempts_per_window, f.attempt_window};
  parts->logic = std::make_unique<IdentityLogic>(
      IdentityDeps{deps.mysql, parts->projections.get(), SystemClock::Get(), *parts->crypto,
                   *parts->verifier, options, [relay] { relay->Wake(); }, parts->metrics.get()});
  if (absl::Status s = parts->logic->RebuildProjections(); !s.ok()) {
    LogWarning("projection_rebuild_failed", {{"reason", ErrorReason(s)}});
  }
  parts->credit_relay->Start();
  return std::make_unique<OwningIdentityService>(std::move(parts));
}

const std::vector<Migration>& IdentityServiceMigrations() { return IdentityMigrations(); }

}  // namespace qunzu::identity
