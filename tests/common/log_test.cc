#include "common/log.h"

#include <gmock/gmock.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <thread>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"

namespace qunzu {
namespace {

using ::google::protobuf::Struct;
using ::testing::ElementsAre;

// Keeps every line. Appends one byte at a time on purpose: if the logger let
// two threads write at once, their lines would interleave here.
class CapturingSink : public LogSink {
 public:
  void Write(absl::string_view line) override {
    for (char c : line) text_.push_back(c);
  }
  std::vector<std::string> Lines() const {
    std::vector<std::string> lines = absl::StrSplit(text_, '\n', absl::SkipEmpty());
    return lines;
  }

 private:
  std::string text_;
};

absl::Time FixedTime() {
  return absl::FromCivil(absl::CivilSecond(2024, 5, 1, 12, 34, 56), absl::UTCTimeZone()) +
         absl::Milliseconds(789);
}

struct Harness {
  explicit Harness(LogLevel min_level = LogLevel::kDebug)
      : sink(std::make_shared<CapturingSink>()),
        logger(LoggerOptions{"groups", min_level, sink, FixedTime}) {}
  std::shared_ptr<CapturingSink> sink;
  Logger logger;
};

// Parses a line with protobuf's JSON parser, a strict RFC 8259 reader.
Struct ParseJson(const std::string& line) {
  Struct parsed;
  auto status = google::protobuf::util::JsonStringToMessage(line, &parsed);
  EXPECT_TRUE(status.ok()) << status.ToString() << " in " << line;
  return parsed;
}

std::string Json(absl::string_view bytes) {
  std::string out;
  AppendJsonString(&out, bytes);
  return out;
}

TEST(LogTest, WritesOneExactJsonObjectPerLine) {
  Harness h;
  h.logger.Log(LogLevel::kInfo, "group_created",
               {{"group_id", 42}, {"name", "Tea"}, {"ratio", 0.25}, {"public", true}});
  EXPECT_THAT(h.sink->Lines(),
              ElementsAre("{\"time\":\"2024-05-01T12:34:56.789Z\",\"level\":\"info\","
                          "\"service\":\"groups\",\"event\":\"group_created\",\"group_id\":42,"
                          "\"name\":\"Tea\",\"ratio\":0.25,\"public\":true}"));
}

TEST(LogTest, EscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(Json("say \"hi\" \\ bye"), R"("say \"hi\" \\ bye")");
  EXPECT_EQ(Json("\n\r\t\b\f"), R"("\n\r\t\b\f")");
  EXPECT_EQ(Json(absl::string_view("\x01\x1f\x7f\0", 4)), R"("\u0001\u001f\u007f\u0000")");
  EXPECT_EQ(Json("</script>"), R"("</script>")");
}

TEST(LogTest, KeepsValidUtf8AndEscapesLineSeparators) {
  EXPECT_EQ(Json("群组 ok é 😀"), "\"群组 ok é 😀\"");
  EXPECT_EQ(Json("a\xE2\x80\xA8"
                 "b\xE2\x80\xA9"),
            R"("a\u2028b\u2029")");
  EXPECT_EQ(Json("\xF4\x8F\xBF\xBF"), "\"\xF4\x8F\xBF\xBF\"");  // U+10FFFF, the last
}

TEST(LogTest, ReplacesEachMaximalInvalidUtf8SubsequenceWithOneReplacementCharacter) {
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(Json("\xFF"), "\"" + r + "\"");                          // never a lead byte
  EXPECT_EQ(Json("a\xE4\xB8"), "\"a" + r + "\"");                    // truncated 3-byte
  EXPECT_EQ(Json("\xE4\xB8x"), "\"" + r + "x\"");                    // interrupted 3-byte
  EXPECT_EQ(Json("\xC0\xAF"), "\"" + r + r + "\"");                  // overlong '/'
  EXPECT_EQ(Json("\xE0\x80\xAF"), "\"" + r + r + r + "\"");          // overlong 3-byte
  EXPECT_EQ(Json("\xED\xA0\x80"), "\"" + r + r + r + "\"");          // surrogate U+D800
  EXPECT_EQ(Json("\xF4\x90\x80\x80"), "\"" + r + r + r + r + "\"");  // above U+10FFFF
  EXPECT_EQ(Json("\x80\xBF"), "\"" + r + r + "\"");                  // lone continuations
  EXPECT_EQ(Json("\xF0\x9F\x98"), "\"" + r + "\"");                  // truncated emoji
}

TEST(LogTest, TrickyStringsRoundTripThroughAJsonParser) {
  Harness h;
  const std::string tricky = "q\"b\\n\n\x01\x7f 群 \xE2\x80\xA8 😀";
  h.logger.Log(LogLevel::kWarning, "ev\"ent", {{"text", tricky}, {"bad", "x\xC3(y"}});
  ASSERT_EQ(h.sink->Lines().size(), 1u);
  Struct parsed = ParseJson(h.sink->Lines()[0]);
  EXPECT_EQ(parsed.fields().at("event").string_value(), "ev\"ent");
  EXPECT_EQ(parsed.fields().at("text").string_value(), tricky);
  EXPECT_EQ(parsed.fields().at("bad").string_value(), "x\xEF\xBF\xBD(y");
  EXPECT_EQ(parsed.fields().at("level").string_value(), "warning");
}

TEST(LogTest, TypedValuesAndNonFiniteDoubles) {
  Harness h;
  h.logger.Log(LogLevel::kInfo, "numbers",
               {{"min", std::numeric_limits<int64_t>::min()},
                {"small", -0.5},
                {"tenth", 0.1},
                {"big", 1e300},
                {"nan", std::nan("")},
                {"inf", -std::numeric_limits<double>::infinity()},
                {"no", false}});
  const std::string line = h.sink->Lines().at(0);
  EXPECT_THAT(line, ::testing::HasSubstr("\"min\":-9223372036854775808,\"small\":-0.5,"
                                         "\"tenth\":0.1,\"big\":1e+300,\"nan\":\"NaN\","
                                         "\"inf\":\"-Infinity\",\"no\":false}"));
  ParseJson(line);
}

TEST(LogTest, FieldsNamedLikeFixedKeysArePrefixed) {
  Harness h;
  h.logger.Log(LogLevel::kInfo, "e", {{"time", "mine"}, {"level", 3}});
  Struct parsed = ParseJson(h.sink->Lines().at(0));
  EXPECT_EQ(parsed.fields().at("time").string_value(), "2024-05-01T12:34:56.789Z");
  EXPECT_EQ(parsed.fields().at("_time").string_value(), "mine");
  EXPECT_EQ(parsed.fields().at("_level").number_value(), 3);
}

TEST(LogTest, MinimumLevelFilters) {
  Harness h(LogLevel::kWarning);
  EXPECT_FALSE(h.logger.Enabled(LogLevel::kInfo));
  h.logger.Log(LogLevel::kDebug, "d");
  h.logger.Log(LogLevel::kInfo, "i");
  h.logger.Log(LogLevel::kWarning, "w");
  h.logger.Log(LogLevel::kError, "e");
  h.logger.SetMinLevel(LogLevel::kDebug);
  h.logger.Log(LogLevel::kDebug, "d2");
  std::vector<std::string> events;
  for (const std::string& line : h.sink->Lines()) {
    events.push_back(ParseJson(line).fields().at("event").string_value());
  }
  EXPECT_THAT(events, ElementsAre("w", "e", "d2"));
}

TEST(LogTest, LinesFromManyThreadsNeverInterleave) {
  Harness h;
  const std::string payload(300, 'x');
  std::vector<std::thread> threads;
  threads.reserve(8);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        h.logger.Log(LogLevel::kInfo, "tick", {{"thread", t}, {"i", i}, {"payload", payload}});
      }
    });
  }
  for (auto& thread : threads) thread.join();
  const std::vector<std::string> lines = h.sink->Lines();
  ASSERT_EQ(lines.size(), 1600u);
  for (const std::string& line : lines) {
    EXPECT_EQ(ParseJson(line).fields().at("payload").string_value(), payload);
  }
}

TEST(LogTest, LevelNamesParse) {
  EXPECT_EQ(*ParseLogLevel("warning"), LogLevel::kWarning);
  EXPECT_EQ(LogLevelName(LogLevel::kError), "error");
  EXPECT_EQ(ParseLogLevel("WARN").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(LogTest, ProcessLoggerUsesTheServiceSetByInitLogging) {
  auto sink = std::make_shared<CapturingSink>();
  InitLogging(LoggerOptions{"moderation", LogLevel::kInfo, sink, FixedTime});
  LogDebug("hidden");
  LogInfo("started", {{"port", 50051}});
  LogError("failed");
  InitLogging(LoggerOptions{});
  ASSERT_EQ(sink->Lines().size(), 2u);
  Struct first = ParseJson(sink->Lines()[0]);
  EXPECT_EQ(first.fields().at("service").string_value(), "moderation");
  EXPECT_EQ(first.fields().at("port").number_value(), 50051);
  EXPECT_EQ(ParseJson(sink->Lines()[1]).fields().at("level").string_value(), "error");
}

}  // namespace
}  // namespace qunzu
