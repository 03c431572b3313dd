#include "services/groups/groups_deps.h"

#include <grpcpp/client_context.h>

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/agreement_versions.h"
#include "common/projection_keys.h"
#include "common/status.h"
#include "services/groups/groups_store.h"

namespace qunzu::groups {
namespace {

absl::Status ProjectionUnavailable(const std::string& what) {
  return MakeError(absl::StatusCode::kUnavailable, "PROJECTION_UNAVAILABLE",
                   "cannot read " + what + "; refusing rather than allowing");
}

uint32_t Uint(const std::string& s) {
  uint32_t v = 0;
  return absl::SimpleAtoi(s, &v) ? v : 0;
}

int64_t UnixSeconds(const google::protobuf::Timestamp& t) { return t.seconds(); }

// A moderation expiry ("0": none) still in force at `now`: the key's TTL
// lifts it, but a read just before the TTL fires must not trust it.
bool InForce(const std::string& value, absl::Time now) {
  int64_t until = 0;
  if (!absl::SimpleAtoi(value, &until)) return false;
  return until == 0 || absl::FromUnixSeconds(until) > now;
}

}  // namespace

absl::StatusOr<AccountView> RedisAccountReader::Read(uint64_t account_id) {
  absl::StatusOr<std::vector<RedisReply>> replies =
      redis_.Pipeline({{"HGETALL", projection::AccountIdentityKey(account_id)},
                       {"HGETALL", projection::AccountCreditKey(account_id)},
                       {"GET", projection::AccountBlacklistKey(account_id)},
                       {"HGETALL", projection::AccountRestrictionsKey(account_id)},
                       {"HMGET", agreement_key_, "agreement_version", "next_agreement_version",
                        "next_agreement_effective_at", "convention_version",
                        "next_convention_version", "next_convention_effective_at"}});
  if (!replies.ok() || replies->size() != 5)
    return ProjectionUnavailable("the account projections");
  for (const RedisReply& reply : *replies) {
    if (reply.is_error()) return ProjectionUnavailable("the account projections");
  }
  auto fields = [](const RedisReply& reply) {
    std::map<std::string, std::string> out;
    const auto& e = reply.elements();
    for (size_t i = 0; i + 1 < e.size(); i += 2) out[e[i].str()] = e[i + 1].str();
    return out;
  };
  std::map<std::string, std::string> identity = fields((*replies)[0]);
  std::map<std::string, std::string> credit = fields((*replies)[1]);
  std::map<std::string, std::string> restrictions = fields((*replies)[3]);
  if (identity.empty()) {
    return MakeError(absl::StatusCode::kNotFound, "ACCOUNT_NOT_FOUND", "no such account",
                     {{"account_id", absl::StrCat(account_id)}});
  }
  AccountView view;
  view.verified = identity["verified"] == "1";
  view.state = identity["state"];
  view.nickname = identity["nickname"];
  if (view.verified && credit.empty()) return ProjectionUnavailable("the account's credit");
  view.level = Uint(credit["level"]);
  view.groups_may_create = Uint(credit["groups_may_create"]);
  view.groups_may_join = Uint(credit["groups_may_join"]);
  view.max_create_tier = static_cast<int>(Uint(credit["max_create_tier"]));
  view.may_be_admin = credit["may_be_admin"] == "1";
  const absl::Time now = clock_.Now();
  view.blacklisted = !(*replies)[2].is_nil() && InForce((*replies)[2].str(), now);
  auto restricted = [&](const char* field) {
    auto it = restrictions.find(field);
    return it != restrictions.end() && it->second != "0" && InForce(it->second, now);
  };
  view.admin_suspended = restricted("admin_suspended_until");
  view.creation_revoked = restricted("creation_revoked_until");
  // Identity publishes the versions in force at start; without them the
  // check cannot be made, so it fails closed.
  const auto& published = (*replies)[4].elements();
  if (published.size() != 6 || published[0].is_nil()) {
    return ProjectionUnavailable("the agreement versions in force");
  }
  auto text = [&](size_t i) { return published[i].is_nil() ? std::string() : published[i].str(); };
  view.agreements_accepted =
      AgreementAccepted(identity["agreement_version"], {text(0), text(1), text(2)}, now) &&
      AgreementAccepted(identity["convention_version"], {text(3), text(4), text(5)}, now);
  return view;
}

absl::StatusOr<bool> RedisAccountReader::GroupBlacklisted(uint64_t group_id) {
  absl::StatusOr<RedisReply> reply =
      redis_.Command({"GET", projection::GroupBlacklistKey(group_id)});
  if (!reply.ok() || reply->is_error()) return ProjectionUnavailable("the group blacklist");
  return !reply->is_nil() && InForce(reply->str(), clock_.Now());
}

GrpcTextScreener::GrpcTextScreener(std::shared_ptr<grpc::Channel> channel, std::string token,
                                   absl::Duration deadline)
    : stub_(moderation::v1::ModerationService::NewStub(std::move(channel))),
      token_(std::move(token)),
      deadline_(deadline) {}

absl::StatusOr<ScreenResult> GrpcTextScreener::Screen(moderation::v1::TextPurpose purpose,
                                                      const std::string& text, uint64_t actor,
                                                      uint64_t group_id) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + deadline_));
  context.AddMetadata("authorization", "Bearer " + token_);
  moderation::v1::ScreenTextRequest request;
  request.set_purpose(purpose);
  request.set_text(text);
  request.set_actor_account_id(actor);
  request.set_group_id(group_id);
  moderation::v1::ScreenTextResponse response;
  grpc::Status status = stub_->ScreenText(&context, request, &response);
  if (!status.ok()) {
    return MakeError(absl::StatusCode::kUnavailable, "MODERATION_UNAVAILABLE",
                     "the text screen could not answer: " + status.error_message());
  }
  ScreenResult result;
  result.verdict = response.verdict();
  if (result.verdict == moderation::v1::SCREEN_VERDICT_UNSPECIFIED) {
    return MakeError(absl::StatusCode::kUnavailable, "MODERATION_UNAVAILABLE",
                     "the text screen gave no verdict");
  }
  for (const auto& reason : response.reasons()) {
    if (reason.rule_id() != 0) {
      result.rule_id = reason.rule_id();
      break;
    }
  }
  return result;
}

absl::Status GroupProjection::PublishGroup(const v1::Group& group) {
  if (redis_ == nullptr) return absl::OkStatus();
  // Writes after commit may arrive out of order: keep the newest version
  // (updated_at in microseconds, strictly increasing per group).
  static const auto* script = new RedisScript(R"lua(
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if current > tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'version', ARGV[1], unpack(ARGV, 2))
return 1
)lua");
  const int64_t version = absl::ToUnixMicros(FromProtoTime(group.updated_at()));
  return redis_
      ->Eval(*script, {projection::GroupKey(group.group_id())},
             {absl::StrCat(version), "state", v1::GroupState_Name(group.state()), "category",
              common::v1::GroupCategory_Name(group.category()), "tier",
              common::v1::ScaleTier_Name(group.scale_tier()), "member_count",
              absl::StrCat(group.member_count()), "posting_suspended_until",
              absl::StrCat(group.state() == v1::GROUP_STATE_POSTING_SUSPENDED
                               ? UnixSeconds(group.posting_suspended_until())
                               : 0)})
      .status();
}

absl::Status GroupProjection::PublishMember(const v1::Member& member) {
  if (redis_ == nullptr) return absl::OkStatus();
  std::vector<RedisCommand> commands = {{"HSET", projection::GroupMembersKey(member.group_id()),
                                         absl::StrCat(member.account_id()),
                                         v1::MemberRole_Name(member.role())}};
  if (member.has_muted_until()) {
    commands.push_back({"HSET", projection::GroupMutesKey(member.group_id()),
                        absl::StrCat(member.account_id()),
                        absl::StrCat(UnixSeconds(member.muted_until()))});
  } else {
    commands.push_back(
        {"HDEL", projection::GroupMutesKey(member.group_id()), absl::StrCat(member.account_id())});
  }
  return redis_->Pipeline(commands).status();
}

absl::Status GroupProjection::RemoveMember(uint64_t group_id, uint64_t account_id) {
  if (redis_ == nullptr) return absl::OkStatus();
  return redis_
      ->Pipeline({{"HDEL", projection::GroupMembersKey(group_id), absl::StrCat(account_id)},
                  {"HDEL", projection::GroupMutesKey(group_id), absl::StrCat(account_id)}})
      .status();
}

absl::Status GroupProjection::ReplaceMembers(uint64_t group_id,
                                             const std::vector<v1::Member>& members) {
  if (redis_ == nullptr) return absl::OkStatus();
  std::vector<RedisCommand> commands = {{"DEL", projection::GroupMembersKey(group_id)},
                                        {"DEL", projection::GroupMutesKey(group_id)}};
  RedisCommand roles = {"HSET", projection::GroupMembersKey(group_id)};
  RedisCommand mutes = {"HSET", projection::GroupMutesKey(group_id)};
  for (const v1::Member& m : members) {
    roles.push_back(absl::StrCat(m.account_id()));
    roles.push_back(v1::MemberRole_Name(m.role()));
    if (m.has_muted_until()) {
      mutes.push_back(absl::StrCat(m.account_id()));
      mutes.push_back(absl::StrCat(UnixSeconds(m.muted_until())));
    }
  }
  if (roles.size() > 2) commands.push_back(std::move(roles));
  if (mutes.size() > 2) commands.push_back(std::move(mutes));
  return redis_->Pipeline(commands).status();
}

absl::StatusOr<uint64_t> GroupProjection::ActivityCount(uint64_t group_id, absl::Time now,
                                                        absl::Duration window) {
  if (redis_ == nullptr) return 0;
  ASSIGN_OR_RETURN(RedisReply reply,
                   redis_->Command({"HGETALL", projection::GroupActivityKey(group_id)}));
  // Buckets are hours since the epoch -> messages in that hour.
  const int64_t now_hour = absl::ToUnixSeconds(now) / 3600;
  const int64_t hours = absl::ToInt64Hours(window);
  uint64_t total = 0;
  const auto& e = reply.elements();
  for (size_t i = 0; i + 1 < e.size(); i += 2) {
    int64_t hour = 0;
    uint64_t count = 0;
    if (!absl::SimpleAtoi(e[i].str(), &hour) || !absl::SimpleAtoi(e[i + 1].str(), &count)) {
      continue;
    }
    if (hour > now_hour - hours && hour <= now_hour) total += count;
  }
  return total;
}

}  // namespace qunzu::groups
