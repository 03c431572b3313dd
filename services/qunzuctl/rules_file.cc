#include "services/qunzuctl/rules_file.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status.h"
#include "services/qunzuctl/field_setter.h"

namespace qunzu::ctl {
namespace {

absl::Status BadLine(absl::string_view name, int line, absl::string_view problem) {
  return InvalidField("--file", absl::StrCat(name, ":", line, ": ", problem));
}

}  // namespace

absl::StatusOr<std::vector<moderation::v1::Rule>> ParseRulesFile(absl::string_view text,
                                                                 absl::string_view name) {
  std::vector<moderation::v1::Rule> rules;
  int number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || absl::StartsWith(line, "#")) continue;
    std::vector<absl::string_view> parts =
        absl::StrSplit(line, absl::MaxSplits(absl::ByAnyChar(" \t"), 2), absl::SkipEmpty());
    if (parts.size() < 3) {
      return BadLine(name, number, "expected ACTION CATEGORY PATTERN");
    }
    moderation::v1::Rule rule;
    moderation::v1::RuleAction action;
    if (!moderation::v1::RuleAction_Parse(
            absl::StrCat("RULE_ACTION_", absl::AsciiStrToUpper(parts[0])), &action) ||
        action == moderation::v1::RULE_ACTION_UNSPECIFIED) {
      return BadLine(name, number,
                     absl::StrCat("\"", parts[0], "\" is not an action (BLOCK, HOLD, ALLOW)"));
    }
    rule.set_action(action);
    if (parts[1] != "-") {
      moderation::v1::ContentCategory category;
      if (!moderation::v1::ContentCategory_Parse(
              absl::StrCat("CONTENT_CATEGORY_", absl::AsciiStrToUpper(parts[1])), &category)) {
        return BadLine(
            name, number,
            absl::StrCat("\"", parts[1], "\" is not a category; one of ",
                         absl::StrJoin(
                             ShortEnumNames(*moderation::v1::ContentCategory_descriptor()), ", ")));
      }
      rule.set_category(category);
    }
    absl::string_view pattern = parts[2];
    if (size_t note = pattern.find("  #"); note != absl::string_view::npos) {
      rule.set_note(std::string(absl::StripAsciiWhitespace(pattern.substr(note + 3))));
      pattern = absl::StripAsciiWhitespace(pattern.substr(0, note));
    }
    rule.set_kind(absl::ConsumePrefix(&pattern, "re:") ? moderation::v1::RULE_KIND_REGEX
                                                       : moderation::v1::RULE_KIND_LITERAL);
    if (pattern.empty()) return BadLine(name, number, "empty pattern");
    rule.set_pattern(std::string(pattern));
    rules.push_back(std::move(rule));
  }
  if (rules.empty()) {
    return InvalidField("--file", absl::StrCat(name, " holds no rule"));
  }
  return rules;
}

}  // namespace qunzu::ctl
