// The parts of mysql.cc that mysql_pool.cc builds on. For those two files
// only: everything else goes through mysql.h and mysql_pool.h.
#ifndef QUNZU_COMMON_MYSQL_INTERNAL_H_
#define QUNZU_COMMON_MYSQL_INTERNAL_H_

#include <cppconn/connection.h>

#include <memory>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/mysql.h"

namespace qunzu::mysql_internal {

// Opens one connection with the timeouts of `options` and the session
// settings every pooled connection has (see MysqlPool). `schema` may be
// empty. Fails with the contract of mysql.h.
absl::StatusOr<std::unique_ptr<sql::Connection>> Connect(const MysqlOptions& options,
                                                         const std::string& schema);

// Runs body, turning any exception it throws into a status (see mysql.h).
// A connection-level failure closes conn so the pool discards it.
absl::Status Guarded(sql::Connection& conn, const std::string& context,
                     absl::FunctionRef<absl::Status()> body);

// Closes conn, swallowing what closing an already dead connection throws.
void CloseQuietly(sql::Connection& conn);

}  // namespace qunzu::mysql_internal

#endif  // QUNZU_COMMON_MYSQL_INTERNAL_H_
