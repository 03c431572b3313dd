// The gRPC face of the audit service: the tamper-evident operation log
// (R11.4, R13). Handlers take the caller from the auth interceptor and call
// AuditLog; a background thread signs checkpoints when entries have waited
// --checkpoint-interval, refreshes the gauges and runs the purge every
// --purge-interval.
#ifndef QUNZU_SERVICES_AUDIT_AUDIT_SERVICE_H_
#define QUNZU_SERVICES_AUDIT_AUDIT_SERVICE_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "common/config.h"
#include "common/service_main.h"
#include "qunzu/audit/v1/audit.grpc.pb.h"
#include "services/audit/audit_log.h"

namespace qunzu::audit {

// The audit binary's own flags.
struct AuditConfig {
  std::string signing_key_file;
  int64_t retention_days = 365;
  int64_t checkpoint_every_entries = 1000;
  absl::Duration checkpoint_interval = absl::Seconds(60);
  absl::Duration purge_interval = absl::Hours(1);
  int64_t key_index_segment_leaves = 4096;
};

// Registers AuditConfig's flags (--signing-key-file, --retention-days,
// --checkpoint-every-entries, --checkpoint-interval, --purge-interval,
// --key-index-segment-leaves).
void AddAuditFlags(FlagSet& flags, AuditConfig& config);

// Append takes its request as raw bytes, so a request that protobuf cannot
// parse (a string field holding invalid UTF-8 among them) is answered
// INVALID_ARGUMENT rather than gRPC's bare INTERNAL.
class AuditServiceImpl final
    : public v1::AuditService::WithRawCallbackMethod_Append<v1::AuditService::Service> {
 public:
  AuditServiceImpl(std::unique_ptr<AuditLog> log, absl::Duration purge_interval);
  ~AuditServiceImpl() override;

  grpc::ServerUnaryReactor* Append(grpc::CallbackServerContext* context,
                                   const grpc::ByteBuffer* request,
                                   grpc::ByteBuffer* response) override;
  grpc::Status Query(grpc::ServerContext* context, const v1::QueryRequest* request,
                     v1::QueryResponse* response) override;
  grpc::Status GetCheckpoint(grpc::ServerContext* context, const v1::GetCheckpointRequest* request,
                             v1::GetCheckpointResponse* response) override;
  grpc::Status ListCheckpoints(grpc::ServerContext* context,
                               const v1::ListCheckpointsRequest* request,
                               v1::ListCheckpointsResponse* response) override;
  grpc::Status GetInclusionProof(grpc::ServerContext* context,
                                 const v1::GetInclusionProofRequest* request,
                                 v1::GetInclusionProofResponse* response) override;
  grpc::Status GetConsistencyProof(grpc::ServerContext* context,
                                   const v1::GetConsistencyProofRequest* request,
                                   v1::GetConsistencyProofResponse* response) override;
  grpc::Status VerifyRange(grpc::ServerContext* context, const v1::VerifyRangeRequest* request,
                           v1::VerifyRangeResponse* response) override;
  grpc::Status GetRetentionStatus(grpc::ServerContext* context,
                                  const v1::GetRetentionStatusRequest* request,
                                  v1::GetRetentionStatusResponse* response) override;
  grpc::Status SetLegalHold(grpc::ServerContext* context, const v1::SetLegalHoldRequest* request,
                            v1::SetLegalHoldResponse* response) override;

  AuditLog& log() { return *log_; }

 private:
  void Background();
  // Indexes the key index's segments as they complete (key_index.h).
  void Indexer();

  std::unique_ptr<AuditLog> log_;
  absl::Duration purge_interval_;
  absl::Notification stop_;
  std::thread background_;
  std::thread indexer_;
};

// Builds the service from the shared resources and the audit flags.
absl::StatusOr<std::unique_ptr<grpc::Service>> MakeAuditService(ServiceDeps& deps,
                                                                const AuditConfig& config);

// This service's own schema migrations (after CommonMigrations()).
const std::vector<Migration>& AuditServiceMigrations();

}  // namespace qunzu::audit

#endif  // QUNZU_SERVICES_AUDIT_AUDIT_SERVICE_H_
