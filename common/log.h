// Structured logs: one JSON object per line (stderr by default) with time,
// level, service, event and typed fields, so log pipelines can index them
// without parsing free text. Never log a real name, ID number or phone.
//
//   qunzu::LoggerOptions options;
//   options.service = "groups";
//   qunzu::InitLogging(std::move(options));
//   qunzu::LogInfo("group_created", {{"group_id", id}, {"tier", "SMALL"}});
// writes
//   {"time":"2024-05-01T12:34:56.789Z","level":"info","service":"groups",
//    "event":"group_created","group_id":42,"tier":"SMALL"}
#ifndef QUNZU_COMMON_LOG_H_
#define QUNZU_COMMON_LOG_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <variant>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace qunzu {

// Severity, in increasing order.
enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// "debug", "info", "warning" or "error": the "level" value in each line.
absl::string_view LogLevelName(LogLevel level);

// The inverse of LogLevelName; anything else is INVALID_ARGUMENT.
absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name);

// One key and typed value. Holds views: build fields in the logging call's
// argument list, not ahead of it. Integers are written as int64.
class LogField {
 public:
  LogField(absl::string_view key, absl::string_view value) : key_(key), value_(value) {}
  LogField(absl::string_view key, const char* value)
      : key_(key), value_(absl::string_view(value)) {}
  LogField(absl::string_view key, const std::string& value)
      : key_(key), value_(absl::string_view(value)) {}
  LogField(absl::string_view key, bool value) : key_(key), value_(value) {}
  LogField(absl::string_view key, double value) : key_(key), value_(value) {}
  template <typename T,
            std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  LogField(absl::string_view key, T value) : key_(key), value_(static_cast<int64_t>(value)) {}

  absl::string_view key() const { return key_; }
  // One of absl::string_view, int64_t, double, bool.
  const std::variant<absl::string_view, int64_t, double, bool>& value() const { return value_; }

 private:
  absl::string_view key_;
  std::variant<absl::string_view, int64_t, double, bool> value_;
};

// Where finished lines go. A Logger calls Write from one thread at a time.
class LogSink {
 public:
  virtual ~LogSink() = default;
  // line is one JSON object followed by '\n'.
  virtual void Write(absl::string_view line) = 0;
};

// The process's stderr, written with one write(2) per line where possible
// and serialized across every logger that shares it.
std::shared_ptr<LogSink> StderrLogSink();

// Appends bytes to out as a JSON string literal with its quotes. Escapes '"',
// '\\', control characters, DEL, U+2028 and U+2029; replaces each maximal
// invalid UTF-8 subsequence with U+FFFD; copies other UTF-8 as is.
void AppendJsonString(std::string* out, absl::string_view bytes);

// How a Logger is set up.
struct LoggerOptions {
  // The "service" value of every line, e.g. "groups".
  std::string service;
  // Lines below this level are dropped.
  LogLevel min_level = LogLevel::kInfo;
  // Null means StderrLogSink().
  std::shared_ptr<LogSink> sink;
  // Null means absl::Now; tests inject a fixed clock.
  std::function<absl::Time()> clock;
};

// Formats and writes log lines. Thread-safe; lines never interleave.
class Logger {
 public:
  explicit Logger(LoggerOptions options);

  // Whether a line at level would be written.
  bool Enabled(LogLevel level) const;
  // Changes the minimum level; safe while other threads log.
  void SetMinLevel(LogLevel level);

  // Writes {"time","level","service","event", fields...} when Enabled.
  // time is RFC 3339 UTC with milliseconds. A field whose key is one of the
  // four fixed keys is written with a "_" prefix so keys stay unique.
  // Doubles that are not finite are written as the strings "NaN",
  // "Infinity" and "-Infinity".
  void Log(LogLevel level, absl::string_view event, absl::Span<const LogField> fields = {});

  // The complete line Log would write, without the level check.
  std::string Format(LogLevel level, absl::string_view event,
                     absl::Span<const LogField> fields) const;

 private:
  const std::string service_;
  const std::shared_ptr<LogSink> sink_;
  const std::function<absl::Time()> clock_;
  std::atomic<int> min_level_;
  absl::Mutex write_mu_;
};

// Replaces the process-wide logger; call once early in main. Until then the
// process logger writes to stderr at level info with service "".
void InitLogging(LoggerOptions options);

// The process-wide logger.
std::shared_ptr<Logger> ProcessLogger();

// Log through the process-wide logger.
void LogDebug(absl::string_view event, absl::Span<const LogField> fields = {});
void LogInfo(absl::string_view event, absl::Span<const LogField> fields = {});
void LogWarning(absl::string_view event, absl::Span<const LogField> fields = {});
void LogError(absl::string_view event, absl::Span<const LogField> fields = {});

}  // namespace qunzu

#endif  // QUNZU_COMMON_LOG_H_
