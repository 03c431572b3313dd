// Helpers for the audit tests: a fresh Ed25519 key, a log on its own schema
// of the test MariaDB, and events.
#ifndef QUNZU_TESTS_AUDIT_AUDIT_TEST_UTIL_H_
#define QUNZU_TESTS_AUDIT_AUDIT_TEST_UTIL_H_

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "qunzu/audit/v1/audit.pb.h"

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

}  // namespace qunzu::audit::testing

#endif  // QUNZU_TESTS_AUDIT_AUDIT_TEST_UTIL_H_
