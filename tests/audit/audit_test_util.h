// Helpers for the audit tests: a fresh Ed25519 key, a log on its own schema
// of the test MariaDB, and events.
#ifndef QUNZU_TESTS_AUDIT_AUDIT_TEST_UTIL_H_
#define QUNZU_TESTS_AUDIT_AUDIT_TEST_UTIL_H_

#include <cppconn/connection.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/mysql.h"
#include "common/status.h"
#include "qunzu/audit/v1/audit.pb.h"
#include "services/audit/bundle_store.h"
#include "services/audit/entry_codec.h"

namespace qunzu::audit::testing {

// A new Ed25519 private key as PKCS#8 PEM.
inline std::string NewKeyPem() {
  EVP_PKEY* pkey = nullptr;
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr);
  EVP_PKEY_keygen_init(ctx);
  EVP_PKEY_keygen(ctx, &pkey);
  EVP_PKEY_CTX_free(ctx);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, pkey, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(size));
  BIO_free(bio);
  EVP_PKEY_free(pkey);
  return pem;
}

// The PEM (SubjectPublicKeyInfo) of a raw Ed25519 public key.
inline std::string PublicKeyPem(const std::string& raw) {
  EVP_PKEY* pkey = EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, pkey);
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(size));
  BIO_free(bio);
  EVP_PKEY_free(pkey);
  return pem;
}

inline v1::AuditEvent Event(const std::string& service, uint64_t source_id,
                            const std::string& action = "GROUP_MEMBER_JOINED") {
  v1::AuditEvent e;
  e.set_service(service);
  e.set_source_id(source_id);
  e.set_action(action);
  e.set_method("/qunzu.groups.v1.GroupService/JoinGroup");
  e.set_principal("chat-backend");
  e.set_role(common::v1::ROLE_PLATFORM);
  e.set_actor_account_id(1000 + source_id % 7);
  v1::Subject* s = e.add_subjects();
  s->set_kind(v1::SUBJECT_KIND_GROUP);
  s->set_id(source_id % 3 + 1);
  e.set_client_ip("203.0.113.7");
  e.set_request_id(absl::StrCat("req-", source_id));
  e.mutable_time()->set_seconds(1790000000 + static_cast<int64_t>(source_id));
  (*e.mutable_details())["note"] = absl::StrCat("entry ", source_id);
  return e;
}

// Every stored entry, decoded from the bundles, with its leaf index, in
// leaf order (what the log holds, not what its indexes say).
inline absl::StatusOr<std::vector<std::pair<uint64_t, v1::AuditEvent>>> StoredEvents(
    sql::Connection& conn) {
  std::vector<std::pair<uint64_t, v1::AuditEvent>> out;
  absl::Status decode_status;
  absl::Status s = ForEachStoredLeaf(
      conn, 0, 0, [&](uint64_t index, const std::string& bytes, const std::optional<Hash>&) {
        absl::StatusOr<DecodedEntry> d = DecodeEntry(bytes);
        if (!d.ok()) {
          decode_status = d.status();
          return false;
        }
        out.emplace_back(index, std::move(d->event));
        return true;
      });
  if (!s.ok()) return s;
  if (!decode_status.ok()) return decode_status;
  return out;
}

// Tampering for the tests: rewrites the bundle holding leaf after edit
// changed its entries and leaf hashes (one string each, in leaf order);
// the entry count follows the entries.
inline absl::Status EditBundle(sql::Connection& conn, uint64_t leaf,
                               const std::function<void(std::vector<std::string>& entries,
                                                        std::vector<std::string>& hashes)>& edit) {
  absl::StatusOr<uint64_t> first = BundleStartFor(conn, leaf);
  if (!first.ok()) return first.status();
  std::vector<std::string> entries, hashes;
  absl::StatusOr<size_t> rows =
      ReadBundles(conn, "first_leaf = ?", {*first}, 1, [&](const BundleRow& b) {
        const std::optional<std::vector<absl::string_view>> split = SplitBundle(b.entries, b.count);
        if (!split.has_value()) return false;
        for (size_t i = 0; i < split->size(); ++i) entries.emplace_back((*split)[i]);
        for (size_t at = 0; at < b.leaf_hashes.size(); at += kHashSize) {
          hashes.push_back(b.leaf_hashes.substr(at, kHashSize));
        }
        return true;
      });
  if (!rows.ok()) return rows.status();
  if (*rows != 1) return absl::NotFoundError(absl::StrCat("no bundle holds leaf ", leaf));
  edit(entries, hashes);
  std::string blob, hash_blob;
  for (const std::string& e : entries) AppendToBundle(blob, e);
  for (const std::string& h : hashes) hash_blob += h;
  return Execute(conn,
                 "UPDATE audit_bundles SET entry_count = ?, entries = ?, leaf_hashes = ? "
                 "WHERE first_leaf = ?",
                 {entries.size(), blob, hash_blob, *first})
      .status();
}

}  // namespace qunzu::audit::testing

#endif  // QUNZU_TESTS_AUDIT_AUDIT_TEST_UTIL_H_
