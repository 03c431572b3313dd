// Emergency modes (R5.3): input checks with their reasons, the MySQL store
// (set, replace, OFF, idempotent retries, the audit outbox row, unknown
// groups) against real MariaDB, and the in-process view every replica keeps:
// precedence, expiry without anyone acting, and a change in force on two
// "replicas" within 1 s.
#include "services/moderation/emergency_modes.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/migrations.h"
#include "common/mysql_pool.h"
#include "common/status.h"
#include "services/moderation/mysql_emergency_store.h"
#include "services/moderation/proto_time.h"
#include "tests/common/common_schema_fixture.h"
#include "tests/test_support.h"

namespace qunzu::moderation {
namespace {

using common::v1::GROUP_CATEGORY_FINANCE;
using common::v1::GROUP_CATEGORY_GAMING;

const absl::Time kStart = absl::FromUnixSeconds(1800000000);
constexpr uint64_t kKnownGroup = 42;

v1::SetEmergencyModeRequest Request(v1::EmergencyScope scope, v1::EmergencyLevel level,
                                    absl::Time expires) {
  v1::SetEmergencyModeRequest request;
  request.set_request_id(testing::UniqueName("em"));
  request.set_scope(scope);
  request.set_level(level);
  request.set_reason("major incident: coordinated fraud campaign");
  if (scope == v1::EMERGENCY_SCOPE_CATEGORY) request.set_group_category(GROUP_CATEGORY_FINANCE);
  if (scope == v1::EMERGENCY_SCOPE_GROUP) request.set_group_id(kKnownGroup);
  if (level != v1::EMERGENCY_LEVEL_OFF) *request.mutable_expires_at() = ToProtoTime(expires);
  return request;
}

TEST(ModerationEmergencyValidationTest, BadInputHasReasons) {
  auto reason = [](const v1::SetEmergencyModeRequest& r) {
    return ErrorReason(ValidateSetEmergencyMode(r, kStart));
  };
  auto field = [](const v1::SetEmergencyModeRequest& r) {
    return ErrorMetadata(ValidateSetEmergencyMode(r, kStart), "field");
  };
  const absl::Time later = kStart + absl::Hours(1);
  EXPECT_TRUE(
      ValidateSetEmergencyMode(
          Request(v1::EMERGENCY_SCOPE_PLATFORM, v1::EMERGENCY_LEVEL_HOLD_ALL, later), kStart)
          .ok());
  EXPECT_EQ(field(v1::SetEmergencyModeRequest()), "request_id");
  auto r = Request(v1::EMERGENCY_SCOPE_UNSPECIFIED, v1::EMERGENCY_LEVEL_HOLD_ALL, later);
  EXPECT_EQ(field(r), "scope");
  r = Request(v1::EMERGENCY_SCOPE_PLATFORM, v1::EMERGENCY_LEVEL_HOLD_ALL, later);
  r.set_scope(static_cast<v1::EmergencyScope>(77));
  EXPECT_EQ(field(r), "scope");
  r = Request(v1::EMERGENCY_SCOPE_PLATFORM, v1::EMERGENCY_LEVEL_UNSPECIFIED, later);
  EXPECT_EQ(field(r), "level");
  r = Request(v1::EMERGENCY_SCOPE_CATEGORY, v1::EMERGENCY_LEVEL_HOLD_ALL, later);
  r.clear_group_category();
  EXPECT_EQ(reason(r), "SCOPE_TARGET_REQUIRED");
  r = Request(v1::EMERGENCY_SCOPE_GROUP, v1::EMERGENCY_LEVEL_HOLD_ALL, later);
  r.set_group_id(0);
  EXPECT_EQ(reason(r), "SCOPE_TARGET_REQUIRED");
  r = Request(v1::EMERGENCY_SCOPE_PLATFORM, v1::EMERGENCY_LEVEL_HOLD_ALL, later);
  r.set_group_id(5);
  EXPECT_EQ(field(r), "group_id");
  r = Request(v1::EMERGENCY_SCOPE_PLATFORM, v1::EMERGENCY_LEVEL_HOLD_ALL, later);
  r.clear_reason();
  EXPECT_EQ(reason(r), "REASON_REQUIRED");
  r.set_reason("\xff\xfe");
  EXPECT_EQ(field(r), "reason");
  r = Request(v1::EMERGENCY_SCOPE_PLATFORM, v1::EMERGENCY_LEVEL_SUSPEND_POSTING, later);
  r.clear_expires_at();
  EXPECT_EQ(reason(r), "EXPIRY_REQUIRED");
  r = Request(v1::EMERGENCY_SCOPE_PLATFORM, v1::EMERGENCY_LEVEL_SUSPEND_POSTING,
              kStart - absl::Seconds(1));
  EXPECT_EQ(reason(r), "EXPIRY_IN_PAST");
  r = Request(v1::EMERGENCY_SCOPE_PLATFORM, v1::EMERGENCY_LEVEL_OFF, later);
  EXPECT_TRUE(ValidateSetEmergencyMode(r, kStart).ok());
  *r.mutable_expires_at() = ToProtoTime(later);
  EXPECT_EQ(field(r), "expires_at");
  v1::ListEmergencyModesRequest list;
  list.mutable_page()->set_page_size(5000);
  EXPECT_EQ(ErrorMetadata(ValidateListEmergencyModes(list), "field"), "page.page_size");
}

class ModerationEmergencyStoreTest : public testing::CommonSchemaTest {
 protected:
  ModerationEmergencyStoreTest() : CommonSchemaTest("moderation", 8) {}
  void SetUp() override {
    CommonSchemaTest::SetUp();
    ASSERT_TRUE(ApplyMigrations(*pool_, "moderation", EmergencyModeMigrations()).ok());
    store_ = std::make_unique<MysqlEmergencyStore>(
        *pool_, clock_,
        [](uint64_t group) -> absl::StatusOr<bool> { return group == kKnownGroup; });
  }
  static RequestContext Operator() {
    return RequestContext{Caller{"ops", common::v1::ROLE_OPERATOR, ""}, "ipv4:127.0.0.1:1",
                          "/qunzu.moderation.v1.ModerationService/SetEmergencyMode"};
  }
  absl::StatusOr<v1::SetEmergencyModeResponse> Set(const v1::SetEmergencyModeRequest& request) {
    RETURN_IF_ERROR(ValidateSetEmergencyMode(request, clock_.Now()));
    return store_->Set(Operator(), request);
  }
  FakeClock clock_{kStart};
  std::unique_ptr<MysqlEmergencyStore> store_;
};

TEST_F(ModerationEmergencyStoreTest, SetReplaceEndAndAudit) {
  const absl::Time hour = kStart + absl::Hours(1);
  auto request = Request(v1::EMERGENCY_SCOPE_PLATFORM, v1::EMERGENCY_LEVEL_HOLD_ALL, hour);
  auto first = Set(request);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->mode().in_force());
  EXPECT_EQ(first->mode().set_by(), "ops");
  EXPECT_EQ(Count("SELECT COUNT(*) FROM outbox"), 1);

  // A retry returns the first mode and writes nothing more.
  auto retry = Set(request);
  ASSERT_TRUE(retry.ok());
  EXPECT_EQ(retry->mode().emergency_mode_id(), first->mode().emergency_mode_id());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM emergency_modes"), 1);
  request.set_reason("something else");
  EXPECT_EQ(ErrorReason(Set(request).status()), "REQUEST_ID_REUSED");

  // A new mode for the same scope replaces it.
  auto second =
      Set(Request(v1::EMERGENCY_SCOPE_PLATFORM, v1::EMERGENCY_LEVEL_SUSPEND_POSTING, hour));
  ASSERT_TRUE(second.ok());
  EXPECT_NE(second->mode().emergency_mode_id(), first->mode().emergency_mode_id());
  v1::ListEmergencyModesRequest list;
  list.set_in_force_only(true);
  auto in_force = store_->List(list);
  ASSERT_TRUE(in_force.ok());
  ASSERT_EQ(in_force->modes_size(), 1);
  EXPECT_EQ(in_force->modes(0).level(), v1::EMERGENCY_LEVEL_SUSPEND_POSTING);
  list.set_in_force_only(false);
  auto all = store_->List(list);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->modes_size(), 2);
  EXPECT_FALSE(all->modes(1).in_force());
  EXPECT_EQ(all->modes(1).ended_by(), "ops");

  // OFF ends it; OFF again has nothing to end.
  auto off = Set(Request(v1::EMERGENCY_SCOPE_PLATFORM, v1::EMERGENCY_LEVEL_OFF, hour));
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_EQ(off->mode().emergency_mode_id(), second->mode().emergency_mode_id());
  EXPECT_FALSE(off->mode().in_force());
  EXPECT_EQ(ErrorReason(
                Set(Request(v1::EMERGENCY_SCOPE_PLATFORM, v1::EMERGENCY_LEVEL_OFF, hour)).status()),
            "NO_MODE_IN_FORCE");
  EXPECT_EQ(Count("SELECT COUNT(*) FROM outbox"), 3);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM emergency_generation WHERE generation = 3"), 1);
}

TEST_F(ModerationEmergencyStoreTest, ScopesUnknownGroupsAndExpiry) {
  auto group =
      Request(v1::EMERGENCY_SCOPE_GROUP, v1::EMERGENCY_LEVEL_HOLD_ALL, kStart + absl::Minutes(10));
  group.set_group_id(kKnownGroup + 1);
  EXPECT_EQ(ErrorReason(Set(group).status()), "GROUP_NOT_FOUND");
  group.set_group_id(kKnownGroup);
  ASSERT_TRUE(Set(group).ok());
  ASSERT_TRUE(Set(Request(v1::EMERGENCY_SCOPE_CATEGORY, v1::EMERGENCY_LEVEL_SUSPEND_POSTING,
                          kStart + absl::Hours(2)))
                  .ok());
  v1::ListEmergencyModesRequest list;
  list.set_in_force_only(true);
  list.set_scope(v1::EMERGENCY_SCOPE_GROUP);
  EXPECT_EQ(store_->List(list)->modes_size(), 1);
  // Past the group mode's expiry it is listed as ended at its expiry.
  clock_.Advance(absl::Minutes(11));
  EXPECT_EQ(store_->List(list)->modes_size(), 0);
  list.set_in_force_only(false);
  auto all = store_->List(list);
  ASSERT_EQ(all->modes_size(), 1);
  EXPECT_FALSE(all->modes(0).in_force());
  EXPECT_EQ(all->modes(0).ended_at().seconds(), absl::ToUnixSeconds(kStart + absl::Minutes(10)));
  // Paging, newest first.
  list.clear_scope();
  list.mutable_page()->set_page_size(1);
  auto page = store_->List(list);
  ASSERT_EQ(page->modes_size(), 1);
  EXPECT_EQ(page->modes(0).scope(), v1::EMERGENCY_SCOPE_CATEGORY);
  list.mutable_page()->set_page_token(page->page().next_page_token());
  page = store_->List(list);
  ASSERT_EQ(page->modes_size(), 1);
  EXPECT_EQ(page->modes(0).scope(), v1::EMERGENCY_SCOPE_GROUP);
}

TEST_F(ModerationEmergencyStoreTest, InForceOnTwoReplicasWithinOneSecondAndExpiresByItself) {
  EmergencyModes replica_a(*store_);
  EmergencyModes replica_b(*store_);
  EXPECT_EQ(ErrorReason(replica_a.Find(1, GROUP_CATEGORY_FINANCE, kStart).status()),
            "EMERGENCY_MODES_UNAVAILABLE");
  replica_a.Start(absl::Milliseconds(200));
  replica_b.Start(absl::Milliseconds(200));
  auto set = Set(Request(v1::EMERGENCY_SCOPE_CATEGORY, v1::EMERGENCY_LEVEL_HOLD_ALL,
                         kStart + absl::Minutes(5)));
  ASSERT_TRUE(set.ok());
  const absl::Time set_at = absl::Now();
  auto applies = [&](const EmergencyModes& replica) {
    auto found = replica.Find(1, GROUP_CATEGORY_FINANCE, kStart);
    return found.ok() && found->has_value();
  };
  while ((!applies(replica_a) || !applies(replica_b)) && absl::Now() - set_at < absl::Seconds(2)) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_LT(absl::Now() - set_at, absl::Seconds(1));
  // Another category, and the same one after the expiry, are untouched.
  EXPECT_FALSE(replica_a.Find(1, GROUP_CATEGORY_GAMING, kStart)->has_value());
  EXPECT_FALSE(replica_a.Find(1, GROUP_CATEGORY_FINANCE, kStart + absl::Minutes(5))->has_value());
}

class FixedSource : public EmergencyModeSource {
 public:
  absl::StatusOr<int64_t> Generation() override {
    if (down_) return MakeError(absl::StatusCode::kUnavailable, "MYSQL_UNAVAILABLE", "down");
    return 1;
  }
  absl::Status LoadOpen(int64_t* generation, std::vector<v1::EmergencyMode>* modes) override {
    *generation = 1;
    *modes = modes_;
    return absl::OkStatus();
  }
  std::vector<v1::EmergencyMode> modes_;
  std::atomic<bool> down_{false};
};

TEST(ModerationEmergencyModesTest, FailsClosedWhenItCannotRefresh) {
  FixedSource source;
  EmergencyModes modes(source, absl::Milliseconds(100));
  ASSERT_TRUE(modes.Refresh().ok());
  EXPECT_TRUE(modes.Find(1, GROUP_CATEGORY_FINANCE, kStart).ok());
  source.down_ = true;
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  absl::Status found;
  do {
    EXPECT_FALSE(modes.Refresh().ok());
    found = modes.Find(1, GROUP_CATEGORY_FINANCE, kStart).status();
  } while (found.ok() && absl::Now() < deadline);
  EXPECT_EQ(ErrorReason(found), "EMERGENCY_MODES_UNAVAILABLE");
  source.down_ = false;
  ASSERT_TRUE(modes.Refresh().ok());
  EXPECT_TRUE(modes.Find(1, GROUP_CATEGORY_FINANCE, kStart).ok());
}

TEST(ModerationEmergencyModesTest, SuspendWinsThenNarrowestScope) {
  FixedSource source;
  auto mode = [&](uint64_t id, v1::EmergencyScope scope, v1::EmergencyLevel level) {
    v1::EmergencyMode m;
    m.set_emergency_mode_id(id);
    m.set_scope(scope);
    m.set_level(level);
    m.set_group_category(scope == v1::EMERGENCY_SCOPE_CATEGORY
                             ? GROUP_CATEGORY_FINANCE
                             : common::v1::GROUP_CATEGORY_UNSPECIFIED);
    m.set_group_id(scope == v1::EMERGENCY_SCOPE_GROUP ? 7 : 0);
    *m.mutable_expires_at() = ToProtoTime(kStart + absl::Hours(1));
    return m;
  };
  source.modes_ = {mode(1, v1::EMERGENCY_SCOPE_PLATFORM, v1::EMERGENCY_LEVEL_HOLD_ALL),
                   mode(2, v1::EMERGENCY_SCOPE_GROUP, v1::EMERGENCY_LEVEL_HOLD_ALL),
                   mode(3, v1::EMERGENCY_SCOPE_CATEGORY, v1::EMERGENCY_LEVEL_SUSPEND_POSTING)};
  EmergencyModes modes(source);
  ASSERT_TRUE(modes.Refresh().ok());
  EXPECT_EQ((*modes.Find(7, GROUP_CATEGORY_FINANCE, kStart))->emergency_mode_id(), 3u);
  EXPECT_EQ((*modes.Find(7, GROUP_CATEGORY_GAMING, kStart))->emergency_mode_id(), 2u);
  EXPECT_EQ((*modes.Find(8, GROUP_CATEGORY_GAMING, kStart))->emergency_mode_id(), 1u);
  EXPECT_FALSE(modes.Find(8, GROUP_CATEGORY_GAMING, kStart + absl::Hours(1))->has_value());
}

}  // namespace
}  // namespace qunzu::moderation
