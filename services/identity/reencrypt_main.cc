// qunzu-identity-reencrypt: after a new key version is added to the key file
// (and the service restarted with it), moves every personal field still
// under an older key to the newest one, so the old key can be retired
// (R6.3). Safe to run while identity serves; prints how many accounts it
// rewrote.
#include <cstdio>

#include "common/clock.h"
#include "common/config.h"
#include "common/log.h"
#include "common/mysql.h"
#include "common/mysql_pool.h"
#include "common/status.h"
#include "services/identity/identity_logic.h"
#include "services/identity/pii_crypto.h"
#include "services/identity/verifier.h"

namespace {

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "qunzu-identity-reencrypt: %s\n", std::string(status.message()).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace qunzu;            // NOLINT(google-build-using-namespace)
  using namespace qunzu::identity;  // NOLINT(google-build-using-namespace)
  FlagSet flags("qunzu-identity-reencrypt",
                "Re-encrypts identity's personal fields under the newest key.");
  std::string dsn;
  std::string schema;
  std::string keys_file;
  flags.AddString({"mysql-dsn", "QUNZU_MYSQL_DSN", "MariaDB/MySQL as mysql://user:pw@host:port."},
                  &dsn, "mysql://qunzu:qunzu@127.0.0.1:33061");
  flags.AddString({"mysql-schema", "QUNZU_MYSQL_SCHEMA", "identity's schema."}, &schema,
                  "qunzu_identity");
  flags.AddString({"pii-keys-file", "QUNZU_IDENTITY_KEYS_FILE", "identity's key file; required."},
                  &keys_file, "");
  ParseFlagsOrExit(flags, argc, argv);
  InitLogging({"identity-reencrypt", LogLevel::kInfo, nullptr, nullptr});
  if (keys_file.empty()) return Fail(InvalidField("--pii-keys-file", "is required"));
  absl::StatusOr<PiiCrypto> crypto = PiiCrypto::LoadFile(keys_file);
  if (!crypto.ok()) return Fail(crypto.status());
  absl::StatusOr<MysqlOptions> options = ParseMysqlDsn(dsn);
  if (!options.ok()) return Fail(options.status());
  absl::StatusOr<std::unique_ptr<MysqlPool>> pool = MysqlPool::Create(*options, schema, 2);
  if (!pool.ok()) return Fail(pool.status());
  OfflineVerifier unused_verifier;
  IdentityLogic logic(IdentityDeps{**pool, nullptr, SystemClock::Get(), *crypto, unused_verifier,
                                   IdentityOptions{}, nullptr, nullptr});
  absl::StatusOr<int64_t> rewritten = logic.ReencryptAll();
  if (!rewritten.ok()) return Fail(rewritten.status());
  LogInfo("reencrypted", {{"accounts", *rewritten}, {"key_version", crypto->newest_version()}});
  std::printf("%lld\n", static_cast<long long>(*rewritten));
  return 0;
}
