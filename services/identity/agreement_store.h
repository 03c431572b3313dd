// identity's MySQL tables for the versioned service agreement and platform
// convention and each account's acceptances (R5.4). Statements run on a
// connection inside the caller's transaction.
#ifndef QUNZU_SERVICES_IDENTITY_AGREEMENT_STORE_H_
#define QUNZU_SERVICES_IDENTITY_AGREEMENT_STORE_H_

#include <cppconn/connection.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "qunzu/identity/v1/identity.pb.h"

namespace qunzu::identity {

// Locks the kind's version counter and returns the next version (1, 2...).
absl::StatusOr<uint32_t> NextAgreementVersion(sql::Connection& conn, int kind);
absl::Status InsertAgreement(sql::Connection& conn, const v1::Agreement& agreement,
                             absl::Time published_at, absl::Time effective_at);
// One version (body included), or nullopt.
absl::StatusOr<std::optional<v1::Agreement>> LoadAgreement(sql::Connection& conn, int kind,
                                                           uint32_t version);
// Per kind, the newest version effective at `now`.
absl::StatusOr<std::vector<v1::Agreement>> CurrentAgreements(sql::Connection& conn, absl::Time now,
                                                             bool include_body);

// Per kind, the newest version published to take effect after `now`
// (none for a kind whose newest version is already effective).
absl::StatusOr<std::vector<v1::Agreement>> PendingAgreements(sql::Connection& conn, absl::Time now);

// Records an acceptance unless the account already accepted that version;
// returns the stored (first) acceptance.
absl::StatusOr<v1::Acceptance> AcceptOnce(sql::Connection& conn, const v1::Acceptance& acceptance,
                                          absl::Time accepted_at);
// The account's acceptances, newest first.
absl::StatusOr<std::vector<v1::Acceptance>> ListAcceptances(sql::Connection& conn,
                                                            uint64_t account_id);
// Per kind, the highest version the account accepted.
absl::StatusOr<std::map<int, uint32_t>> AcceptedVersions(sql::Connection& conn,
                                                         uint64_t account_id);

// Whether `accepted` covers every agreement in `current`.
bool AcceptedAllCurrent(const std::vector<v1::Agreement>& current,
                        const std::map<int, uint32_t>& accepted);

}  // namespace qunzu::identity

#endif  // QUNZU_SERVICES_IDENTITY_AGREEMENT_STORE_H_
