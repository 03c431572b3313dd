#include "services/qunzuctl/exit_codes.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "qunzu/common/v1/common.pb.h"

namespace qunzu::ctl {

int ExitCodeForStatus(const absl::Status& status) {
  if (status.ok()) return kExitOk;
  int code = static_cast<int>(status.code());
  if (code < 1 || code > 16) code = static_cast<int>(absl::StatusCode::kUnknown);
  return kExitRpcBase + code;
}

std::string DescribeError(const absl::Status& status) {
  if (status.ok()) return "OK";
  std::string code = absl::AsciiStrToUpper(absl::StatusCodeToString(status.code()));
  std::string reason = ErrorReason(status);
  std::string out = code;
  if (reason != code) absl::StrAppend(&out, " ", reason);
  std::vector<std::string> metadata;
  if (auto payload = status.GetPayload(kErrorInfoTypeUrl)) {
    common::v1::ErrorInfo info;
    if (info.ParseFromString(std::string(*payload))) {
      std::map<std::string, std::string> sorted(info.metadata().begin(), info.metadata().end());
      for (const auto& [key, value] : sorted) metadata.push_back(absl::StrCat(key, "=", value));
    }
  }
  if (!metadata.empty()) absl::StrAppend(&out, " [", absl::StrJoin(metadata, " "), "]");
  if (!status.message().empty()) absl::StrAppend(&out, ": ", status.message());
  return out;
}

}  // namespace qunzu::ctl
