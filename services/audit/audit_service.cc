#include "services/audit/audit_service.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/auth_interceptor.h"
#include "common/handler.h"
#include "common/log.h"
#include "common/status.h"

namespace qunzu::audit {

void AddAuditFlags(FlagSet& flags, AuditConfig& config) {
  flags.AddString({"signing-key-file", "QUNZU_AUDIT_SIGNING_KEY_FILE",
                   "Ed25519 private key (PEM, `openssl genpkey -algorithm ed25519`) that signs "
                   "checkpoints; required."},
                  &config.signing_key_file, "");
  flags.AddInt64({"retention-days", "QUNZU_AUDIT_RETENTION_DAYS",
                  "Days entries are kept before their month may be purged; at least 180."},
                 &config.retention_days, 365, 1, 36500);
  flags.AddInt64({"checkpoint-every-entries", "QUNZU_AUDIT_CHECKPOINT_EVERY_ENTRIES",
                  "Sign a checkpoint after this many new entries."},
                 &config.checkpoint_every_entries, 1000, 1, 100000000);
  flags.AddDuration({"checkpoint-interval", "QUNZU_AUDIT_CHECKPOINT_INTERVAL",
                     "Sign a checkpoint when new entries have waited this long."},
                    &config.checkpoint_interval, absl::Seconds(60), absl::Milliseconds(100),
                    absl::Hours(24));
  flags.AddDuration({"purge-interval", "QUNZU_AUDIT_PURGE_INTERVAL",
                     "How often months past the retention are purged."},
                    &config.purge_interval, absl::Hours(1), absl::Seconds(1), absl::Hours(24 * 7));
  flags.AddInt64({"key-index-segment-leaves", "QUNZU_AUDIT_KEY_INDEX_SEGMENT_LEAVES",
                  "Leaves per segment of the background key index (actor, request_id, "
                  "subject); Query scans the segment still filling."},
                 &config.key_index_segment_leaves, 4096, 1, 1 << 20);
}

AuditServiceImpl::AuditServiceImpl(std::unique_ptr<AuditLog> log, absl::Duration purge_interval)
    : log_(std::move(log)), purge_interval_(purge_interval) {
  background_ = std::thread([this] { Background(); });
  indexer_ = std::thread([this] { Indexer(); });
}

AuditServiceImpl::~AuditServiceImpl() {
  stop_.Notify();
  if (background_.joinable()) background_.join();
  if (indexer_.joinable()) indexer_.join();
}

void AuditServiceImpl::Indexer() {
  // Passes of at most 64 segments run back to back while there are more;
  // then every 200 ms.
  constexpr uint64_t kSegmentsPerPass = 64;
  while (!stop_.HasBeenNotified()) {
    absl::StatusOr<uint64_t> indexed = log_->IndexKeys(kSegmentsPerPass);
    if (!indexed.ok()) {
      LogWarning("key_index_failed", {{"reason", ErrorReason(indexed.status())},
                                      {"message", indexed.status().message()}});
    }
    if (indexed.ok() && *indexed == kSegmentsPerPass) continue;
    stop_.WaitForNotificationWithTimeout(absl::Milliseconds(200));
  }
}

void AuditServiceImpl::Background() {
  const absl::Duration tick = std::min(absl::Seconds(1), log_->options().checkpoint_interval / 2);
  absl::Time next_purge = absl::Now();
  while (!stop_.WaitForNotificationWithTimeout(tick)) {
    if (absl::Status s = log_->MaybeCheckpoint(); !s.ok()) {
      LogWarning("checkpoint_failed", {{"reason", ErrorReason(s)}, {"message", s.message()}});
    }
    log_->UpdateGauges();
    if (absl::Now() >= next_purge) {
      next_purge = absl::Now() + purge_interval_;
      absl::StatusOr<v1::PurgeRun> run = log_->Purge();
      if (!run.ok()) {
        LogWarning("purge_failed",
                   {{"reason", ErrorReason(run.status())}, {"message", run.status().message()}});
      }
    }
  }
}

grpc::ServerUnaryReactor* AuditServiceImpl::Append(grpc::CallbackServerContext* context,
                                                   const grpc::ByteBuffer* request,
                                                   grpc::ByteBuffer* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto run = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(Caller caller, CallerOf(context));
    std::vector<grpc::Slice> slices;
    if (!request->Dump(&slices).ok()) {
      return MakeError(absl::StatusCode::kInvalidArgument, "REQUEST_UNPARSABLE",
                       "the request could not be read");
    }
    std::string bytes;
    for (const grpc::Slice& slice : slices) {
      bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
    }
    v1::AppendRequest parsed;
    if (!parsed.ParseFromString(bytes)) {
      return MakeError(absl::StatusCode::kInvalidArgument, "REQUEST_UNPARSABLE",
                       "the request is not a valid AppendRequest (a string field holds "
                       "invalid UTF-8, or the bytes are corrupt); nothing was appended");
    }
    ASSIGN_OR_RETURN(v1::AppendResponse out, log_->Append(caller, parsed));
    const std::string serialized = out.SerializeAsString();
    grpc::Slice slice(serialized);
    *response = grpc::ByteBuffer(&slice, 1);
    return absl::OkStatus();
  };
  absl::Status status;
  try {
    status = run();
  } catch (const std::exception& e) {
    LogError("handler_exception", {{"what", e.what()}});
    status =
        MakeError(absl::StatusCode::kInternal, "INTERNAL_ERROR", "the request failed unexpectedly");
  }
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

grpc::Status AuditServiceImpl::Query(grpc::ServerContext* context, const v1::QueryRequest* request,
                                     v1::QueryResponse* response) {
  return Serve(context, [&](const CallInfo& call) -> absl::Status {
    ASSIGN_OR_RETURN(*response, log_->Query(call.caller, call.peer, *request));
    return absl::OkStatus();
  });
}

grpc::Status AuditServiceImpl::GetCheckpoint(grpc::ServerContext* context,
                                             const v1::GetCheckpointRequest* request,
                                             v1::GetCheckpointResponse* response) {
  return Serve(context, [&](const CallInfo&) -> absl::Status {
    ASSIGN_OR_RETURN(*response, log_->GetCheckpoint(*request));
    return absl::OkStatus();
  });
}

grpc::Status AuditServiceImpl::ListCheckpoints(grpc::ServerContext* context,
                                               const v1::ListCheckpointsRequest* request,
                                               v1::ListCheckpointsResponse* response) {
  return Serve(context, [&](const CallInfo&) -> absl::Status {
    ASSIGN_OR_RETURN(*response, log_->ListCheckpoints(*request));
    return absl::OkStatus();
  });
}

grpc::Status AuditServiceImpl::GetInclusionProof(grpc::ServerContext* context,
                                                 const v1::GetInclusionProofRequest* request,
                                                 v1::GetInclusionProofResponse* response) {
  return Serve(context, [&](const CallInfo&) -> absl::Status {
    ASSIGN_OR_RETURN(*response, log_->GetInclusionProof(*request));
    return absl::OkStatus();
  });
}

grpc::Status AuditServiceImpl::GetConsistencyProof(grpc::ServerContext* context,
                                                   const v1::GetConsistencyProofRequest* request,
                                                   v1::GetConsistencyProofResponse* response) {
  return Serve(context, [&](const CallInfo&) -> absl::Status {
    ASSIGN_OR_RETURN(*response, log_->GetConsistencyProof(*request));
    return absl::OkStatus();
  });
}

grpc::Status AuditServiceImpl::VerifyRange(grpc::ServerContext* context,
                                           const v1::VerifyRangeRequest* request,
                                           v1::VerifyRangeResponse* response) {
  return Serve(context, [&](const CallInfo&) -> absl::Status {
    ASSIGN_OR_RETURN(*response, log_->VerifyRange(*request));
    return absl::OkStatus();
  });
}

grpc::Status AuditServiceImpl::GetRetentionStatus(grpc::ServerContext* context,
                                                  const v1::GetRetentionStatusRequest*,
                                                  v1::GetRetentionStatusResponse* response) {
  return Serve(context, [&](const CallInfo&) -> absl::Status {
    ASSIGN_OR_RETURN(*response, log_->GetRetentionStatus());
    return absl::OkStatus();
  });
}

grpc::Status AuditServiceImpl::SetLegalHold(grpc::ServerContext* context,
                                            const v1::SetLegalHoldRequest* request,
                                            v1::SetLegalHoldResponse* response) {
  return Serve(context, [&](const CallInfo& call) -> absl::Status {
    ASSIGN_OR_RETURN(*response, log_->SetLegalHold(call.caller, *request));
    return absl::OkStatus();
  });
}

absl::StatusOr<std::unique_ptr<grpc::Service>> MakeAuditService(ServiceDeps& deps,
                                                                const AuditConfig& config) {
  if (config.retention_days < kMinimumRetentionDays) {
    return InvalidField(
        "--retention-days",
        absl::StrCat("is ", config.retention_days, "; audit logs must be kept at least ",
                     kMinimumRetentionDays, " days (six months, R13.2), refusing to start"));
  }
  if (config.signing_key_file.empty()) {
    return InvalidField("--signing-key-file",
                        "is required: checkpoints are signed with an Ed25519 key (create one "
                        "with `openssl genpkey -algorithm ed25519 -out key.pem`, or set "
                        "QUNZU_AUDIT_SIGNING_KEY_FILE)");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Signer> signer, Signer::FromPemFile(config.signing_key_file));
  AuditLogOptions options;
  options.retention = absl::Hours(24) * config.retention_days;
  options.checkpoint_every_entries = config.checkpoint_every_entries;
  options.checkpoint_interval = config.checkpoint_interval;
  options.index_segment_leaves = static_cast<uint64_t>(config.key_index_segment_leaves);
  ASSIGN_OR_RETURN(std::unique_ptr<AuditLog> log,
                   AuditLog::Create(deps.mysql, std::move(signer), options, &deps.metrics));
  return std::make_unique<AuditServiceImpl>(std::move(log), config.purge_interval);
}

const std::vector<Migration>& AuditServiceMigrations() { return AuditLogMigrations(); }

}  // namespace qunzu::audit
