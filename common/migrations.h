// Versioned schema migrations, applied by every service at start. A named
// MySQL lock (GET_LOCK) serialises them, so several replicas may start at
// once: one applies, the others wait and then find nothing left to do.
//
// Each applied migration is recorded in schema_migrations(component,
// version, name, checksum, applied_at). Several components share one schema:
// "common" (CommonMigrations: the outbox and idempotency tables) and the
// service's own.
//
// MySQL commits DDL implicitly, so a migration that fails halfway stays
// half-applied and unrecorded, and runs again from its first statement on
// the next start. Write statements that may run twice (CREATE TABLE IF NOT
// EXISTS, ADD COLUMN IF NOT EXISTS, ...).
#ifndef QUNZU_COMMON_MIGRATIONS_H_
#define QUNZU_COMMON_MIGRATIONS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/mysql_pool.h"

namespace qunzu {

// One step of a component's schema. Once applied, its name and statements
// must never change (their checksum is verified on every start); change the
// schema with a new migration instead.
struct Migration {
  int version = 0;
  std::string name;
  std::vector<std::string> statements;
};

// Component name of CommonMigrations().
inline constexpr char kCommonComponent[] = "common";

// The tables every service needs for the outbox (outbox.h) and the
// idempotency helper (idempotency.h). Apply them as component "common".
const std::vector<Migration>& CommonMigrations();

// SHA-256 (hex) over a migration's name and statements, as recorded in
// schema_migrations.checksum.
std::string MigrationChecksum(const Migration& migration);

// Applies to pool's schema, in version order, the migrations of `component`
// not applied yet, holding a named lock for the whole run (waiting up to
// lock_timeout for it). Refuses with FAILED_PRECONDITION naming the
// migration, before applying anything, when:
//   MIGRATION_INVALID      versions are not strictly increasing (from >= 1),
//                          or a migration has no name or no statements;
//   MIGRATION_CHANGED      an applied migration's checksum differs;
//   MIGRATION_MISSING      an applied version is absent from the list;
//   MIGRATION_OUT_OF_ORDER a pending version is lower than an applied one.
// Versions applied beyond the list's last (a newer binary ran) are accepted,
// so an older replica still starts during a rollout. UNAVAILABLE
// (MIGRATION_LOCK_TIMEOUT) when another holder keeps the lock for
// lock_timeout; a failing statement returns its MySQL error naming the
// migration.
absl::Status ApplyMigrations(MysqlPool& pool, const std::string& component,
                             const std::vector<Migration>& migrations,
                             absl::Duration lock_timeout = absl::Seconds(120));

}  // namespace qunzu

#endif  // QUNZU_COMMON_MIGRATIONS_H_
