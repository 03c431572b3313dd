// RespFrameScanner: where a RESP2/RESP3 reply ends, whether it comes whole,
// byte by byte, or not at all as RESP — and in linear time across reads.
#include "common/resp_frame.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace qunzu {
namespace {

using Result = RespFrameScanner::Result;

// Replies of every type, each followed in the tests by the start of another.
const std::vector<std::string>& Replies() {
  static const auto* replies = new std::vector<std::string>{
      "+OK\r\n",
      "-ERR no\r\n",
      ":-42\r\n",
      "_\r\n",
      "#t\r\n",
      ",3.25\r\n",
      "(12345678901234567890\r\n",
      "$5\r\nhe\r\no\r\n",  // a blob holding "\r\n"
      "$0\r\n\r\n",
      "$-1\r\n",
      "!5\r\nOOPS!\r\n",
      "=7\r\ntxt:abc\r\n",
      "*-1\r\n",
      "*0\r\n",
      "%0\r\n",
      "*2\r\n$5\r\nhello\r\n:42\r\n",
      "*3\r\n*2\r\n:1\r\n*0\r\n%1\r\n+k\r\n~2\r\n_\r\n#f\r\n$1\r\nx\r\n",
      ">2\r\n$10\r\ninvalidate\r\n*1\r\n$3\r\nkey\r\n",
      "|1\r\n+ttl\r\n:3\r\n$2\r\nhi\r\n",  // an attribute, then its reply
      "*2\r\n|1\r\n+a\r\n+b\r\n:1\r\n:2\r\n",
      "|0\r\n*1\r\n:1\r\n",
  };
  return *replies;
}

TEST(RespFrameScannerTest, AWholeReplyEndsWhereItEnds) {
  for (const std::string& reply : Replies()) {
    SCOPED_TRACE(reply);
    RespFrameScanner scanner;
    size_t length = 0;
    EXPECT_EQ(scanner.Scan(reply + "*2\r\n:1", &length), Result::kComplete);
    EXPECT_EQ(length, reply.size());
  }
}

TEST(RespFrameScannerTest, EveryShorterPrefixIsIncompleteWhetherFedOnceOrGrowing) {
  for (const std::string& reply : Replies()) {
    SCOPED_TRACE(reply);
    RespFrameScanner growing;
    size_t length = 0;
    for (size_t n = 0; n < reply.size(); ++n) {
      const absl::string_view prefix(reply.data(), n);
      ASSERT_EQ(growing.Scan(prefix, &length), Result::kIncomplete) << n;
      RespFrameScanner fresh;
      ASSERT_EQ(fresh.Scan(prefix, &length), Result::kIncomplete) << n;
    }
    ASSERT_EQ(growing.Scan(reply, &length), Result::kComplete);
    EXPECT_EQ(length, reply.size());
    // Reset, it frames the next reply from its own start.
    growing.Reset();
    ASSERT_EQ(growing.Scan(":7\r\n", &length), Result::kComplete);
    EXPECT_EQ(length, 4u);
  }
}

TEST(RespFrameScannerTest, ManyElementsArrivingInManyReadsAreLookedAtOnce) {
  // 200,000 elements, seen in growing prefixes 1,000 bytes apart (~1,900
  // calls): a scan from the start at every call would look at ~900 MB.
  std::string reply = "*200000\r\n";
  for (int i = 0; i < 200000; ++i) absl::StrAppend(&reply, "$6\r\n", 100000 + i, "\r\n");
  RespFrameScanner scanner;
  size_t length = 0;
  int calls = 0;
  for (size_t n = 1000; n < reply.size(); n += 1000, ++calls) {
    ASSERT_EQ(scanner.Scan(absl::string_view(reply.data(), n), &length), Result::kIncomplete);
  }
  ASSERT_EQ(scanner.Scan(reply, &length), Result::kComplete);
  EXPECT_EQ(length, reply.size());
  // Every header once, plus the few bytes at each cut looked at again.
  EXPECT_LE(scanner.bytes_examined(), reply.size() + 16 * static_cast<uint64_t>(calls + 1));
}

TEST(RespFrameScannerTest, ALongLineArrivingByteByByteIsSearchedOnce) {
  const std::string reply = "+" + std::string(100000, 'a') + "\r\n";
  RespFrameScanner scanner;
  size_t length = 0;
  for (size_t n = 1; n < reply.size(); ++n) {
    ASSERT_EQ(scanner.Scan(absl::string_view(reply.data(), n), &length), Result::kIncomplete);
  }
  ASSERT_EQ(scanner.Scan(reply, &length), Result::kComplete);
  EXPECT_LE(scanner.bytes_examined(), 2 * reply.size());
}

TEST(RespFrameScannerTest, WhatIsNotRespIsRefused) {
  std::string too_deep;
  for (size_t i = 0; i <= RespFrameScanner::kMaxDepth; ++i) too_deep += "*1\r\n";
  too_deep += ":1\r\n";
  for (const std::string& bad :
       {std::string("?what\r\n"), std::string("$x\r\n"), std::string("$-2\r\n"),
        std::string("$3\r\nabcde\r\n"), std::string("!-1\r\n"), std::string("=-1\r\n"),
        std::string("*-2\r\n"), std::string("~-1\r\n"), std::string(">-1\r\n"),
        std::string("%-1\r\n"), std::string("%1099511627777\r\n"), std::string("|x\r\n"),
        std::string("*2\r\n:1\r\n?\r\n"), too_deep}) {
    SCOPED_TRACE(bad);
    RespFrameScanner scanner;
    size_t length = 0;
    EXPECT_EQ(scanner.Scan(bad, &length), Result::kBad);
  }
  // As deep as allowed is fine.
  std::string deepest;
  for (size_t i = 0; i < RespFrameScanner::kMaxDepth; ++i) deepest += "*1\r\n";
  deepest += ":1\r\n";
  RespFrameScanner scanner;
  size_t length = 0;
  EXPECT_EQ(scanner.Scan(deepest, &length), Result::kComplete);
  EXPECT_EQ(length, deepest.size());
}

}  // namespace
}  // namespace qunzu
