#include "services/identity/projections.h"

#include "absl/strings/str_cat.h"
#include "common/projection_keys.h"
#include "common/status.h"
#include "qunzu/identity/v1/identity.pb.h"

namespace qunzu::identity {
namespace {

std::string VersionOf(const AccountProjection& account, int kind) {
  auto it = account.accepted.find(kind);
  return it == account.accepted.end() ? "" : absl::StrCat(it->second);
}

}  // namespace

absl::Status RedisProjectionWriter::WritePlatformAgreements(const PlatformAgreements& agreements) {
  RedisCommand command = {"HSET", projection::PlatformAgreementKey()};
  const std::pair<int, const char*> kinds[] = {
      {v1::AGREEMENT_KIND_SERVICE_AGREEMENT, "agreement"},
      {v1::AGREEMENT_KIND_PLATFORM_CONVENTION, "convention"}};
  for (const auto& [kind, name] : kinds) {
    auto current = agreements.current.find(kind);
    auto next = agreements.next.find(kind);
    const bool has_next = next != agreements.next.end();
    command.insert(
        command.end(),
        {absl::StrCat(name, "_version"),
         current == agreements.current.end() ? "" : absl::StrCat(current->second),
         absl::StrCat("next_", name, "_version"), has_next ? absl::StrCat(next->second.first) : "",
         absl::StrCat("next_", name, "_effective_at"),
         has_next ? absl::StrCat(absl::ToUnixSeconds(next->second.second)) : ""});
  }
  ASSIGN_OR_RETURN(RedisReply reply, redis_.Command(command));
  return reply.ErrorStatus();
}

absl::Status RedisProjectionWriter::Write(const std::vector<AccountProjection>& accounts) {
  if (accounts.empty()) return absl::OkStatus();
  std::vector<RedisCommand> commands;
  commands.reserve(accounts.size());
  for (const AccountProjection& a : accounts) {
    commands.push_back({"HSET", projection::AccountIdentityKey(a.account_id), "verified",
                        a.verified ? "1" : "0", "state", a.state, "agreement_version",
                        VersionOf(a, v1::AGREEMENT_KIND_SERVICE_AGREEMENT), "convention_version",
                        VersionOf(a, v1::AGREEMENT_KIND_PLATFORM_CONVENTION), "nickname",
                        a.nickname});
  }
  ASSIGN_OR_RETURN(std::vector<RedisReply> replies, redis_.Pipeline(commands));
  for (const RedisReply& reply : replies) RETURN_IF_ERROR(reply.ErrorStatus());
  return absl::OkStatus();
}

}  // namespace qunzu::identity
