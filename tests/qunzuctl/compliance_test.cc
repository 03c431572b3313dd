#include "services/qunzuctl/compliance.h"

#include <gmock/gmock.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <sstream>

#include "absl/strings/match.h"
#include "qunzu/audit/v1/audit.pb.h"
#include "qunzu/credit/v1/credit.pb.h"
#include "qunzu/groups/v1/groups.pb.h"
#include "qunzu/identity/v1/identity.pb.h"
#include "qunzu/moderation/v1/moderation.pb.h"
#include "services/audit/log_verifier.h"
#include "services/audit/merkle.h"
#include "services/audit/signer.h"
#include "services/qunzuctl/exit_codes.h"
#include "tests/audit/audit_test_util.h"

namespace qunzu::ctl {
namespace {

using ::testing::HasSubstr;
using Handler =
    std::function<absl::Status(const google::protobuf::Message&, google::protobuf::Message*)>;

// Answers from a table by method name; UNIMPLEMENTED for anything else, as
// a service whose RPC is not built yet does.
class FakeCaller : public RpcCaller {
 public:
  std::map<std::string, Handler> handlers;
  absl::Status Call(const google::protobuf::MethodDescriptor& method,
                    const google::protobuf::Message& request,
                    google::protobuf::Message* response) override {
    auto it = handlers.find(method.name());
    if (it == handlers.end()) return absl::UnimplementedError(method.name() + " is not built");
    return it->second(request, response);
  }
};

template <typename T>
T& As(google::protobuf::Message* message) {
  return *google::protobuf::DynamicCastToGenerated<T>(message);
}

class ComplianceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    signer_ = *audit::Signer::FromPem(audit::testing::NewKeyPem());
    leaf_a_ = audit::LeafHash("a");
    leaf_b_ = audit::LeafHash("b");
    first_ = Sign(1, audit::HashToBytes(leaf_a_));
    second_ = Sign(2, audit::HashToBytes(audit::NodeHash(leaf_a_, leaf_b_)));
    auto& h = rpc_.handlers;
    h["GetCheckpoint"] = [this](const auto& request, auto* response) {
      auto& out = As<audit::v1::GetCheckpointResponse>(response);
      uint64_t size =
          google::protobuf::DynamicCastToGenerated<audit::v1::GetCheckpointRequest>(&request)
              ->tree_size();
      *out.mutable_checkpoint() = size == 1 ? first_ : second_;
      out.mutable_signing_key()->set_public_key(signer_->public_key());
      return absl::OkStatus();
    };
    h["ListCheckpoints"] = [this](const auto&, auto* response) {
      auto& out = As<audit::v1::ListCheckpointsResponse>(response);
      *out.add_checkpoints() = first_;
      *out.add_checkpoints() = second_;
      return absl::OkStatus();
    };
    h["GetConsistencyProof"] = [this](const auto&, auto* response) {
      As<audit::v1::GetConsistencyProofResponse>(response).add_hashes(proof_);
      return absl::OkStatus();
    };
    proof_ = audit::HashToBytes(leaf_b_);
    h["GetRetentionStatus"] = [this](const auto&, auto* response) {
      auto& out = As<audit::v1::GetRetentionStatusResponse>(response);
      out.mutable_retention()->set_seconds(retention_days_ * 86400);
      out.mutable_minimum_retention()->set_seconds(180 * 86400);
      out.mutable_oldest_entry_time()->set_seconds(1800000000);
      out.set_tree_size(2);
      return absl::OkStatus();
    };
    h["GetAgreementStatus"] = [](const auto&, auto* response) {
      auto* agreement = As<identity::v1::GetAgreementStatusResponse>(response).add_current();
      agreement->set_kind(identity::v1::AGREEMENT_KIND_SERVICE_AGREEMENT);
      agreement->set_version(3);
      agreement->set_label("2026-11");
      return absl::OkStatus();
    };
    h["GetPolicy"] = [](const auto&, auto* response) {
      auto* policy = As<credit::v1::GetPolicyResponse>(response).mutable_policy();
      policy->set_version("default-1");
      auto* level = policy->add_level_rules();
      level->set_name("restricted");
      level->mutable_entitlements()->set_groups_may_join(20);
      return absl::OkStatus();
    };
    h["ExportFilingDocument"] = [](const auto&, auto* response) {
      groups::v1::GroupsPolicy policy;
      policy.set_version("groups-1");
      policy.set_info_page_min_members(100);
      auto* tier = policy.add_tiers();
      tier->set_scale_tier(common::v1::SCALE_TIER_SMALL);
      tier->set_member_cap(100);
      auto& out = As<groups::v1::ExportFilingDocumentResponse>(response);
      std::string json;
      (void)google::protobuf::util::MessageToJsonString(policy, &json);
      out.set_content(json);
      return absl::OkStatus();
    };
  }

  audit::v1::Checkpoint Sign(uint64_t size, const std::string& root) {
    audit::v1::Checkpoint checkpoint;
    checkpoint.set_tree_size(size);
    checkpoint.set_root_hash(root);
    checkpoint.mutable_time()->set_seconds(1800000000 + static_cast<int64_t>(size));
    checkpoint.set_key_id(signer_->key_id());
    checkpoint.set_signature(signer_->Sign(audit::CheckpointSignedMessage(checkpoint)));
    return checkpoint;
  }

  const ComplianceItem& Find(const std::vector<ComplianceItem>& items, const std::string& id) {
    for (const ComplianceItem& item : items) {
      if (absl::StartsWith(item.requirements, id)) return item;
    }
    ADD_FAILURE() << id;
    return items.front();
  }

  FakeCaller rpc_;
  std::unique_ptr<audit::Signer> signer_;
  audit::Hash leaf_a_, leaf_b_;
  audit::v1::Checkpoint first_, second_;
  std::string proof_;
  int64_t retention_days_ = 365;
};

TEST_F(ComplianceTest, UnimplementedRpcsAreMissingAndTheReportIncomplete) {
  std::vector<ComplianceItem> items = CollectCompliance(rpc_, {});
  EXPECT_EQ(ComplianceExitCode(items), kExitIncomplete);
  const ComplianceItem& filings = Find(items, "R11.5");
  EXPECT_EQ(filings.verdict, Verdict::kMissing);
  EXPECT_THAT(filings.evidence, HasSubstr("moderation ListFilings failed: UNIMPLEMENTED"));
  EXPECT_EQ(Find(items, "R12.3").verdict, Verdict::kMissing);
  EXPECT_EQ(Find(items, "R5.3").verdict, Verdict::kMissing);

  const ComplianceItem& retention = Find(items, "R13.2");
  EXPECT_EQ(retention.verdict, Verdict::kOk);
  EXPECT_THAT(retention.evidence, HasSubstr("retention 365 days (floor 180 days)"));
  const ComplianceItem& checkpoint = Find(items, "R13.3");
  EXPECT_EQ(checkpoint.verdict, Verdict::kOk) << checkpoint.evidence;
  EXPECT_THAT(checkpoint.evidence, HasSubstr("consistent with the previous checkpoint at size 1"));
  EXPECT_THAT(checkpoint.evidence, HasSubstr("not pinned"));
  EXPECT_THAT(Find(items, "R5.4").evidence, HasSubstr("SERVICE_AGREEMENT v3 \"2026-11\""));
  EXPECT_THAT(Find(items, "R8.1").evidence, HasSubstr("SMALL 100 members"));

  std::ostringstream table, json;
  RenderCompliance(items, {}, OutputFormat::kTable, table);
  EXPECT_THAT(table.str(), HasSubstr("Article 13\n"));
  EXPECT_THAT(table.str(), HasSubstr("INCOMPLETE"));
  RenderCompliance(items, {}, OutputFormat::kJson, json);
  EXPECT_THAT(json.str(), HasSubstr("\"verdict\": \"MISSING\""));
  EXPECT_THAT(json.str(), HasSubstr("\"complete\": false"));
}

TEST_F(ComplianceTest, ATamperedProofOrShortRetentionFails) {
  proof_ = audit::HashToBytes(audit::LeafHash("c"));
  retention_days_ = 90;
  std::vector<ComplianceItem> items = CollectCompliance(rpc_, {});
  EXPECT_EQ(Find(items, "R13.3").verdict, Verdict::kFail);
  EXPECT_THAT(Find(items, "R13.3").evidence, HasSubstr("does not verify"));
  EXPECT_EQ(Find(items, "R13.2").verdict, Verdict::kFail);
  EXPECT_EQ(ComplianceExitCode(items), kExitCheckFailed);
}

TEST_F(ComplianceTest, ACheckpointSignedByAnotherKeyFails) {
  std::unique_ptr<audit::Signer> other = *audit::Signer::FromPem(audit::testing::NewKeyPem());
  second_.set_signature(other->Sign(audit::CheckpointSignedMessage(second_)));
  std::vector<ComplianceItem> items = CollectCompliance(rpc_, {});
  EXPECT_EQ(Find(items, "R13.3").verdict, Verdict::kFail);
  EXPECT_THAT(Find(items, "R13.3").evidence, HasSubstr("signature"));
}

TEST_F(ComplianceTest, WhenEveryRpcAnswersTheReportIsComplete) {
  auto empty = [](const auto&, auto*) { return absl::OkStatus(); };
  for (const char* method : {"ListRuleSets", "ListEmergencyModes", "ListDispositions",
                             "ListBlacklist", "ListFilings", "GetHandlingStats"}) {
    rpc_.handlers[method] = empty;
  }
  rpc_.handlers["ListRuleSets"] = [](const auto&, auto* response) {
    auto* set = As<moderation::v1::ListRuleSetsResponse>(response).add_rule_sets();
    set->set_name("demo");
    set->set_active_version(2);
    set->set_rule_count(12);
    return absl::OkStatus();
  };
  std::vector<ComplianceItem> items = CollectCompliance(rpc_, {});
  EXPECT_EQ(ComplianceExitCode(items), kExitOk);
  EXPECT_THAT(Find(items, "R5.2").evidence, HasSubstr("\"demo\" v2 (12 rules)"));
}

// A report filed earlier in the current second is inside the window
// (moderation stamps reports to the microsecond and counts created_at < end).
TEST_F(ComplianceTest, HandlingStatsWindowEndsAtNowNotAtTheWholeSecond) {
  moderation::v1::GetHandlingStatsRequest asked;
  rpc_.handlers["GetHandlingStats"] = [&asked](const auto& request, auto*) {
    asked.CopyFrom(request);
    return absl::OkStatus();
  };
  ComplianceOptions options;
  options.now = absl::FromUnixMillis(1800000000750);
  options.stats_window = absl::Hours(1);
  CollectCompliance(rpc_, options);
  EXPECT_EQ(asked.end_time().seconds(), 1800000000);
  EXPECT_EQ(asked.end_time().nanos(), 750000000);
  EXPECT_EQ(asked.start_time().seconds(), 1800000000 - 3600);
}

}  // namespace
}  // namespace qunzu::ctl
