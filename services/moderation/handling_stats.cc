// GetHandlingStats (R12.3, R12.4): received, handled, open, overdue and
// times to handle, by category and period, computed from the reports rows.
#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "absl/time/civil_time.h"
#include "common/status.h"
#include "services/moderation/case_util.h"
#include "services/moderation/report_store.h"

namespace qunzu::moderation {
namespace {

constexpr absl::Duration kMaxStatsRange = absl::Hours(24 * 366);

struct Row {
  int category = 0;
  absl::Time created;
  absl::Time deadline;
  absl::Time resolved = absl::InfinitePast();
};

google::protobuf::Duration ToDuration(absl::Duration d) {
  google::protobuf::Duration out;
  out.set_seconds(absl::ToInt64Seconds(d));
  out.set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(d - absl::Seconds(out.seconds()))));
  return out;
}

// Figures for rows in [start, end), judged at min(end, now).
v1::HandlingStats Compute(const std::vector<const Row*>& rows, absl::Time start, absl::Time end,
                          absl::Time now) {
  v1::HandlingStats stats;
  std::vector<absl::Duration> times;
  const absl::Time at = std::min(end, now);
  for (const Row* r : rows) {
    const bool resolved = r->resolved != absl::InfinitePast();
    if (r->created >= start && r->created < end) stats.set_received(stats.received() + 1);
    if (resolved && r->resolved >= start && r->resolved < end) {
      stats.set_handled(stats.handled() + 1);
      if (r->resolved > r->deadline) stats.set_handled_late(stats.handled_late() + 1);
      times.push_back(r->resolved - r->created);
    }
    const bool open_at_end = r->created < at && (!resolved || r->resolved > at);
    if (open_at_end) {
      stats.set_open(stats.open() + 1);
      if (r->deadline < at) stats.set_overdue(stats.overdue() + 1);
    }
  }
  if (!times.empty()) {
    std::sort(times.begin(), times.end());
    *stats.mutable_median_time_to_handle() = ToDuration(times[(times.size() - 1) / 2]);
    *stats.mutable_p90_time_to_handle() = ToDuration(times[(times.size() * 9 - 1) / 10]);
    *stats.mutable_worst_time_to_handle() = ToDuration(times.back());
  }
  return stats;
}

void FillByCategory(const std::vector<const Row*>& rows, absl::Time start, absl::Time end,
                    absl::Time now,
                    google::protobuf::RepeatedPtrField<v1::CategoryHandlingStats>* out) {
  std::map<int, std::vector<const Row*>> by;
  for (const Row* r : rows) by[r->category].push_back(r);
  for (const auto& [category, list] : by) {
    v1::CategoryHandlingStats* c = out->Add();
    c->set_category(static_cast<v1::ContentCategory>(category));
    *c->mutable_stats() = Compute(list, start, end, now);
  }
}

absl::Time NextPeriod(absl::Time t, v1::StatsPeriod period) {
  switch (period) {
    case v1::STATS_PERIOD_DAY:
      return t + absl::Hours(24);
    case v1::STATS_PERIOD_WEEK:
      return t + absl::Hours(24 * 7);
    default: {
      const absl::CivilSecond civil = absl::ToCivilSecond(t, absl::UTCTimeZone());
      const absl::CivilSecond next(civil.year(), civil.month() + 1, civil.day(), civil.hour(),
                                   civil.minute(), civil.second());
      return absl::FromCivil(next, absl::UTCTimeZone());
    }
  }
}

}  // namespace

absl::StatusOr<v1::GetHandlingStatsResponse> ReportStore::Stats(
    const v1::GetHandlingStatsRequest& request) {
  const absl::Time now = clock_.Now();
  const absl::Time end = request.has_end_time() ? FromProto(request.end_time()) : now;
  const absl::Time start =
      request.has_start_time() ? FromProto(request.start_time()) : end - absl::Hours(24 * 30);
  if (end <= start) return InvalidField("end_time", "must be after start_time");
  if (end - start > kMaxStatsRange) {
    return MakeError(absl::StatusCode::kInvalidArgument, "PERIOD_TOO_LONG",
                     "the range is longer than 366 days", {{"field", "end_time"}});
  }
  std::vector<Row> rows;
  {
    ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(kCaseAcquireTimeout));
    std::string sql =
        "SELECT category, created_at, deadline, resolved_at FROM reports WHERE created_at < ? "
        "AND (resolved_at IS NULL OR resolved_at >= ?)";
    std::vector<SqlValue> params = {end, start};
    if (request.category() != 0) {
      sql += " AND category = ?";
      params.emplace_back(static_cast<int>(request.category()));
    }
    RETURN_IF_ERROR(Query(*lease, sql, params, [&](const sql::ResultSet& row) -> absl::Status {
      Row r;
      r.category = row.getInt(1);
      ASSIGN_OR_RETURN(r.created, ParseSqlDateTime(row.getString(2)));
      ASSIGN_OR_RETURN(r.deadline, ParseSqlDateTime(row.getString(3)));
      ASSIGN_OR_RETURN(r.resolved, ReadOptionalTime(row, 4));
      rows.push_back(r);
      return absl::OkStatus();
    }));
  }
  std::vector<const Row*> all;
  all.reserve(rows.size());
  for (const Row& r : rows) all.push_back(&r);
  v1::GetHandlingStatsResponse response;
  *response.mutable_total() = Compute(all, start, end, now);
  FillByCategory(all, start, end, now, response.mutable_by_category());
  if (request.period() != v1::STATS_PERIOD_UNSPECIFIED) {
    for (absl::Time p = start; p < end;) {
      const absl::Time next = std::min(end, NextPeriod(p, request.period()));
      v1::PeriodHandlingStats* period = response.add_periods();
      *period->mutable_period_start() = ToProto(p);
      *period->mutable_stats() = Compute(all, p, next, now);
      FillByCategory(all, p, next, now, period->mutable_by_category());
      p = next;
    }
  }
  *response.mutable_as_of() = ToProto(now);
  return response;
}

}  // namespace qunzu::moderation
