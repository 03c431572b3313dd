// IdentityLogic against the real MariaDB: accounts, verification with its
// cap and rate limit, masked and revealed identities, ownership checks,
// the credit and audit outbox rows.
#include "services/identity/identity_logic.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>
#include <vector>

#include "common/status.h"
#include "qunzu/audit/v1/audit.pb.h"
#include "qunzu/credit/v1/credit.pb.h"
#include "services/identity/provider_verifier.h"
#include "services/identity/validators.h"
#include "tests/identity/identity_fixture.h"

namespace qunzu::identity {
namespace {

using common::v1::ROLE_COMPLIANCE;
using common::v1::ROLE_REGULATOR;

// A checksum-valid ID number with the given 17 leading digits.
std::string Id(const std::string& first17) { return first17 + ResidentIdCheckCharacter(first17); }

class IdentityLogicTest : public IdentityFixture {};

TEST_F(IdentityLogicTest, CreateAccountIsIdempotentAndPublicViewHidesIdentity) {
  v1::CreateAccountRequest req;
  req.set_request_id("create-1");
  req.set_nickname("小明");
  req.set_phone("13812341234");
  req.set_platform_user_id("u-1");
  auto first = logic_->CreateAccount(Platform("CreateAccount"), req);
  ASSERT_TRUE(first.ok()) << first.status();
  auto again = logic_->CreateAccount(Platform("CreateAccount"), req);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->account().account_id(), first->account().account_id());
  req.set_nickname("other");
  EXPECT_EQ(ErrorReason(logic_->CreateAccount(Platform("CreateAccount"), req).status()),
            "REQUEST_ID_REUSED");
  req.set_request_id("create-2");
  EXPECT_EQ(ErrorReason(logic_->CreateAccount(Platform("CreateAccount"), req).status()),
            "PLATFORM_USER_ID_TAKEN");

  v1::GetAccountRequest get;
  get.set_platform_user_id("u-1");
  auto account = logic_->GetAccount(As(ROLE_REGULATOR), get);
  ASSERT_TRUE(account.ok()) << account.status();
  EXPECT_EQ(account->account().nickname(), "小明");
  EXPECT_FALSE(account->account().verified());
  EXPECT_TRUE(account->account().agreements_current());
  get.set_account_id(first->account().account_id() + 999);
  EXPECT_EQ(ErrorReason(logic_->GetAccount(As(ROLE_REGULATOR), get).status()), "ACCOUNT_NOT_FOUND");
  EXPECT_EQ(CountRows("SELECT COUNT(*) FROM outbox WHERE topic = 'audit'"), 1);
}

TEST_F(IdentityLogicTest, BadInputNamesTheField) {
  v1::CreateAccountRequest req;
  auto status = logic_->CreateAccount(Platform(), req).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorMetadata(status, "field"), "request_id");
  req.set_request_id("r");
  EXPECT_EQ(ErrorMetadata(logic_->CreateAccount(Platform(), req).status(), "field"), "nickname");
  req.set_nickname(std::string(33, 'n'));
  EXPECT_EQ(ErrorMetadata(logic_->CreateAccount(Platform(), req).status(), "field"), "nickname");
  req.set_nickname("\xff");
  EXPECT_EQ(ErrorMetadata(logic_->CreateAccount(Platform(), req).status(), "field"), "nickname");
  req.set_nickname("ok");
  req.set_phone("12345");
  EXPECT_EQ(ErrorReason(logic_->CreateAccount(Platform(), req).status()), "PHONE_INVALID");

  const uint64_t account = NewAccount();
  EXPECT_EQ(ErrorReason(SubmitId(account, "110105194912310021").status()),
            "ID_NUMBER_CHECK_FAILED");
  EXPECT_EQ(ErrorReason(SubmitId(account, kIdNumber, "王").status()), "LEGAL_NAME_INVALID");
  EXPECT_EQ(ErrorReason(SubmitId(account, Id("11010520300101002")).status()),
            "ID_BIRTH_DATE_INVALID");
  v1::SubmitRealNameRequest empty;
  empty.set_request_id("x");
  empty.set_actor_account_id(account);
  EXPECT_EQ(ErrorMetadata(logic_->SubmitRealName(Platform(), empty).status(), "field"), "evidence");
  EXPECT_EQ(verifier_.calls, 0);
}

TEST_F(IdentityLogicTest, VerifiesMasksAndRevealsWithAudit) {
  const uint64_t account = NewAccount("13912345678");
  auto verified = SubmitId(account);
  ASSERT_TRUE(verified.ok()) << verified.status();
  EXPECT_EQ(verified->verification().state(), v1::VERIFICATION_STATE_VERIFIED);
  EXPECT_EQ(verified->verification().masked().legal_name(), "王**");
  EXPECT_EQ(verified->verification().masked().resident_id_number(), "110***********002X");
  EXPECT_EQ(verified->verification().verifier(), "scripted");
  EXPECT_EQ(wakes_, 1);
  EXPECT_EQ(ErrorReason(SubmitId(account).status()), "ALREADY_VERIFIED");

  // The credit event waits in the outbox, in the same transaction.
  auto lease = pool_->Acquire(absl::Seconds(5));
  credit::v1::RecordEventRequest event;
  ASSERT_TRUE(Query(**lease, "SELECT payload FROM outbox WHERE topic = 'credit'", {},
                    [&](const sql::ResultSet& row) {
                      EXPECT_TRUE(event.ParseFromString(row.getString(1)));
                      return absl::OkStatus();
                    })
                  .ok());
  EXPECT_EQ(event.account_id(), account);
  EXPECT_EQ(event.event_type(), credit::v1::CREDIT_EVENT_TYPE_IDENTITY_VERIFIED);
  EXPECT_EQ(event.request_id(), absl::StrCat("identity:verified:", account));

  v1::GetVerificationRequest get;
  get.set_account_id(account);
  get.set_actor_account_id(account);
  auto own = logic_->GetVerification(Platform(), get);
  ASSERT_TRUE(own.ok()) << own.status();
  EXPECT_EQ(own->verification().masked().resident_id_number(), "110***********002X");
  get.set_actor_account_id(account + 1);
  EXPECT_EQ(logic_->GetVerification(Platform(), get).status().code(),
            absl::StatusCode::kPermissionDenied);
  get.set_actor_account_id(0);
  EXPECT_EQ(logic_->GetVerification(Platform(), get).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(logic_->GetVerification(As(ROLE_COMPLIANCE), get).ok());

  v1::RevealIdentityRequest reveal;
  reveal.set_account_id(account);
  reveal.set_case_reference("report:77");
  EXPECT_EQ(ErrorMetadata(logic_->RevealIdentity(As(ROLE_REGULATOR), reveal).status(), "field"),
            "reason");
  reveal.set_reason("court order 2026-15");
  auto clear = logic_->RevealIdentity(As(ROLE_REGULATOR, "RevealIdentity"), reveal);
  ASSERT_TRUE(clear.ok()) << clear.status();
  EXPECT_EQ(clear->identity().legal_name(), kLegalName);
  EXPECT_EQ(clear->identity().resident_id_number(), kIdNumber);
  EXPECT_EQ(clear->identity().contact_phone(), "13912345678");

  audit::v1::AuditEvent last;
  ASSERT_TRUE(Query(**lease, "SELECT payload FROM outbox WHERE topic = 'audit' ORDER BY id", {},
                    [&](const sql::ResultSet& row) {
                      EXPECT_TRUE(last.ParseFromString(row.getString(1)));
                      return absl::OkStatus();
                    })
                  .ok());
  EXPECT_EQ(last.action(), "IDENTITY_REVEALED");
  EXPECT_EQ(last.principal(), "test-ROLE_REGULATOR");
  EXPECT_EQ(last.details().at("case_reference"), "report:77");
  EXPECT_EQ(last.details().at("reason"), "court order 2026-15");
  EXPECT_EQ(last.subjects(0).id(), account);

  const uint64_t unverified = NewAccount();
  reveal.set_account_id(unverified);
  EXPECT_EQ(ErrorReason(logic_->RevealIdentity(As(ROLE_COMPLIANCE), reveal).status()),
            "NOT_VERIFIED");
}

TEST_F(IdentityLogicTest, PhoneVerificationMasksThePhone) {
  const uint64_t account = NewAccount();
  v1::SubmitRealNameRequest req;
  req.set_request_id("phone-1");
  req.set_actor_account_id(account);
  req.mutable_real_name_phone()->set_phone("13812341234");
  auto r = logic_->SubmitRealName(Platform(), req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->verification().method(), v1::VERIFICATION_METHOD_REAL_NAME_PHONE);
  EXPECT_EQ(r->verification().masked().phone(), "138****1234");
}

TEST_F(IdentityLogicTest, MismatchIsRejectedAndVerifierFailureIsUnavailable) {
  const uint64_t account = NewAccount();
  verifier_.match = false;
  auto rejected = SubmitId(account);
  ASSERT_TRUE(rejected.ok()) << rejected.status();
  EXPECT_EQ(rejected->verification().state(), v1::VERIFICATION_STATE_REJECTED);
  EXPECT_EQ(rejected->verification().rejection_reason(), v1::REJECTION_REASON_NAME_ID_MISMATCH);
  EXPECT_FALSE(rejected->verification().has_masked());
  EXPECT_EQ(CountRows("SELECT COUNT(*) FROM accounts WHERE legal_name_enc IS NOT NULL"), 0);

  verifier_.match = true;
  verifier_.fail = MakeError(absl::StatusCode::kDeadlineExceeded, "X", "slow");
  auto down = SubmitId(account);
  EXPECT_EQ(down.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorReason(down.status()), "VERIFIER_UNAVAILABLE");
  EXPECT_EQ(CountRows("SELECT COUNT(*) FROM accounts WHERE verification_state = 3"), 0);
  EXPECT_EQ(CountRows("SELECT COUNT(*) FROM outbox WHERE topic = 'credit'"), 0);
  EXPECT_EQ(Metric("qunzu_identity_verifications_total",
                   {{"method", "resident_id"}, {"outcome", "rejected"}}),
            1);
  EXPECT_EQ(Metric("qunzu_identity_verifications_total",
                   {{"method", "resident_id"}, {"outcome", "verifier_unavailable"}}),
            1);
}

TEST_F(IdentityLogicTest, ProviderThatIsDownNeverVerifies) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  close(fd);  // nothing listens there now
  ProviderOptions options;
  options.deadline = absl::Milliseconds(300);
  options.backoff = absl::Milliseconds(1);
  ProviderVerifier down(grpc::CreateChannel("127.0.0.1:" + std::to_string(ntohs(addr.sin_port)),
                                            grpc::InsecureChannelCredentials()),
                        options);
  IdentityLogic logic(
      IdentityDeps{*pool_, nullptr, clock_, *crypto_, down, options_, nullptr, nullptr});
  const uint64_t account = NewAccount();
  v1::SubmitRealNameRequest req;
  req.set_request_id("down-1");
  req.set_actor_account_id(account);
  req.mutable_resident_identity()->set_legal_name(kLegalName);
  req.mutable_resident_identity()->set_resident_id_number(kIdNumber);
  absl::Status status = logic.SubmitRealName(Platform("SubmitRealName"), req).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorReason(status), "VERIFIER_UNAVAILABLE");
  EXPECT_EQ(CountRows("SELECT COUNT(*) FROM accounts WHERE verification_state = 3"), 0);
  EXPECT_EQ(CountRows("SELECT COUNT(*) FROM outbox WHERE topic = 'credit'"), 0);
  // The failed attempt left no idempotency record: the same request may be retried.
  EXPECT_EQ(CountRows("SELECT COUNT(*) FROM idempotency_keys"), 1);
}

TEST_F(IdentityLogicTest, AttemptsAreRateLimitedWithRetryTime) {
  options_.attempts_per_window = 2;
  options_.attempt_window = absl::Minutes(10);
  Rebuild();
  verifier_.match = false;
  const uint64_t account = NewAccount();
  ASSERT_TRUE(SubmitId(account).ok());
  clock_.Advance(absl::Minutes(1));
  ASSERT_TRUE(SubmitId(account).ok());
  auto limited = SubmitId(account);
  EXPECT_EQ(limited.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ErrorReason(limited.status()), "VERIFICATION_RATE_LIMITED");
  EXPECT_EQ(ErrorMetadata(limited.status(), "retry_after_seconds"), "540");
  clock_.Advance(absl::Minutes(9));
  verifier_.match = true;
  auto later = SubmitId(account);
  ASSERT_TRUE(later.ok()) << later.status();
  EXPECT_EQ(later->verification().state(), v1::VERIFICATION_STATE_VERIFIED);
}

TEST_F(IdentityLogicTest, OneIdNumberVerifiesAtMostNAccountsUnderConcurrency) {
  options_.max_accounts_per_id_number = 3;
  Rebuild();
  constexpr int kAccounts = 10;
  std::vector<uint64_t> accounts;
  accounts.reserve(kAccounts);
  for (int i = 0; i < kAccounts; ++i) accounts.push_back(NewAccount());
  std::vector<absl::StatusCode> codes(kAccounts);
  std::vector<std::thread> threads;
  threads.reserve(kAccounts);
  for (int i = 0; i < kAccounts; ++i) {
    threads.emplace_back([&, i] { codes[i] = SubmitId(accounts[i]).status().code(); });
  }
  for (std::thread& t : threads) t.join();
  int ok = 0;
  int exhausted = 0;
  for (absl::StatusCode code : codes) {
    ok += code == absl::StatusCode::kOk;
    exhausted += code == absl::StatusCode::kResourceExhausted;
  }
  EXPECT_EQ(ok, 3);
  EXPECT_EQ(exhausted, kAccounts - 3);
  EXPECT_EQ(CountRows("SELECT COUNT(*) FROM accounts WHERE verification_state = 3"), 3);
  EXPECT_EQ(ErrorReason(SubmitId(NewAccount()).status()), "ID_NUMBER_ACCOUNT_LIMIT_REACHED");
  // Another number is unaffected.
  EXPECT_TRUE(SubmitId(NewAccount(), Id("31010419800101123")).ok());
}

TEST_F(IdentityLogicTest, RotationReencryptsAndMovedCiphertextIsRejected) {
  const uint64_t a = NewAccount("13812341234");
  const uint64_t b = NewAccount();
  ASSERT_TRUE(SubmitId(a).ok());
  ASSERT_TRUE(SubmitId(b, Id("31010419800101123"), "Anne Smith").ok());
  EXPECT_EQ(CountRows("SELECT COUNT(*) FROM accounts WHERE resident_id_enc LIKE 'v1:%'"), 2);

  UseKeys(kKeysV2);
  const uint64_t c = NewAccount("13812341235");
  EXPECT_EQ(CountRows(absl::StrCat("SELECT COUNT(*) FROM accounts WHERE account_id = ", c,
                                   " AND contact_phone_enc LIKE 'v2:%'")),
            1);
  v1::GetVerificationRequest get;
  get.set_account_id(a);
  auto old_readable = logic_->GetVerification(As(ROLE_COMPLIANCE), get);
  ASSERT_TRUE(old_readable.ok()) << old_readable.status();
  EXPECT_EQ(old_readable->verification().masked().legal_name(), "王**");

  auto moved = logic_->ReencryptAll();
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(*moved, 2);
  EXPECT_EQ(CountRows("SELECT COUNT(*) FROM accounts WHERE contact_phone_enc LIKE 'v1:%' OR "
                      "legal_name_enc LIKE 'v1:%' OR resident_id_enc LIKE 'v1:%'"),
            0);
  EXPECT_EQ(*logic_->ReencryptAll(), 0);
  // Only the new key is needed now.
  UseKeys("hmac " + std::string(64, 'a') + "\nkey 2 " + std::string(64, '2') + "\n");
  v1::RevealIdentityRequest reveal;
  reveal.set_account_id(a);
  reveal.set_case_reference("c");
  reveal.set_reason("r");
  auto clear = logic_->RevealIdentity(As(ROLE_COMPLIANCE), reveal);
  ASSERT_TRUE(clear.ok()) << clear.status();
  EXPECT_EQ(clear->identity().resident_id_number(), kIdNumber);
  EXPECT_EQ(clear->identity().contact_phone(), "13812341234");

  // Copying a's ciphertext into b's row does not make b's identity a's.
  auto lease = pool_->Acquire(absl::Seconds(5));
  ASSERT_TRUE(Execute(**lease,
                      "UPDATE accounts t JOIN accounts s ON s.account_id = ? "
                      "SET t.legal_name_enc = s.legal_name_enc WHERE t.account_id = ?",
                      {a, b})
                  .ok());
  reveal.set_account_id(b);
  EXPECT_EQ(logic_->RevealIdentity(As(ROLE_COMPLIANCE), reveal).status().code(),
            absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace qunzu::identity
