#include "common/status.h"

#include <grpcpp/support/status.h>
#include <gtest/gtest.h>

#include "qunzu/common/v1/common.pb.h"

namespace qunzu {
namespace {

absl::StatusOr<int> Half(int n) {
  if (n % 2 != 0) return InvalidField("n", "must be even");
  return n / 2;
}

absl::StatusOr<int> Quarter(int n) {
  ASSIGN_OR_RETURN(int half, Half(n));
  ASSIGN_OR_RETURN(int quarter, Half(half));
  return quarter;
}

absl::Status CheckEven(int n) {
  RETURN_IF_ERROR(Half(n).status());
  return absl::OkStatus();
}

TEST(StatusMacros, PropagateFirstError) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_EQ(Quarter(6).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(CheckEven(2).ok());
  EXPECT_EQ(ErrorReason(CheckEven(3)), "INVALID_FIELD");
}

TEST(MakeError, CarriesReasonAndMetadata) {
  SetErrorDomain("groups.qunzu");
  absl::Status s = MakeError(absl::StatusCode::kResourceExhausted, "GROUP_MEMBER_CAP_REACHED",
                             "group is full", {{"cap", "500"}});
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ErrorReason(s), "GROUP_MEMBER_CAP_REACHED");
  EXPECT_EQ(ErrorMetadata(s, "cap"), "500");
  EXPECT_EQ(ErrorMetadata(s, "absent"), "");
  SetErrorDomain("qunzu");
}

TEST(ErrorReason, FallsBackToCodeName) {
  EXPECT_EQ(ErrorReason(absl::NotFoundError("x")), "NOT_FOUND");
  EXPECT_EQ(ErrorReason(absl::FailedPreconditionError("x")), "FAILED_PRECONDITION");
  EXPECT_EQ(ErrorReason(absl::OkStatus()), "");
}

TEST(ToGrpcStatus, MapsEveryCanonicalCode) {
  for (int code = 1; code <= 16; ++code) {
    absl::Status s(static_cast<absl::StatusCode>(code), "m");
    grpc::Status g = ToGrpcStatus(s);
    EXPECT_EQ(static_cast<int>(g.error_code()), code);
    EXPECT_EQ(g.error_message(), "m");
  }
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
}

TEST(ToGrpcStatus, DetailsAreGoogleRpcStatusShapedWithErrorInfo) {
  grpc::Status g = ToGrpcStatus(InvalidField("nickname", "must be valid UTF-8"));
  EXPECT_EQ(g.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  common::v1::StatusDetails details;
  ASSERT_TRUE(details.ParseFromString(g.error_details()));
  EXPECT_EQ(details.code(), 3);
  EXPECT_EQ(details.message(), "nickname: must be valid UTF-8");
  ASSERT_EQ(details.details_size(), 1);
  EXPECT_EQ(details.details(0).type_url(), "type.googleapis.com/qunzu.common.v1.ErrorInfo");
  common::v1::ErrorInfo info;
  ASSERT_TRUE(details.details(0).UnpackTo(&info));
  EXPECT_EQ(info.reason(), "INVALID_FIELD");
  EXPECT_EQ(info.metadata().at("field"), "nickname");
}

TEST(ToGrpcStatus, StatusWithoutReasonGetsCodeName) {
  grpc::Status g = ToGrpcStatus(absl::UnavailableError("redis down"));
  absl::Status back = FromGrpcStatus(g);
  EXPECT_EQ(back.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorReason(back), "UNAVAILABLE");
}

TEST(ToGrpcStatus, NonCanonicalCodeBecomesUnknown) {
  grpc::Status g = ToGrpcStatus(absl::Status(static_cast<absl::StatusCode>(42), "odd"));
  EXPECT_EQ(g.error_code(), grpc::StatusCode::UNKNOWN);
}

TEST(FromGrpcStatus, RoundTripsReasonAndMetadata) {
  absl::Status original = MakeError(absl::StatusCode::kFailedPrecondition, "ACCOUNT_NOT_VERIFIED",
                                    "verify first", {{"account_id", "7"}});
  absl::Status back = FromGrpcStatus(ToGrpcStatus(original));
  EXPECT_EQ(back.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(back.message(), "verify first");
  EXPECT_EQ(ErrorReason(back), "ACCOUNT_NOT_VERIFIED");
  EXPECT_EQ(ErrorMetadata(back, "account_id"), "7");
}

TEST(FromGrpcStatus, ForeignStatusWithoutDetails) {
  absl::Status back = FromGrpcStatus(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "slow"));
  EXPECT_EQ(back.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(ErrorReason(back), "DEADLINE_EXCEEDED");
}

}  // namespace
}  // namespace qunzu
