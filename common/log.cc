#include "common/log.h"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status.h"

namespace qunzu {
namespace {

constexpr absl::string_view kReplacementCharacter = "\xEF\xBF\xBD";  // U+FFFD

// One step of UTF-8 decoding (Unicode table 3-7). When invalid, length is
// the maximal subpart to replace with one U+FFFD (always at least 1).
struct Utf8Step {
  size_t length;
  bool valid;
  uint32_t code_point;
};

Utf8Step DecodeUtf8(absl::string_view bytes, size_t at) {
  const auto lead = static_cast<unsigned char>(bytes[at]);
  if (lead < 0x80) return {1, true, lead};
  size_t trailing = 0;
  unsigned char low = 0x80;
  unsigned char high = 0xBF;
  uint32_t code_point = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    trailing = 1;
    code_point = lead & 0x1F;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    trailing = 2;
    code_point = lead & 0x0F;
    if (lead == 0xE0) low = 0xA0;   // no overlong forms
    if (lead == 0xED) high = 0x9F;  // no surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    trailing = 3;
    code_point = lead & 0x07;
    if (lead == 0xF0) low = 0x90;   // no overlong forms
    if (lead == 0xF4) high = 0x8F;  // nothing above U+10FFFF
  } else {
    return {1, false, 0};
  }
  size_t length = 1;
  for (size_t i = 0; i < trailing; ++i, ++length) {
    if (at + length >= bytes.size()) return {length, false, 0};
    const auto next = static_cast<unsigned char>(bytes[at + length]);
    if (next < low || next > high) return {length, false, 0};
    code_point = (code_point << 6) | (next & 0x3F);
    low = 0x80;
    high = 0xBF;
  }
  return {length, true, code_point};
}

void AppendEscapedAscii(std::string* out, char c) {
  switch (c) {
    case '"':
      out->append("\\\"");
      return;
    case '\\':
      out->append("\\\\");
      return;
    case '\n':
      out->append("\\n");
      return;
    case '\r':
      out->append("\\r");
      return;
    case '\t':
      out->append("\\t");
      return;
    case '\b':
      out->append("\\b");
      return;
    case '\f':
      out->append("\\f");
      return;
    default:
      break;
  }
  if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
    absl::StrAppendFormat(out, "\\u%04x", static_cast<unsigned char>(c));
  } else {
    out->push_back(c);
  }
}

void AppendDouble(std::string* out, double value) {
  if (std::isnan(value)) return AppendJsonString(out, "NaN");
  if (std::isinf(value)) return AppendJsonString(out, value > 0 ? "Infinity" : "-Infinity");
  std::array<char, 32> buffer;
  auto [end, error] = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
  if (error != std::errc()) return AppendJsonString(out, "NaN");
  out->append(buffer.data(), end);
}

void AppendValue(std::string* out, const LogField& field) {
  const auto& value = field.value();
  if (const auto* text = std::get_if<absl::string_view>(&value)) {
    AppendJsonString(out, *text);
  } else if (const auto* integer = std::get_if<int64_t>(&value)) {
    absl::StrAppend(out, *integer);
  } else if (const auto* real = std::get_if<double>(&value)) {
    AppendDouble(out, *real);
  } else {
    out->append(std::get<bool>(value) ? "true" : "false");
  }
}

bool IsFixedKey(absl::string_view key) {
  return key == "time" || key == "level" || key == "service" || key == "event";
}

class StderrSink : public LogSink {
 public:
  void Write(absl::string_view line) override {
    absl::MutexLock lock(&mu_);
    while (!line.empty()) {
      ssize_t written = ::write(STDERR_FILENO, line.data(), line.size());
      if (written < 0 && errno == EINTR) continue;
      if (written <= 0) return;  // nowhere left to report it
      line.remove_prefix(static_cast<size_t>(written));
    }
  }

 private:
  absl::Mutex mu_;
};

absl::Mutex process_logger_mu(absl::kConstInit);

std::shared_ptr<Logger>& ProcessLoggerSlot() ABSL_EXCLUSIVE_LOCKS_REQUIRED(process_logger_mu) {
  static auto* slot = new std::shared_ptr<Logger>(std::make_shared<Logger>(LoggerOptions()));
  return *slot;
}

}  // namespace

absl::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "unknown";
}

absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name) {
  for (LogLevel level : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarning, LogLevel::kError}) {
    if (LogLevelName(level) == name) return level;
  }
  return InvalidField("log_level",
                      absl::StrCat("\"", name, "\" is not debug, info, warning or error"));
}

std::shared_ptr<LogSink> StderrLogSink() {
  static auto* sink = new std::shared_ptr<LogSink>(std::make_shared<StderrSink>());
  return *sink;
}

void AppendJsonString(std::string* out, absl::string_view bytes) {
  out->push_back('"');
  for (size_t at = 0; at < bytes.size();) {
    if (static_cast<unsigned char>(bytes[at]) < 0x80) {
      AppendEscapedAscii(out, bytes[at++]);
      continue;
    }
    const Utf8Step step = DecodeUtf8(bytes, at);
    if (!step.valid) {
      out->append(kReplacementCharacter.data(), kReplacementCharacter.size());
    } else if (step.code_point == 0x2028 || step.code_point == 0x2029) {
      absl::StrAppendFormat(out, "\\u%04x", step.code_point);
    } else {
      out->append(bytes.data() + at, step.length);
    }
    at += step.length;
  }
  out->push_back('"');
}

Logger::Logger(LoggerOptions options)
    : service_(std::move(options.service)),
      sink_(options.sink ? std::move(options.sink) : StderrLogSink()),
      clock_(options.clock ? std::move(options.clock) : [] { return absl::Now(); }),
      min_level_(static_cast<int>(options.min_level)) {}

bool Logger::Enabled(LogLevel level) const {
  return static_cast<int>(level) >= min_level_.load(std::memory_order_relaxed);
}

void Logger::SetMinLevel(LogLevel level) {
  min_level_.store(static_cast<int>(level), std::memory_order_relaxed);
}

std::string Logger::Format(LogLevel level, absl::string_view event,
                           absl::Span<const LogField> fields) const {
  std::string line = absl::StrCat(
      "{\"time\":\"", absl::FormatTime("%Y-%m-%d%ET%H:%M:%E3SZ", clock_(), absl::UTCTimeZone()),
      "\",\"level\":\"", LogLevelName(level), "\",\"service\":");
  AppendJsonString(&line, service_);
  line.append(",\"event\":");
  AppendJsonString(&line, event);
  for (const LogField& field : fields) {
    line.push_back(',');
    AppendJsonString(&line, IsFixedKey(field.key()) ? absl::StrCat("_", field.key()) : field.key());
    line.push_back(':');
    AppendValue(&line, field);
  }
  line.append("}\n");
  return line;
}

void Logger::Log(LogLevel level, absl::string_view event, absl::Span<const LogField> fields) {
  if (!Enabled(level)) return;
  const std::string line = Format(level, event, fields);
  absl::MutexLock lock(&write_mu_);
  sink_->Write(line);
}

void InitLogging(LoggerOptions options) {
  auto logger = std::make_shared<Logger>(std::move(options));
  absl::MutexLock lock(&process_logger_mu);
  ProcessLoggerSlot() = std::move(logger);
}

std::shared_ptr<Logger> ProcessLogger() {
  absl::MutexLock lock(&process_logger_mu);
  return ProcessLoggerSlot();
}

void LogDebug(absl::string_view event, absl::Span<const LogField> fields) {
  ProcessLogger()->Log(LogLevel::kDebug, event, fields);
}

void LogInfo(absl::string_view event, absl::Span<const LogField> fields) {
  ProcessLogger()->Log(LogLevel::kInfo, event, fields);
}

void LogWarning(absl::string_view event, absl::Span<const LogField> fields) {
  ProcessLogger()->Log(LogLevel::kWarning, event, fields);
}

void LogError(absl::string_view event, absl::Span<const LogField> fields) {
  ProcessLogger()->Log(LogLevel::kError, event, fields);
}

}  // namespace qunzu
