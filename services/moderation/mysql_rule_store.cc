#include "services/moderation/mysql_rule_store.h"

#include <cppconn/resultset.h>

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/audit_outbox.h"
#include "common/idempotency.h"
#include "common/status.h"
#include "services/moderation/proto_time.h"

namespace qunzu::moderation {
namespace {

constexpr absl::Duration kAcquireTimeout = absl::Seconds(5);
constexpr size_t kInsertBatch = 500;
// Under the 16 MiB max_allowed_packet MariaDB has by default.
constexpr size_t kCompiledChunkBytes = size_t{4} << 20;
constexpr char kRuleColumns[] = "rule_id, kind, pattern, category, action, note";

v1::Rule ReadRule(const sql::ResultSet& row) {
  v1::Rule rule;
  rule.set_rule_id(row.getUInt64(1));
  rule.set_kind(static_cast<v1::RuleKind>(row.getInt(2)));
  rule.set_pattern(row.getString(3));
  rule.set_category(static_cast<v1::ContentCategory>(row.getInt(4)));
  rule.set_action(static_cast<v1::RuleAction>(row.getInt(5)));
  rule.set_note(row.getString(6));
  return rule;
}

absl::Status InsertRules(sql::Connection& conn, uint64_t rule_set_id, uint32_t version,
                         const std::vector<v1::Rule>& rules) {
  for (size_t start = 0; start < rules.size(); start += kInsertBatch) {
    const size_t end = std::min(rules.size(), start + kInsertBatch);
    std::string sql =
        "INSERT INTO rule_set_rules (rule_set_id, version, rule_id, kind, pattern, category, "
        "action, note) VALUES ";
    std::vector<SqlValue> params;
    for (size_t i = start; i < end; ++i) {
      absl::StrAppend(&sql, i == start ? "" : ",", "(?,?,?,?,?,?,?,?)");
      const v1::Rule& r = rules[i];
      params.insert(params.end(),
                    {rule_set_id, version, r.rule_id(), static_cast<int>(r.kind()), r.pattern(),
                     static_cast<int>(r.category()), static_cast<int>(r.action()), r.note()});
    }
    RETURN_IF_ERROR(Execute(conn, sql, params).status());
  }
  return absl::OkStatus();
}

// The rows of a set's latest version are the ones still open
// (until_version 0); version V holds the rows written at or before V and
// not closed by then. A new version closes only the rows it removes or
// replaces and writes only the request's rules: versions share every rule
// they have in common, and a MERGE costs what it changes, not the set's
// size.
constexpr char kRowsOfVersion[] =
    " FROM rule_set_rules WHERE rule_set_id = ? AND version <= ? AND "
    "(until_version = 0 OR until_version > ?)";

// Ids per IN (...) list.
constexpr size_t kIdBatch = 1000;

// Calls run(sql + "(?,?,...)", leading params then the ids) for the ids
// in batches of kIdBatch.
absl::Status ForIdBatches(
    const std::vector<uint64_t>& ids, const std::string& sql, const std::vector<SqlValue>& leading,
    const std::function<absl::Status(const std::string& sql, const std::vector<SqlValue>& params)>&
        run) {
  for (size_t start = 0; start < ids.size(); start += kIdBatch) {
    const size_t end = std::min(ids.size(), start + kIdBatch);
    std::string batch_sql = sql + "(";
    std::vector<SqlValue> params = leading;
    for (size_t i = start; i < end; ++i) {
      absl::StrAppend(&batch_sql, i == start ? "?" : ",?");
      params.emplace_back(ids[i]);
    }
    batch_sql += ")";
    RETURN_IF_ERROR(run(batch_sql, params));
  }
  return absl::OkStatus();
}

// Writes `version` of a set on top of its latest version (base_version,
// holding base_count rules; 0: none): REPLACE closes every rule of the base,
// MERGE those it removes or replaces; then the request's rules are written,
// new ones with fresh ids. ids gets the request's rule ids in request
// order, rule_count the new version's size.
absl::Status WriteVersion(sql::Connection& conn, const v1::UpsertRuleSetRequest& request,
                          uint64_t rule_set_id, uint32_t base_version, uint64_t base_count,
                          uint32_t version, std::vector<uint64_t>* ids, uint64_t* rule_count) {
  const bool merge = request.mode() == v1::RULE_SET_UPDATE_MODE_MERGE;
  std::vector<uint64_t> referenced(request.remove_rule_ids().begin(),
                                   request.remove_rule_ids().end());
  size_t fresh = 0;
  for (const v1::Rule& rule : request.rules()) {
    if (rule.rule_id() == 0) {
      ++fresh;
    } else {
      referenced.push_back(rule.rule_id());
    }
  }
  std::sort(referenced.begin(), referenced.end());
  referenced.erase(std::unique(referenced.begin(), referenced.end()), referenced.end());
  std::set<uint64_t> existing;
  RETURN_IF_ERROR(ForIdBatches(
      referenced,
      "SELECT rule_id FROM rule_set_rules WHERE rule_set_id = ? AND until_version = 0 AND "
      "rule_id IN ",
      {rule_set_id}, [&](const std::string& sql, const std::vector<SqlValue>& params) {
        return Query(conn, sql, params, [&](const sql::ResultSet& row) {
          existing.insert(row.getUInt64(1));
          return absl::OkStatus();
        });
      }));
  for (uint64_t id : referenced) {
    if (existing.count(id) == 0) {
      return MakeError(absl::StatusCode::kNotFound, "RULE_NOT_FOUND",
                       absl::StrCat("rule ", id, " is not in version ", base_version),
                       {{"rule_id", absl::StrCat(id)}});
    }
  }
  if (merge) {
    RETURN_IF_ERROR(ForIdBatches(
        referenced,
        "UPDATE rule_set_rules SET until_version = ? WHERE rule_set_id = ? AND "
        "until_version = 0 AND rule_id IN ",
        {version, rule_set_id}, [&](const std::string& sql, const std::vector<SqlValue>& params) {
          return Execute(conn, sql, params).status();
        }));
  } else if (base_count > 0) {
    RETURN_IF_ERROR(Execute(conn,
                            "UPDATE rule_set_rules SET until_version = ? WHERE rule_set_id = ? "
                            "AND until_version = 0",
                            {version, rule_set_id})
                        .status());
  }
  uint64_t next_id = 0;
  if (fresh > 0) {
    RETURN_IF_ERROR(Execute(conn,
                            "UPDATE rule_generation SET next_rule_id = "
                            "LAST_INSERT_ID(next_rule_id) + ? WHERE id = 1",
                            {static_cast<uint64_t>(fresh)})
                        .status());
    ASSIGN_OR_RETURN(next_id, LastInsertId(conn));
  }
  // The request's rules by id (a rule given twice: the last one).
  std::map<uint64_t, v1::Rule> written;
  ids->clear();
  for (const v1::Rule& rule : request.rules()) {
    v1::Rule copy = rule;
    if (copy.rule_id() == 0) copy.set_rule_id(next_id++);
    ids->push_back(copy.rule_id());
    written[copy.rule_id()] = std::move(copy);
  }
  std::vector<v1::Rule> rows;
  rows.reserve(written.size());
  for (auto& [id, rule] : written) rows.push_back(std::move(rule));
  RETURN_IF_ERROR(InsertRules(conn, rule_set_id, version, rows));
  *rule_count = merge ? base_count - referenced.size() + rows.size() : rows.size();
  return absl::OkStatus();
}

// Every rule of every active version, with set `with_id` at `with_version`
// instead (0: none), ordered by set and rule id so that every replica reads
// the same list and so the same compiled-set cache key.
absl::Status ReadRulesInForce(sql::Connection& conn, uint64_t with_id, uint32_t with_version,
                              std::vector<ActiveRule>* rules) {
  rules->clear();
  // The versions first, then each one's rules as a range of the primary
  // key: one join ordered by set and rule id had the server sort a million
  // rows for a large set.
  std::vector<std::pair<uint64_t, uint32_t>> versions;
  RETURN_IF_ERROR(
      Query(conn,
            "SELECT rule_set_id, IF(rule_set_id = ?, ?, active_version) FROM rule_sets "
            "WHERE IF(rule_set_id = ?, ?, active_version) > 0 ORDER BY rule_set_id",
            {with_id, with_version, with_id, with_version}, [&](const sql::ResultSet& row) {
              versions.emplace_back(row.getUInt64(1), static_cast<uint32_t>(row.getUInt(2)));
              return absl::OkStatus();
            }));
  for (const std::pair<uint64_t, uint32_t>& set : versions) {
    const size_t first = rules->size();
    RETURN_IF_ERROR(
        Query(conn, absl::StrCat("SELECT ", kRuleColumns, kRowsOfVersion),
              {set.first, set.second, set.second}, [&](const sql::ResultSet& row) {
                rules->push_back(ActiveRule{RuleFromProto(ReadRule(row)), set.first, set.second});
                return absl::OkStatus();
              }));
    // Read in key order (by the version a row was written in): sorted here,
    // not by the server, and only when a version shares rows with older
    // ones.
    auto by_id = [](const ActiveRule& a, const ActiveRule& b) { return a.rule.id < b.rule.id; };
    const auto begin = rules->begin() + static_cast<std::ptrdiff_t>(first);
    if (!std::is_sorted(begin, rules->end(), by_id)) std::sort(begin, rules->end(), by_id);
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> ReadGeneration(sql::Connection& conn, bool for_update) {
  int64_t generation = 0;
  RETURN_IF_ERROR(Query(conn,
                        absl::StrCat("SELECT generation FROM rule_generation WHERE id = 1",
                                     for_update ? " FOR UPDATE" : ""),
                        {}, [&](const sql::ResultSet& row) {
                          generation = row.getInt64(1);
                          return absl::OkStatus();
                        }));
  return generation;
}

// The set-wide compile state: a version waiting is COMPILING; a rejected
// version newer than the active one is FAILED with the compiler's error.
void SetCompileState(uint32_t pending_version, uint32_t failed_version,
                     const std::string& compile_error, v1::RuleSet* set) {
  if (pending_version > 0) {
    set->set_compile_state(v1::COMPILE_STATE_COMPILING);
  } else if (failed_version > set->active_version()) {
    set->set_compile_state(v1::COMPILE_STATE_FAILED);
    set->set_compile_error(compile_error);
  } else {
    set->set_compile_state(v1::COMPILE_STATE_READY);
  }
}

// Moderation itself, for what the rule engine does on its own.
RequestContext Engine() {
  return RequestContext{Caller{"service:moderation", common::v1::ROLE_SERVICE, "moderation"}, "",
                        "RuleEngine"};
}

absl::Status RecordRuleSetEvent(sql::Connection& conn, const RequestContext& context,
                                absl::string_view action, absl::string_view request_id,
                                absl::Time now, uint64_t rule_set_id, uint32_t version,
                                const std::map<std::string, std::string>& details) {
  audit::v1::AuditEvent event =
      AuditEventFor(context.caller, context.peer, context.method, action, request_id);
  *event.mutable_time() = ToProtoTime(now);
  (*event.mutable_details())["rule_set_id"] = absl::StrCat(rule_set_id);
  (*event.mutable_details())["version"] = absl::StrCat(version);
  for (const auto& [name, value] : details) (*event.mutable_details())[name] = value;
  return RecordAuditEvent(conn, event).status();
}

}  // namespace

Rule RuleFromProto(const v1::Rule& rule) {
  Rule out;
  out.id = rule.rule_id();
  out.pattern = rule.pattern();
  out.category = static_cast<int>(rule.category());
  if (rule.kind() == v1::RULE_KIND_REGEX) {
    out.kind = RuleKind::kRegex;
  } else if (rule.action() == v1::RULE_ACTION_ALLOW) {
    out.kind = RuleKind::kAllow;
  }
  out.action = rule.action() == v1::RULE_ACTION_HOLD ? RuleAction::kHold : RuleAction::kBlock;
  return out;
}

absl::StatusOr<int64_t> MysqlRuleStore::Generation() {
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(kAcquireTimeout));
  int64_t generation = 0;
  RETURN_IF_ERROR(Query(*lease, "SELECT generation FROM rule_generation WHERE id = 1", {},
                        [&](const sql::ResultSet& row) {
                          generation = row.getInt64(1);
                          return absl::OkStatus();
                        }));
  return generation;
}

absl::StatusOr<std::string> MysqlRuleStore::CompiledKeyOf(int64_t generation) {
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(kAcquireTimeout));
  std::string key;
  RETURN_IF_ERROR(Query(*lease,
                        "SELECT in_force_key FROM rule_generation WHERE id = 1 AND "
                        "in_force_generation = ?",
                        {generation}, [&](const sql::ResultSet& row) {
                          key = row.getString(1);
                          return absl::OkStatus();
                        }));
  return key;
}

absl::Status MysqlRuleStore::LoadActive(int64_t* generation, std::vector<ActiveRule>* rules) {
  // One snapshot: the generation matches the rules read with it.
  TransactionOptions options;
  options.isolation = Isolation::kRepeatableRead;
  return WithTransaction(
      pool_,
      [&](sql::Connection& conn) -> absl::Status {
        ASSIGN_OR_RETURN(*generation, ReadGeneration(conn, false));
        return ReadRulesInForce(conn, 0, 0, rules);
      },
      options);
}

absl::StatusOr<std::optional<PendingActivation>> MysqlRuleStore::LoadPending() {
  TransactionOptions options;
  options.isolation = Isolation::kRepeatableRead;
  std::optional<PendingActivation> pending;
  absl::Status read = WithTransaction(
      pool_,
      [&](sql::Connection& conn) -> absl::Status {
        pending.reset();
        PendingActivation next;
        ASSIGN_OR_RETURN(next.generation, ReadGeneration(conn, false));
        bool found = false;
        RETURN_IF_ERROR(Query(conn,
                              "SELECT rule_set_id, pending_version FROM rule_sets WHERE "
                              "pending_version > 0 ORDER BY pending_since, rule_set_id LIMIT 1",
                              {}, [&](const sql::ResultSet& row) {
                                found = true;
                                next.rule_set_id = row.getUInt64(1);
                                next.version = row.getUInt(2);
                                return absl::OkStatus();
                              }));
        if (!found) return absl::OkStatus();
        RETURN_IF_ERROR(ReadRulesInForce(conn, next.rule_set_id, next.version, &next.rules));
        pending = std::move(next);
        return absl::OkStatus();
      },
      options);
  if (!read.ok()) return read;
  return pending;
}

absl::StatusOr<int64_t> MysqlRuleStore::Activate(const PendingActivation& pending) {
  const absl::Time now = clock_.Now();
  return WithTransaction(pool_, [&](sql::Connection& conn) -> absl::StatusOr<int64_t> {
    // The generation row orders activations: the versions in force are the
    // ones pending was compiled with only while it has not moved.
    ASSIGN_OR_RETURN(const int64_t generation, ReadGeneration(conn, true));
    uint32_t waiting = 0;
    std::string name;
    uint64_t rule_count = 0;
    RETURN_IF_ERROR(Query(conn,
                          "SELECT pending_version, name FROM rule_sets WHERE rule_set_id = ? "
                          "FOR UPDATE",
                          {pending.rule_set_id}, [&](const sql::ResultSet& row) {
                            waiting = row.getUInt(1);
                            name = row.getString(2);
                            return absl::OkStatus();
                          }));
    if (generation != pending.generation || waiting != pending.version) {
      return MakeError(
          absl::StatusCode::kAborted, kActivationStale,
          absl::StrCat("rule set ", pending.rule_set_id, " version ", pending.version,
                       " was compiled on generation ", pending.generation, "; now generation ",
                       generation, ", waiting version ", waiting));
    }
    for (const ActiveRule& rule : pending.rules) {
      if (rule.rule_set_id == pending.rule_set_id) ++rule_count;
    }
    RETURN_IF_ERROR(Execute(conn,
                            "UPDATE rule_sets SET active_version = ?, pending_version = 0, "
                            "pending_since = NULL, compiled_at = ? WHERE rule_set_id = ?",
                            {pending.version, now, pending.rule_set_id})
                        .status());
    RETURN_IF_ERROR(Execute(conn,
                            "UPDATE rule_generation SET generation = ?, "
                            "in_force_generation = ?, in_force_key = ? WHERE id = 1",
                            {generation + 1, generation + 1, pending.compiled_key})
                        .status());
    RETURN_IF_ERROR(RecordRuleSetEvent(
        conn, Engine(), "RULE_SET_VERSION_ACTIVATED",
        absl::StrCat("rule-set-", pending.rule_set_id, "-v", pending.version, "-activated"), now,
        pending.rule_set_id, pending.version,
        {{"name", name},
         {"rule_count", absl::StrCat(rule_count)},
         {"generation", absl::StrCat(generation + 1)}}));
    return generation + 1;
  });
}

absl::Status MysqlRuleStore::Reject(const PendingActivation& pending, const absl::Status& why) {
  const absl::Time now = clock_.Now();
  // The column holds 1,000 characters; the reason leads the message.
  const std::string error = why.ToString().substr(0, 1000);
  return WithTransaction(pool_, [&](sql::Connection& conn) -> absl::Status {
    ASSIGN_OR_RETURN(const int64_t changed,
                     Execute(conn,
                             "UPDATE rule_sets SET pending_version = 0, pending_since = NULL, "
                             "failed_version = ?, compile_error = ? WHERE rule_set_id = ? AND "
                             "pending_version = ?",
                             {pending.version, error, pending.rule_set_id, pending.version}));
    if (changed == 0) return absl::OkStatus();  // no longer waiting: nothing to refuse
    return RecordRuleSetEvent(
        conn, Engine(), "RULE_SET_VERSION_REJECTED",
        absl::StrCat("rule-set-", pending.rule_set_id, "-v", pending.version, "-rejected"), now,
        pending.rule_set_id, pending.version, {{"reason", ErrorReason(why)}, {"error", error}});
  });
}

absl::StatusOr<v1::UpsertRuleSetResponse> MysqlRuleStore::Upsert(
    const RequestContext& context, const v1::UpsertRuleSetRequest& request) {
  const IdempotencyKey key{context.caller.principal, context.method, request.request_id()};
  return WithTransaction(pool_, [&](sql::Connection& conn) {
    return RunIdempotent<v1::UpsertRuleSetResponse>(
        conn, key, request, [&]() -> absl::StatusOr<v1::UpsertRuleSetResponse> {
          const absl::Time now = clock_.Now();
          uint64_t rule_set_id = request.rule_set_id();
          uint32_t latest = 0;
          uint64_t latest_count = 0;
          uint32_t active = 0;
          uint32_t pending = 0;
          uint32_t failed = 0;
          std::string compile_error;
          std::string name = request.name();
          std::string description = request.description();
          if (rule_set_id == 0) {
            absl::StatusOr<int64_t> inserted =
                Execute(conn,
                        "INSERT INTO rule_sets (name, description, latest_version, active_version, "
                        "rule_count, updated_by, updated_at) VALUES (?, ?, 0, 0, 0, ?, ?)",
                        {name, description, context.caller.principal, now});
            if (!inserted.ok() && inserted.status().code() == absl::StatusCode::kAlreadyExists) {
              return MakeError(absl::StatusCode::kAlreadyExists, "RULE_SET_NAME_TAKEN",
                               "a rule set with this name exists", {{"name", name}});
            }
            RETURN_IF_ERROR(inserted.status());
            ASSIGN_OR_RETURN(rule_set_id, LastInsertId(conn));
          } else {
            bool found = false;
            RETURN_IF_ERROR(Query(conn,
                                  "SELECT latest_version, active_version, name, description, "
                                  "pending_version, failed_version, compile_error, rule_count "
                                  "FROM rule_sets WHERE rule_set_id = ? FOR UPDATE",
                                  {rule_set_id}, [&](const sql::ResultSet& row) {
                                    found = true;
                                    latest = row.getUInt(1);
                                    active = row.getUInt(2);
                                    if (name.empty()) name = row.getString(3);
                                    if (description.empty()) description = row.getString(4);
                                    pending = row.getUInt(5);
                                    failed = row.getUInt(6);
                                    compile_error = row.getString(7);
                                    latest_count = row.getUInt64(8);
                                    return absl::OkStatus();
                                  }));
            if (!found) {
              return MakeError(absl::StatusCode::kNotFound, "RULE_SET_NOT_FOUND",
                               absl::StrCat("no rule set ", rule_set_id));
            }
            if (request.base_version() != latest) {
              return MakeError(absl::StatusCode::kAborted, "RULE_SET_VERSION_CONFLICT",
                               absl::StrCat("base_version ", request.base_version(),
                                            " is not the latest version ", latest),
                               {{"latest_version", absl::StrCat(latest)}});
            }
          }
          const uint32_t version = latest + 1;
          std::vector<uint64_t> ids;
          uint64_t rule_count = 0;
          RETURN_IF_ERROR(WriteVersion(conn, request, rule_set_id, latest, latest_count, version,
                                       &ids, &rule_count));
          v1::UpsertRuleSetResponse response;
          for (uint64_t id : ids) response.add_rule_ids(id);
          // An activated version waits until it is compiled (RuleEngine),
          // and a newer one activated meanwhile replaces it in the wait.
          if (request.activate()) pending = version;
          RETURN_IF_ERROR(
              Execute(conn,
                      "UPDATE rule_sets SET name = ?, description = ?, latest_version = ?, "
                      "pending_version = ?, pending_since = IF(?, ?, pending_since), "
                      "rule_count = ?, updated_by = ?, updated_at = ? WHERE rule_set_id = ?",
                      {name, description, version, pending, request.activate(), now, rule_count,
                       context.caller.principal, now, rule_set_id})
                  .status());
          RETURN_IF_ERROR(
              RecordRuleSetEvent(conn, context, "RULE_SET_VERSION_CREATED", request.request_id(),
                                 now, rule_set_id, version,
                                 {{"name", name},
                                  {"rule_count", absl::StrCat(rule_count)},
                                  {"activate", request.activate() ? "requested" : "no"}}));
          v1::RuleSet* set = response.mutable_rule_set();
          set->set_rule_set_id(rule_set_id);
          set->set_name(name);
          set->set_description(description);
          set->set_latest_version(version);
          set->set_active_version(active);
          SetCompileState(pending, failed, compile_error, set);
          set->set_rule_count(rule_count);
          set->set_updated_by(context.caller.principal);
          *set->mutable_updated_at() = ToProtoTime(now);
          response.set_version(version);
          return response;
        });
  });
}

absl::StatusOr<v1::ListRuleSetsResponse> MysqlRuleStore::List(
    const v1::ListRuleSetsRequest& request) {
  const int page_size = request.page().page_size() == 0 ? 50 : request.page().page_size();
  uint64_t after = 0;
  if (!request.page().page_token().empty() &&
      !absl::SimpleAtoi(request.page().page_token(), &after)) {
    return InvalidField("page.page_token", "is not a token this service issued");
  }
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(kAcquireTimeout));
  v1::ListRuleSetsResponse response;
  RETURN_IF_ERROR(
      Query(*lease,
            "SELECT rule_set_id, name, description, latest_version, active_version, rule_count, "
            "updated_by, updated_at, pending_version, failed_version, compile_error, compiled_at "
            "FROM rule_sets WHERE rule_set_id > ? ORDER BY rule_set_id LIMIT ?",
            {after, page_size + 1}, [&](const sql::ResultSet& row) -> absl::Status {
              if (response.rule_sets_size() == page_size) {
                response.mutable_page()->set_next_page_token(
                    absl::StrCat(response.rule_sets(page_size - 1).rule_set_id()));
                return absl::OkStatus();
              }
              v1::RuleSet* set = response.add_rule_sets();
              set->set_rule_set_id(row.getUInt64(1));
              set->set_name(row.getString(2));
              set->set_description(row.getString(3));
              set->set_latest_version(row.getUInt(4));
              set->set_active_version(row.getUInt(5));
              set->set_rule_count(row.getUInt64(6));
              set->set_updated_by(row.getString(7));
              ASSIGN_OR_RETURN(absl::Time updated, ParseSqlDateTime(row.getString(8)));
              *set->mutable_updated_at() = ToProtoTime(updated);
              SetCompileState(row.getUInt(9), row.getUInt(10), row.getString(11), set);
              if (!row.isNull(12)) {
                ASSIGN_OR_RETURN(absl::Time compiled, ParseSqlDateTime(row.getString(12)));
                *set->mutable_compiled_at() = ToProtoTime(compiled);
              }
              return absl::OkStatus();
            }));
  return response;
}

absl::StatusOr<std::optional<std::string>> MysqlRuleStore::Load(const std::string& key) {
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(kAcquireTimeout));
  std::string bytes;
  bool found = false;
  // One statement, one snapshot: every chunk of an entry or none.
  RETURN_IF_ERROR(Query(*lease,
                        "SELECT bytes FROM rule_compiled_sets WHERE cache_key = ? ORDER BY chunk",
                        {key}, [&](const sql::ResultSet& row) {
                          bytes += row.getString(1);
                          found = true;
                          return absl::OkStatus();
                        }));
  if (!found) return std::nullopt;
  const absl::Time now = clock_.Now();
  RETURN_IF_ERROR(Execute(*lease,
                          "UPDATE rule_compiled_sets SET used_at = ? WHERE cache_key = ? AND "
                          "used_at < ?",
                          {now, key, now - absl::Hours(24)})
                      .status());
  return std::optional<std::string>(std::move(bytes));  // tens of MiB: no copy
}

absl::Status MysqlRuleStore::Store(const std::string& key, const std::string& bytes) {
  const absl::Time now = clock_.Now();
  return WithTransaction(pool_, [&](sql::Connection& conn) -> absl::Status {
    RETURN_IF_ERROR(Execute(conn,
                            "DELETE FROM rule_compiled_sets WHERE cache_key = ? OR used_at < ?",
                            {key, now - kCompiledSetRetention})
                        .status());
    for (size_t offset = 0, chunk = 0; offset < bytes.size() || chunk == 0;
         offset += kCompiledChunkBytes, ++chunk) {
      RETURN_IF_ERROR(Execute(conn,
                              "INSERT INTO rule_compiled_sets (cache_key, chunk, bytes, used_at) "
                              "VALUES (?, ?, ?, ?)",
                              {key, static_cast<uint64_t>(chunk),
                               bytes.substr(offset, kCompiledChunkBytes), now})
                          .status());
    }
    return absl::OkStatus();
  });
}

namespace {

// Named locks are server-wide: the name is this database's own, so
// deployments (and tests) sharing a server do not wait for each other.
constexpr char kCompileLockName[] = "SHA2(CONCAT('qunzu_rule_compile:', DATABASE(), ':', ?), 256)";

// A held compile claim: the named lock on a connection of its own, released
// when the claim goes; if the release fails, the connection is closed
// instead, which frees the lock too (as a replica's death does).
class CompileClaim {
 public:
  CompileClaim(MysqlPool::Lease lease, std::string key)
      : lease_(std::move(lease)), key_(std::move(key)) {}
  CompileClaim(const CompileClaim&) = delete;
  CompileClaim& operator=(const CompileClaim&) = delete;
  ~CompileClaim() {
    int64_t released = 0;
    const absl::Status status =
        Query(*lease_, absl::StrCat("SELECT RELEASE_LOCK(", kCompileLockName, ")"), {key_},
              [&](const sql::ResultSet& row) {
                if (!row.isNull(1)) released = row.getInt64(1);
                return absl::OkStatus();
              });
    if (!status.ok() || released != 1) lease_.MarkBroken();
  }

 private:
  MysqlPool::Lease lease_;
  std::string key_;
};

}  // namespace

absl::StatusOr<std::shared_ptr<void>> MysqlRuleStore::ClaimCompile(const std::string& key) {
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(kAcquireTimeout));
  int64_t got = -1;
  RETURN_IF_ERROR(Query(*lease, absl::StrCat("SELECT GET_LOCK(", kCompileLockName, ", 0)"), {key},
                        [&](const sql::ResultSet& row) {
                          if (!row.isNull(1)) got = row.getInt64(1);
                          return absl::OkStatus();
                        }));
  if (got == 0) return nullptr;
  if (got != 1) {
    return MakeError(absl::StatusCode::kUnavailable, "RULE_COMPILE_LOCK_FAILED",
                     "GET_LOCK returned NULL");
  }
  return std::shared_ptr<void>(std::make_shared<CompileClaim>(std::move(lease), key));
}

const std::vector<Migration>& RuleSetMigrations() {
  static const auto* migrations = new std::vector<Migration>{
      {1,
       "rule sets with versions",
       {"CREATE TABLE IF NOT EXISTS rule_sets ("
        " rule_set_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,"
        " name VARCHAR(128) NOT NULL, description VARCHAR(1000) NOT NULL,"
        " latest_version INT UNSIGNED NOT NULL, active_version INT UNSIGNED NOT NULL,"
        " rule_count BIGINT UNSIGNED NOT NULL, updated_by VARCHAR(255) NOT NULL,"
        " updated_at DATETIME(6) NOT NULL, UNIQUE KEY uk_name (name)) ENGINE=InnoDB",
        "CREATE TABLE IF NOT EXISTS rule_set_rules ("
        " rule_set_id BIGINT UNSIGNED NOT NULL, version INT UNSIGNED NOT NULL,"
        " rule_id BIGINT UNSIGNED NOT NULL, kind TINYINT NOT NULL,"
        " pattern VARBINARY(1024) NOT NULL, category INT NOT NULL, action INT NOT NULL,"
        " note VARCHAR(500) NOT NULL,"
        " PRIMARY KEY (rule_set_id, version, rule_id)) ENGINE=InnoDB",
        "CREATE TABLE IF NOT EXISTS rule_generation ("
        " id TINYINT UNSIGNED NOT NULL PRIMARY KEY, generation BIGINT NOT NULL,"
        " next_rule_id BIGINT UNSIGNED NOT NULL) ENGINE=InnoDB",
        "INSERT IGNORE INTO rule_generation (id, generation, next_rule_id) VALUES (1, 0, 1)"}},
      // After the emergency-mode (10) and case (50-54) migrations, which
      // came first.
      {55,
       "compiled rule sets shared between replicas",
       {"CREATE TABLE IF NOT EXISTS rule_compiled_sets ("
        " cache_key CHAR(64) NOT NULL, chunk INT UNSIGNED NOT NULL,"
        " bytes MEDIUMBLOB NOT NULL, used_at DATETIME(6) NOT NULL,"
        " PRIMARY KEY (cache_key, chunk), KEY by_used (used_at)) ENGINE=InnoDB"}},
      {56,
       "a version is activated once compiled",
       {"ALTER TABLE rule_sets"
        " ADD COLUMN IF NOT EXISTS pending_version INT UNSIGNED NOT NULL DEFAULT 0,"
        " ADD COLUMN IF NOT EXISTS pending_since DATETIME(6) NULL,"
        " ADD COLUMN IF NOT EXISTS failed_version INT UNSIGNED NOT NULL DEFAULT 0,"
        " ADD COLUMN IF NOT EXISTS compile_error VARCHAR(1000) NOT NULL DEFAULT '',"
        " ADD COLUMN IF NOT EXISTS compiled_at DATETIME(6) NULL,"
        " ADD KEY IF NOT EXISTS by_pending (pending_version, pending_since)"}},
      {57,
       "the compiled set a generation was put in force with",
       {"ALTER TABLE rule_generation"
        " ADD COLUMN IF NOT EXISTS in_force_generation BIGINT NOT NULL DEFAULT 0,"
        " ADD COLUMN IF NOT EXISTS in_force_key VARCHAR(64) NOT NULL DEFAULT ''"}},
      {58,
       "versions share the rule rows they have in common",
       {"ALTER TABLE rule_set_rules"
        " ADD COLUMN IF NOT EXISTS until_version INT UNSIGNED NOT NULL DEFAULT 0,"
        // A MERGE finds the rules it removes or replaces by id.
        " ADD KEY IF NOT EXISTS by_rule (rule_set_id, rule_id)",
        // Rows written before hold for their own version only; the latest
        // version's stay open for the next one to share.
        "UPDATE rule_set_rules r JOIN rule_sets s ON s.rule_set_id = r.rule_set_id"
        " SET r.until_version = r.version + 1"
        " WHERE r.version < s.latest_version AND r.until_version = 0"}},
  };
  return *migrations;
}

}  // namespace qunzu::moderation
