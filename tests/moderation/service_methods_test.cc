// The moderation service serves every method through gRPC's callback API:
// on gRPC 1.51 a sync method beside a callback method on one server was
// held ~100 ms about every 1.1 s for clients in other processes
// (common/blocking_calls.h, docs/benchmarks.md). A method added as a sync
// method fails this.
#include <gtest/gtest.h>

#include "services/moderation/moderation_service.h"
#include "tests/moderation/case_fixture.h"

namespace qunzu::moderation {
namespace {

class ServiceMethodsTest : public CaseTest {};

TEST_F(ServiceMethodsTest, EveryMethodIsACallbackMethod) {
  ServiceDeps deps{*pool_, redis_.get(), registry_, nullptr, ""};
  absl::StatusOr<std::unique_ptr<grpc::Service>> service =
      MakeModerationService(deps, ModerationFlags());
  ASSERT_TRUE(service.ok()) << service.status();
  EXPECT_TRUE((*service)->has_callback_methods());
  EXPECT_FALSE((*service)->has_synchronous_methods());
  EXPECT_FALSE((*service)->has_async_methods());
}

}  // namespace
}  // namespace qunzu::moderation
