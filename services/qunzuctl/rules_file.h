// The file of terms `qunzuctl rules upsert --file` reads: one rule a line,
//
//   ACTION CATEGORY PATTERN
//
// ACTION is BLOCK, HOLD or ALLOW; CATEGORY a ContentCategory without its
// prefix (FRAUD, GAMBLING...) or "-" for ALLOW; PATTERN the rest of the line,
// a literal term, or a regex when written re:PATTERN. Blank lines and lines
// starting with # are skipped; an optional "  # note" at the end is kept as
// the rule's note.
#ifndef QUNZU_SERVICES_QUNZUCTL_RULES_FILE_H_
#define QUNZU_SERVICES_QUNZUCTL_RULES_FILE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "qunzu/moderation/v1/moderation.pb.h"

namespace qunzu::ctl {

// INVALID_ARGUMENT "<name>:<line>: ..." on the first bad line, or when the
// file has no rule.
absl::StatusOr<std::vector<moderation::v1::Rule>> ParseRulesFile(absl::string_view text,
                                                                 absl::string_view name);

}  // namespace qunzu::ctl

#endif  // QUNZU_SERVICES_QUNZUCTL_RULES_FILE_H_
