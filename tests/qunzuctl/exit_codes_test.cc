#include "services/qunzuctl/exit_codes.h"

#include <gtest/gtest.h>

#include "common/status.h"

namespace qunzu::ctl {
namespace {

TEST(ExitCodesTest, GrpcCodesMapAbove64AndUsageIsTwo) {
  EXPECT_EQ(ExitCodeForStatus(absl::OkStatus()), 0);
  EXPECT_EQ(ExitCodeForStatus(absl::UnauthenticatedError("x")), 80);
  EXPECT_EQ(ExitCodeForStatus(absl::PermissionDeniedError("x")), 71);
  EXPECT_EQ(ExitCodeForStatus(absl::UnavailableError("x")), 78);
  EXPECT_EQ(ExitCodeForStatus(absl::DeadlineExceededError("x")), 68);
  EXPECT_EQ(ExitCodeForStatus(absl::UnimplementedError("x")), 76);
  EXPECT_EQ(ExitCodeForStatus(absl::InvalidArgumentError("x")), 67);
  EXPECT_EQ(kExitUsage, 2);
  // Every canonical error code lands above the codes qunzuctl uses itself.
  for (int code = 1; code <= 16; ++code) {
    EXPECT_EQ(ExitCodeForStatus(absl::Status(static_cast<absl::StatusCode>(code), "x")), 64 + code);
  }
}

TEST(ExitCodesTest, DescribeErrorShowsCodeReasonMetadataAndMessage) {
  absl::Status status = MakeError(absl::StatusCode::kResourceExhausted, "GROUP_MEMBER_CAP_REACHED",
                                  "the group is full", {{"cap", "100"}, {"group_id", "7"}});
  EXPECT_EQ(DescribeError(status),
            "RESOURCE_EXHAUSTED GROUP_MEMBER_CAP_REACHED [cap=100 group_id=7]: the group is full");
  EXPECT_EQ(DescribeError(absl::UnavailableError("down")), "UNAVAILABLE: down");
}

}  // namespace
}  // namespace qunzu::ctl
