// Moderation's case tables (issue 8): reports and their submissions, held
// messages, dispositions, the blacklist and filings. Versions 50..99 of the
// "moderation" component; the screen's own tables use 1..49.
#include <string>
#include <vector>

#include "services/moderation/cases.h"

namespace qunzu::moderation {

const std::vector<Migration>& CaseMigrations() {
  static const auto* migrations = new std::vector<Migration>{
      {50,
       "reports, submissions and held messages",
       {"CREATE TABLE IF NOT EXISTS reports ("
        " report_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,"
        " source TINYINT NOT NULL, target_kind TINYINT NOT NULL,"
        " target_group_id BIGINT UNSIGNED NOT NULL, target_account_id BIGINT UNSIGNED NOT NULL,"
        " target_message_id VARCHAR(128) NOT NULL,"
        // The target while the report is open (NULL after): one open case
        // per target, so submissions fold.
        " open_key VARCHAR(200) NULL,"
        " category INT NOT NULL, state TINYINT NOT NULL,"
        " escalated BOOL NOT NULL DEFAULT FALSE, escalated_at DATETIME(6) NULL,"
        " distinct_reporters INT UNSIGNED NOT NULL, submissions INT UNSIGNED NOT NULL,"
        " created_at DATETIME(6) NOT NULL, deadline DATETIME(6) NOT NULL,"
        " assignee VARCHAR(255) NOT NULL DEFAULT '', claimed_at DATETIME(6) NULL,"
        " outcome INT NOT NULL DEFAULT 0, statement TEXT NOT NULL,"
        " resolved_by VARCHAR(255) NOT NULL DEFAULT '', resolved_at DATETIME(6) NULL,"
        " duplicate_of BIGINT UNSIGNED NOT NULL DEFAULT 0,"
        " disposition_ids VARCHAR(2000) NOT NULL DEFAULT '',"
        // SCREENING: the held message (EvidenceItem) and why (ScreenReason list
        // in a HeldMessage), serialized.
        " held_pb MEDIUMBLOB NULL,"
        " UNIQUE KEY uk_open (open_key), KEY k_queue (state, deadline),"
        " KEY k_created (created_at), KEY k_resolved (resolved_at)) ENGINE=InnoDB",
        "CREATE TABLE IF NOT EXISTS report_submissions ("
        " submission_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,"
        " report_id BIGINT UNSIGNED NOT NULL, reporter_account_id BIGINT UNSIGNED NOT NULL,"
        " client_ip VARCHAR(64) NOT NULL, category INT NOT NULL,"
        // The ReportSubmission as submitted (description, evidence).
        " submission_pb MEDIUMBLOB NOT NULL, submitted_at DATETIME(6) NOT NULL,"
        " KEY k_report (report_id), KEY k_reporter (reporter_account_id, submitted_at),"
        " KEY k_ip (client_ip, submitted_at)) ENGINE=InnoDB",
        "CREATE TABLE IF NOT EXISTS held_messages ("
        " report_id BIGINT UNSIGNED NOT NULL PRIMARY KEY,"
        " request_id VARCHAR(128) NOT NULL, message_id VARCHAR(128) NOT NULL,"
        " group_id BIGINT UNSIGNED NOT NULL, sender_account_id BIGINT UNSIGNED NOT NULL,"
        " state TINYINT NOT NULL, reasons_pb MEDIUMBLOB NOT NULL,"
        " held_at DATETIME(6) NOT NULL, deadline DATETIME(6) NOT NULL,"
        " decided_at DATETIME(6) NULL, UNIQUE KEY uk_request (request_id),"
        " KEY k_group (group_id), KEY k_decided (state, decided_at)) ENGINE=InnoDB"}},
      {51,
       "dispositions, blacklist and filings",
       {"CREATE TABLE IF NOT EXISTS dispositions ("
        " disposition_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,"
        // principal + request_id: a retry finds its pending row.
        " request_key VARCHAR(400) NOT NULL, fingerprint VARBINARY(64) NOT NULL,"
        // 0 PENDING (called out, not applied yet: invisible), 1 APPLIED
        // (2 ABANDONED from version 53).
        " applied TINYINT NOT NULL,"
        " kind INT NOT NULL, group_id BIGINT UNSIGNED NOT NULL,"
        " account_id BIGINT UNSIGNED NOT NULL, until_at DATETIME(6) NULL,"
        " levels INT UNSIGNED NOT NULL, basis_report_ids VARCHAR(2000) NOT NULL,"
        " basis_rule_ids VARCHAR(2000) NOT NULL, statement TEXT NOT NULL,"
        " decided_by VARCHAR(255) NOT NULL, decided_at DATETIME(6) NOT NULL,"
        " state TINYINT NOT NULL, credit_penalty_id BIGINT UNSIGNED NOT NULL DEFAULT 0,"
        " filing_id BIGINT UNSIGNED NOT NULL DEFAULT 0,"
        " revoked_by VARCHAR(255) NOT NULL DEFAULT '', revoked_at DATETIME(6) NULL,"
        " revocation_reason TEXT NOT NULL, revocation_filing_id BIGINT UNSIGNED NOT NULL"
        " DEFAULT 0,"
        " UNIQUE KEY uk_request (request_key), KEY k_group (group_id),"
        " KEY k_account (account_id)) ENGINE=InnoDB",
        "CREATE TABLE IF NOT EXISTS blacklist_entries ("
        " blacklist_entry_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,"
        " subject_kind TINYINT NOT NULL, subject_id BIGINT UNSIGNED NOT NULL,"
        // "a:<id>" / "g:<id>" while active: one active entry per subject.
        " active_key VARCHAR(40) NULL,"
        " reason TEXT NOT NULL, basis_report_ids VARCHAR(2000) NOT NULL,"
        " basis_rule_ids VARCHAR(2000) NOT NULL, added_by VARCHAR(255) NOT NULL,"
        " added_at DATETIME(6) NOT NULL, expires_at DATETIME(6) NULL, state TINYINT NOT NULL,"
        " removed_by VARCHAR(255) NOT NULL DEFAULT '', removed_at DATETIME(6) NULL,"
        " removal_reason TEXT NOT NULL, filing_id BIGINT UNSIGNED NOT NULL DEFAULT 0,"
        " removal_filing_id BIGINT UNSIGNED NOT NULL DEFAULT 0,"
        " UNIQUE KEY uk_active (active_key), KEY k_subject (subject_kind, subject_id))"
        " ENGINE=InnoDB",
        "CREATE TABLE IF NOT EXISTS filings ("
        " filing_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,"
        " kind INT NOT NULL, subject_kind TINYINT NOT NULL, subject_id BIGINT UNSIGNED NOT NULL,"
        " disposition_id BIGINT UNSIGNED NOT NULL, blacklist_entry_id BIGINT UNSIGNED NOT NULL,"
        // The Filing as filed (record included, delivery fields empty).
        " filing_pb MEDIUMBLOB NOT NULL, created_at DATETIME(6) NOT NULL,"
        " delivery_state TINYINT NOT NULL, attempts INT UNSIGNED NOT NULL DEFAULT 0,"
        " last_attempt_at DATETIME(6) NULL, last_error VARCHAR(1000) NOT NULL DEFAULT '',"
        " delivered_at DATETIME(6) NULL, receipt_id VARCHAR(255) NOT NULL DEFAULT '',"
        " KEY k_subject (subject_kind, subject_id), KEY k_disposition (disposition_id),"
        " KEY k_state (delivery_state)) ENGINE=InnoDB"}},
      {52,
       "credit events of dispositions",
       // The credit event a disposition caused (its owner's or account's),
       // reversed when it is revoked; "" when none.
       {"ALTER TABLE dispositions ADD COLUMN IF NOT EXISTS credit_event_id VARCHAR(160) NOT NULL "
        "DEFAULT ''"}},
      {53,
       "abandoned disposition reservations",
       // applied 2 ABANDONED: a reservation the recovery found refused for
       // good at the enforcing service, with why; never retried. The index
       // is the recovery's scan of old PENDING reservations.
       {"ALTER TABLE dispositions ADD COLUMN IF NOT EXISTS abandon_reason TEXT NULL",
        "ALTER TABLE dispositions ADD INDEX IF NOT EXISTS k_pending (applied, decided_at)"}},
      {54,
       "pending revocations",
       // A revocation reserved before it is lifted at the enforcing service
       // (principal, method and request_id, like request_key), kept after
       // it is recorded so a retry of that request replays; the recovery
       // finishes those still ACTIVE after its grace.
       {"ALTER TABLE dispositions ADD COLUMN IF NOT EXISTS revoke_key VARCHAR(400) NULL",
        "ALTER TABLE dispositions ADD COLUMN IF NOT EXISTS revoke_requested_at DATETIME(6) NULL",
        "ALTER TABLE dispositions ADD COLUMN IF NOT EXISTS revoke_request_reason TEXT NULL",
        "ALTER TABLE dispositions ADD INDEX IF NOT EXISTS k_revoking (state, "
        "revoke_requested_at)"}},
  };
  return *migrations;
}

}  // namespace qunzu::moderation
