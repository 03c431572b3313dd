// Joins per second through the groups logic (idempotency row, group row
// lock for the member cap, account row lock and count for the joined cap,
// member row, audit outbox row, Redis projection) with 32 client threads,
// against the bare member-row INSERT on the same MariaDB in the same run;
// once spread over 32 groups and once into one hot group. Accounts come
// from an in-process reader (no Redis read per join).
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "common/migrations.h"
#include "common/mysql.h"
#include "common/redis.h"
#include "services/groups/groups_logic.h"
#include "services/groups/groups_service.h"
#include "tests/bench/rpc_bench.h"
#include "tests/bench/scenarios.h"

namespace qunzu::bench {
namespace {

constexpr int kThreads = 32;
constexpr int kGroups = 32;
const absl::Duration kDuration = absl::Seconds(5);

class EveryoneQualifies final : public groups::AccountReader {
 public:
  absl::StatusOr<groups::AccountView> Read(uint64_t /*account_id*/) override {
    groups::AccountView v;
    v.verified = true;
    v.level = 4;
    v.groups_may_create = 1000;
    v.groups_may_join = 1000;
    v.max_create_tier = 4;
    v.may_be_admin = true;
    v.agreements_accepted = true;
    return v;
  }
  absl::StatusOr<bool> GroupBlacklisted(uint64_t /*group_id*/) override { return false; }
};

class AllowAll final : public groups::TextScreener {
 public:
  absl::StatusOr<groups::ScreenResult> Screen(moderation::v1::TextPurpose /*purpose*/,
                                              const std::string& /*text*/, uint64_t /*actor*/,
                                              uint64_t /*group_id*/) override {
    return groups::ScreenResult();
  }
};

groups::RequestContext Ctx(const char* method) {
  return groups::RequestContext{Caller{"bench", common::v1::ROLE_PLATFORM, ""}, "",
                                std::string("/qunzu.groups.v1.GroupService/") + method};
}

}  // namespace

int RunGroupsBench() {
  const char* dsn = std::getenv("QUNZU_MYSQL_DSN");
  const char* redis_addr = std::getenv("QUNZU_REDIS_ADDR");
  if (dsn == nullptr || redis_addr == nullptr) {
    std::fprintf(stderr, "groups bench: QUNZU_MYSQL_DSN / QUNZU_REDIS_ADDR not set\n");
    return 1;
  }
  absl::StatusOr<MysqlOptions> options = ParseMysqlDsn(dsn);
  if (!options.ok()) return 1;
  auto pool = MysqlPool::Create(*options, "qunzu_bench_groups", kThreads + 4);
  if (!pool.ok()) return 1;
  MysqlPool& mysql = **pool;
  if (!ApplyMigrations(mysql, kCommonComponent, CommonMigrations()).ok() ||
      !ApplyMigrations(mysql, "groups", groups::GroupServiceMigrations()).ok()) {
    return 1;
  }
  RedisOptions redis_options;
  redis_options.address = redis_addr;
  redis_options.pool_size = kThreads;
  auto redis = RedisClient::Create(redis_options);
  if (!redis.ok()) return 1;
  auto proto = groups::LoadGroupsPolicy(groups::DefaultPolicyFile());
  if (!proto.ok()) return 1;
  auto policy = groups::GroupsPolicy::Create(*proto, "bench");
  if (!policy.ok()) return 1;
  EveryoneQualifies accounts;
  AllowAll screener;
  groups::GroupProjection projection(redis->get());
  groups::GroupsLogic logic(mysql, accounts, screener, projection, *policy, SystemClock::Get());

  // HUGE groups (cap 10,000), approved, so the caps never refuse.
  std::vector<uint64_t> group_ids;
  std::atomic<int64_t> sequence{1};
  for (int i = 0; i < kGroups; ++i) {
    groups::v1::CreateGroupRequest q;
    q.set_request_id("bench-create-" + std::to_string(absl::ToUnixNanos(absl::Now())) + "-" +
                     std::to_string(i));
    q.set_actor_account_id(1);
    q.set_name("bench");
    q.set_category(common::v1::GROUP_CATEGORY_HOBBY);
    q.set_scale_tier(common::v1::SCALE_TIER_HUGE);
    q.set_join_policy(groups::v1::JOIN_POLICY_OPEN);
    auto created = logic.CreateGroup(Ctx("CreateGroup"), q);
    if (!created.ok()) return 1;
    groups::v1::ReviewGroupCreationRequest review;
    review.set_request_id(q.request_id());
    review.set_group_id(created->group().group_id());
    review.set_decision(groups::v1::REVIEW_DECISION_APPROVE);
    review.set_reason("bench");
    if (!logic.ReviewGroupCreation(Ctx("ReviewGroupCreation"), review).ok()) return 1;
    group_ids.push_back(created->group().group_id());
  }
  {
    MysqlPool::Lease lease = *mysql.Acquire(absl::Seconds(5));
    if (!Execute(*lease,
                 "CREATE TABLE IF NOT EXISTS bench_members (group_id BIGINT UNSIGNED NOT NULL,"
                 " account_id BIGINT UNSIGNED NOT NULL, role INT NOT NULL,"
                 " PRIMARY KEY (group_id, account_id)) ENGINE=InnoDB")
             .ok()) {
      return 1;
    }
  }
  const int64_t base = absl::ToUnixSeconds(absl::Now()) * 100000;
  auto bare = [&] {
    int64_t n = sequence++;
    return WithTransaction(mysql,
                           [&](sql::Connection& conn) {
                             return Execute(conn,
                                            "INSERT INTO bench_members (group_id, account_id,"
                                            " role) VALUES (?, ?, 3)",
                                            {group_ids[n % kGroups], base + n})
                                 .status();
                           })
        .ok();
  };
  auto join = [&](bool hot) {
    return [&, hot] {
      int64_t n = sequence++;
      groups::v1::JoinGroupRequest q;
      q.set_request_id("bench-join-" + std::to_string(base + n));
      q.set_actor_account_id(static_cast<uint64_t>(base + n));
      q.set_group_id(group_ids[hot ? 0 : n % kGroups]);
      return logic.JoinGroup(Ctx("JoinGroup"), q).ok();
    };
  };

  std::printf("\n## groups: JoinGroup, %d threads, %s per run\n\n", kThreads,
              absl::FormatDuration(kDuration).c_str());
  std::printf("| run | TPS | p50 µs | p99 µs | p99.9 µs | CPU ms per 1k tx (client) | errors |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  LoadResult b = RunLoad("member INSERT alone (baseline)", kThreads, kDuration, bare);
  LoadResult spread = RunLoad("JoinGroup over 32 groups", kThreads, kDuration, join(false));
  LoadResult hot = RunLoad("JoinGroup into 1 group", kThreads, kDuration, join(true));
  std::printf("%s\n%s\n%s\n", FormatRow(b).c_str(), FormatRow(spread).c_str(),
              FormatRow(hot).c_str());
  std::printf("\nratio JoinGroup/baseline: spread %.2f, one group %.2f\n", spread.qps / b.qps,
              hot.qps / b.qps);
  MysqlPool::Lease lease = *mysql.Acquire(absl::Seconds(5));
  (void)Execute(*lease, "DROP DATABASE qunzu_bench_groups");
  return 0;
}

}  // namespace qunzu::bench
