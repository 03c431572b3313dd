"""End to end for moderation's case handling (issue 8) through the five
running binaries, from Python's grpcio: a report on a group claimed and
resolved with CLOSE, after which the group refuses joins and its members'
posts (ScreenMessage: GROUP_CLOSED), one filing reaches the authority (a
FilingReceiver this test serves, down at first), the audit log holds the
chain and the reporter reads the outcome; a report past its deadline is
overdue in the queue, the stats and the metrics; a blacklisted account is
refused at create, join and post (SENDER_BLACKLISTED within 1 s) and let back
after expiry; a blacklisted group's posts are blocked (GROUP_BLACKLISTED); a
credit downgrade lowers the entitlements at once; bad input gets clear
errors. The review of held messages end to end: a HOLD term opens one
SCREENING report (a retry opens no second), the held message is PENDING,
then REJECTED on a violation or RELEASED on none, and listed by decision
time; an emergency HOLD_ALL holds a clean message.
Run by CTest as
  /usr/bin/python3 tests/e2e/cases_test.py BUILD_DIR
"""

import hashlib
import os
import sys
import threading
import time
import unittest
import urllib.request
from concurrent import futures

BUILD_DIR = os.path.abspath(sys.argv.pop(1) if len(sys.argv) > 1 else "build")
sys.path.insert(0, os.path.join(BUILD_DIR, "python"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402

from google.protobuf import timestamp_pb2  # noqa: E402
from qunzu.audit.v1 import audit_pb2, audit_pb2_grpc  # noqa: E402
from qunzu.common.v1 import domain_pb2  # noqa: E402
from qunzu.credit.v1 import credit_pb2, credit_pb2_grpc  # noqa: E402
from qunzu.groups.v1 import groups_pb2, groups_pb2_grpc  # noqa: E402
from qunzu.identity.v1 import identity_pb2, identity_pb2_grpc  # noqa: E402
from qunzu.moderation.v1 import moderation_pb2 as m  # noqa: E402
from qunzu.moderation.v1 import moderation_pb2_grpc  # noqa: E402
import suite as suite_lib  # noqa: E402

# A term the rule set holds for review (RUMOR).
HOLD_TERM = "内部消息"
WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def resident_id(serial):
    """A GB 11643 number with a valid check character."""
    body = "11010119900101" + "%03d" % serial
    total = sum(int(d) * w for d, w in zip(body, WEIGHTS))
    return body + "10X98765432"[total % 11]


def timestamp(seconds_from_now):
    t = timestamp_pb2.Timestamp()
    t.FromSeconds(int(time.time() + seconds_from_now))
    return t


def wait_until(predicate, what, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


class Authority(moderation_pb2_grpc.FilingReceiverServicer):
    """The authority's endpoint: down until told otherwise; one record per filing."""

    def __init__(self):
        self.lock = threading.Lock()
        self.down = True
        self.filings = {}
        self.calls = 0

    def ReceiveFiling(self, request, context):
        with self.lock:
            self.calls += 1
            if self.down:
                context.abort(grpc.StatusCode.UNAVAILABLE, "authority down")
            self.filings.setdefault(request.filing.filing_id, request.filing)
            return m.ReceiveFilingResponse(receipt_id=f"receipt-{request.filing.filing_id}")


class CasesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.authority = Authority()
        cls.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        moderation_pb2_grpc.add_FilingReceiverServicer_to_server(cls.authority, cls.server)
        port = cls.server.add_insecure_port("127.0.0.1:0")
        cls.server.start()
        cls.suite = suite_lib.Suite(BUILD_DIR, moderation_args=[
            f"--authority-target=127.0.0.1:{port}", "--filing-max-backoff=300ms",
            "--report-deadline=3s", "--report-deadline-urgent=2s"]).__enter__()
        s = cls.suite.services
        cls.identity = identity_pb2_grpc.IdentityServiceStub(s["identity"].channel)
        cls.credit = credit_pb2_grpc.CreditServiceStub(s["credit"].channel)
        cls.groups = groups_pb2_grpc.GroupServiceStub(s["groups"].channel)
        cls.moderation = moderation_pb2_grpc.ModerationServiceStub(s["moderation"].channel)
        cls.audit = audit_pb2_grpc.AuditServiceStub(s["audit"].channel)
        cls.serial = 0
        try:
            cls.publish_agreement_and_rules()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def publish_agreement_and_rules(cls):
        """The service agreement every verified account accepts (ScreenMessage
        needs one in force), and a rule set with a BLOCK and a HOLD term."""
        cls.agreement_body = "# 服务协议\n遵守法律法规。"
        cls.agreement_version = cls.identity.PublishAgreement(
            identity_pb2.PublishAgreementRequest(
                request_id="agreement-1", kind=identity_pb2.AGREEMENT_KIND_SERVICE_AGREEMENT,
                label="v1", title="服务协议", body=cls.agreement_body),
            metadata=cls.suite.metadata("operator"), timeout=10).agreement.version
        upserted = cls.moderation.UpsertRuleSet(m.UpsertRuleSetRequest(
            request_id="rules-1", name="e2e-cases", mode=m.RULE_SET_UPDATE_MODE_REPLACE,
            activate=True, rules=[
                m.Rule(kind=m.RULE_KIND_LITERAL, pattern="赌博",
                       category=m.CONTENT_CATEGORY_GAMBLING, action=m.RULE_ACTION_BLOCK),
                m.Rule(kind=m.RULE_KIND_LITERAL, pattern=HOLD_TERM,
                       category=m.CONTENT_CATEGORY_RUMOR, action=m.RULE_ACTION_HOLD)]),
            metadata=cls.suite.metadata("operator"), timeout=10)
        cls.hold_rule_id = upserted.rule_ids[1]
        wait_until(lambda: any(
            r.compile_state == m.COMPILE_STATE_READY and r.active_version == upserted.version
            for r in cls.moderation.ListRuleSets(m.ListRuleSetsRequest(),
                                                 metadata=cls.suite.metadata("operator"),
                                                 timeout=10).rule_sets),
            "the rule set to be in force")

    @classmethod
    def tearDownClass(cls):
        cls.suite.__exit__(None, None, None)
        cls.server.stop(None)

    def md(self, role):
        return self.suite.metadata(role)

    def rid(self, stem):
        CasesTest.serial += 1
        return f"{stem}-{CasesTest.serial}"

    def verified_account(self):
        created = self.identity.CreateAccount(identity_pb2.CreateAccountRequest(
            request_id=self.rid("acct"), nickname=f"user{CasesTest.serial}"),
            metadata=self.md("platform"), timeout=10)
        account = created.account.account_id
        self.identity.SubmitRealName(identity_pb2.SubmitRealNameRequest(
            request_id=self.rid("rn"), actor_account_id=account,
            resident_identity=identity_pb2.ResidentIdentity(
                legal_name="张三", resident_id_number=resident_id(CasesTest.serial))),
            metadata=self.md("platform"), timeout=10)
        self.identity.AcceptAgreement(identity_pb2.AcceptAgreementRequest(
            request_id=self.rid("accept"), actor_account_id=account,
            kind=identity_pb2.AGREEMENT_KIND_SERVICE_AGREEMENT, version=self.agreement_version,
            body_sha256=hashlib.sha256(self.agreement_body.encode()).digest()),
            metadata=self.md("platform"), timeout=10)
        # Credit rates the account from identity's outbox, and then projects
        # the rating to Redis (after its commit), where groups and the hot
        # path read it.
        wait_until(lambda: self.credit_of(account).rated, "credit to rate the account")
        wait_until(lambda: self.suite.redis.hget(f"{{a:{account}}}:credit", "level") != "",
                   "credit to project the account's rating")
        return account

    def credit_of(self, account):
        return self.credit.GetCredit(credit_pb2.GetCreditRequest(account_id=account),
                                     metadata=self.md("moderator"), timeout=10).status

    def create_group(self, owner):
        return self.groups.CreateGroup(groups_pb2.CreateGroupRequest(
            request_id=self.rid("grp"), actor_account_id=owner, name="Hikers",
            category=domain_pb2.GROUP_CATEGORY_HOBBY, scale_tier=domain_pb2.SCALE_TIER_SMALL,
            join_policy=groups_pb2.JOIN_POLICY_OPEN), metadata=self.md("platform"), timeout=10)

    def join(self, account, group_id):
        return self.groups.JoinGroup(groups_pb2.JoinGroupRequest(
            request_id=self.rid("join"), actor_account_id=account, group_id=group_id),
            metadata=self.md("platform"), timeout=10)

    def screen(self, sender, group_id, text="周末一起去爬山", request_id=None):
        """ScreenMessage, retrying only the UNAVAILABLE of projections not yet
        written (or of a retry racing its first call's record)."""
        request_id = request_id or self.rid("screen")
        request = m.ScreenMessageRequest(
            request_id=request_id, actor_account_id=sender, group_id=group_id,
            message_id="msg-" + request_id, text=text, client_ip="203.0.113.9")
        deadline = time.monotonic() + 30
        while True:
            try:
                return self.moderation.ScreenMessage(request, metadata=self.md("platform"),
                                                     timeout=10)
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                    raise
            time.sleep(0.05)

    def screen_code(self, sender, group_id, text="周末一起去爬山"):
        response = self.screen(sender, group_id, text)
        return response.reasons[0].code if response.reasons else None

    def report(self, reporter, group_id, category=m.CONTENT_CATEGORY_GAMBLING):
        return self.moderation.SubmitReport(m.SubmitReportRequest(
            request_id=self.rid("rep"), actor_account_id=reporter,
            target=m.ReportTarget(kind=m.REPORT_TARGET_KIND_GROUP, group_id=group_id),
            category=category, description="gambling ads in the group"),
            metadata=self.md("platform"), timeout=10).report

    def assert_error(self, code, reason, fn):
        with self.assertRaises(grpc.RpcError) as caught:
            fn()
        self.assertEqual(caught.exception.code(), code, caught.exception.details())
        self.assertEqual(suite_lib.error_reason(caught.exception), reason)

    def audit_actions(self, kind, subject_id):
        response = self.audit.Query(audit_pb2.QueryRequest(
            filter=audit_pb2.AuditFilter(subject=audit_pb2.Subject(kind=kind, id=subject_id)),
            purpose="e2e"), metadata=self.md("compliance"), timeout=10)
        return [e.event.action for e in response.entries]

    def test_01_report_claim_close_filing_audit_and_outcome(self):
        owner, reporter, joiner, member = (self.verified_account() for _ in range(4))
        group_id = self.create_group(owner).group.group_id
        self.join(member, group_id)
        # The member may post before the closure.
        self.assertEqual(self.screen(member, group_id).verdict, m.SCREEN_VERDICT_ALLOW)
        report = self.report(reporter, group_id)
        self.moderation.ClaimReport(m.ClaimReportRequest(
            request_id=self.rid("claim"), report_id=report.report_id,
            action=m.CLAIM_ACTION_CLAIM), metadata=self.md("moderator"), timeout=10)
        owner_score = self.credit_of(owner).score
        disposition = self.moderation.DisposeGroup(m.DisposeGroupRequest(
            request_id=self.rid("dispose"), group_id=group_id, kind=m.DISPOSITION_KIND_CLOSE,
            basis=m.DispositionBasis(report_ids=[report.report_id]),
            statement_of_reasons="Gambling promotion, confirmed."),
            metadata=self.md("moderator"), timeout=10).disposition
        reporter_score = self.credit_of(reporter).score
        resolved = self.moderation.ResolveReport(m.ResolveReportRequest(
            request_id=self.rid("resolve"), report_id=report.report_id,
            outcome=m.REPORT_OUTCOME_VIOLATION, statement_of_reasons="The group was closed.",
            disposition_ids=[disposition.disposition_id]),
            metadata=self.md("moderator"), timeout=10).report
        self.assertEqual(resolved.state, m.REPORT_STATE_RESOLVED)
        # Resolving twice is refused.
        self.assert_error(grpc.StatusCode.FAILED_PRECONDITION, "REPORT_ALREADY_RESOLVED",
                          lambda: self.moderation.ResolveReport(m.ResolveReportRequest(
                              request_id=self.rid("resolve"), report_id=report.report_id,
                              outcome=m.REPORT_OUTCOME_NO_VIOLATION, statement_of_reasons="x"),
                              metadata=self.md("moderator"), timeout=10))
        # The group refuses joins, and its members' posts.
        self.assert_error(grpc.StatusCode.FAILED_PRECONDITION, "GROUP_CLOSED",
                          lambda: self.join(joiner, group_id))
        closed = self.screen(member, group_id)
        self.assertEqual(closed.verdict, m.SCREEN_VERDICT_BLOCK, closed)
        self.assertEqual([r.code for r in closed.reasons], [m.SCREEN_REASON_CODE_GROUP_CLOSED])
        # The reporter reads the outcome, not who handled it.
        seen = self.moderation.GetReport(m.GetReportRequest(
            report_id=report.report_id, actor_account_id=reporter),
            metadata=self.md("platform"), timeout=10).report
        self.assertEqual(seen.outcome, m.REPORT_OUTCOME_VIOLATION)
        self.assertEqual(seen.statement_of_reasons, "The group was closed.")
        self.assertEqual(seen.assignee, "")
        # The closure counts against the owner, the upheld report for the reporter.
        wait_until(lambda: self.credit_of(owner).score < owner_score,
                   "the owner's GROUP_CLOSED credit event")
        wait_until(lambda: self.credit_of(reporter).score > reporter_score,
                   "the reporter's ACCURATE_REPORT_FILED credit event")
        # One filing, delivered once the authority comes back.
        filings = self.moderation.ListFilings(m.ListFilingsRequest(
            disposition_id=disposition.disposition_id), metadata=self.md("compliance"),
            timeout=10).filings
        self.assertEqual(len(filings), 1)
        wait_until(lambda: self.authority.calls > 0, "a first delivery attempt")
        with self.authority.lock:
            self.authority.down = False

        def delivered():
            listed = self.moderation.ListFilings(m.ListFilingsRequest(
                disposition_id=disposition.disposition_id), metadata=self.md("regulator"),
                timeout=10).filings
            return listed[0].delivery_state == m.FILING_DELIVERY_STATE_DELIVERED
        wait_until(delivered, "the filing to be delivered")
        self.assertIn(filings[0].filing_id, self.authority.filings)
        self.assertEqual(self.authority.filings[filings[0].filing_id].disposition.kind,
                         m.DISPOSITION_KIND_CLOSE)
        # The audit log holds the chain, moderation's and groups'.
        wanted = ["REPORT_SUBMITTED", "REPORT_CLAIMED", "REPORT_RESOLVED"]
        wait_until(lambda: all(a in self.audit_actions(audit_pb2.SUBJECT_KIND_REPORT,
                                                       report.report_id) for a in wanted),
                   "the report's audit chain")
        wait_until(lambda: "DISPOSITION_APPLIED" in self.audit_actions(
            audit_pb2.SUBJECT_KIND_DISPOSITION, disposition.disposition_id),
            "the disposition's audit entry")
        chain = ["GROUP_CREATE", "GROUP_SET_STATE", "DISPOSITION_APPLIED"]
        wait_until(lambda: all(a in self.audit_actions(audit_pb2.SUBJECT_KIND_GROUP, group_id)
                               for a in chain), "the group's audit chain")

    def test_02_overdue_report_in_queue_stats_and_metrics(self):
        reporter, owner = self.verified_account(), self.verified_account()
        group_id = self.create_group(owner).group.group_id
        report = self.report(reporter, group_id, m.CONTENT_CATEGORY_FRAUD)

        def overdue():
            listed = self.moderation.ListReports(m.ListReportsRequest(overdue=True),
                                                 metadata=self.md("moderator"), timeout=10)
            return report.report_id in [r.report_id for r in listed.reports]
        wait_until(overdue, "the report to be overdue")
        stats = self.moderation.GetHandlingStats(m.GetHandlingStatsRequest(
            start_time=timestamp(-3600), end_time=timestamp(3600)),
            metadata=self.md("regulator"), timeout=10)
        self.assertGreaterEqual(stats.total.overdue, 1)
        fraud = [c for c in stats.by_category if c.category == m.CONTENT_CATEGORY_FRAUD]
        self.assertEqual(len(fraud), 1)
        self.assertGreaterEqual(fraud[0].stats.overdue, 1)
        # The regulator's reads are themselves audited (R13.1), the rule sets
        # and emergency modes as well as the cases.
        regulator = self.md("regulator")
        self.moderation.ListRuleSets(m.ListRuleSetsRequest(), metadata=regulator, timeout=10)
        self.moderation.ListEmergencyModes(m.ListEmergencyModesRequest(), metadata=regulator,
                                           timeout=10)

        def inspected_methods():
            entries = self.audit.Query(audit_pb2.QueryRequest(
                filter=audit_pb2.AuditFilter(service="moderation", action="REGULATOR_INSPECTED",
                                             principal="e2e-regulator"), purpose="e2e"),
                metadata=self.md("compliance"), timeout=10).entries
            methods = {e.event.method.rsplit("/", 1)[-1] for e in entries}
            return {"GetHandlingStats", "ListRuleSets", "ListEmergencyModes"} <= methods
        wait_until(inspected_methods, "the inspections' audit entries")
        port = self.suite.services["moderation"].metrics_port

        def metric():
            page = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
            for line in page.splitlines():
                if line.startswith('qunzu_moderation_reports_overdue{category="'
                                   'CONTENT_CATEGORY_FRAUD"}'):
                    return float(line.split()[-1]) >= 1
            return False
        wait_until(metric, "the overdue gauge")

    def test_03_blacklisted_account_refused_then_let_back(self):
        owner, bad = self.verified_account(), self.verified_account()
        group_id = self.create_group(owner).group.group_id
        self.assert_error(grpc.StatusCode.INVALID_ARGUMENT, "EXPIRY_IN_PAST",
                          lambda: self.moderation.AddToBlacklist(m.AddToBlacklistRequest(
                              request_id=self.rid("bl"), subject_kind=m.SUBJECT_KIND_ACCOUNT,
                              subject_id=bad, reason="fraud", expires_at=timestamp(-60)),
                              metadata=self.md("moderator"), timeout=10))
        entry = self.moderation.AddToBlacklist(m.AddToBlacklistRequest(
            request_id=self.rid("bl"), subject_kind=m.SUBJECT_KIND_ACCOUNT, subject_id=bad,
            reason="Organised fraud.", expires_at=timestamp(4)),
            metadata=self.md("moderator"), timeout=10).entry
        self.assertNotEqual(entry.filing_id, 0)
        self.assert_error(grpc.StatusCode.FAILED_PRECONDITION, "ACCOUNT_BLACKLISTED",
                          lambda: self.create_group(bad))
        self.assert_error(grpc.StatusCode.FAILED_PRECONDITION, "ACCOUNT_BLACKLISTED",
                          lambda: self.join(bad, group_id))

        def joined():
            try:
                self.join(bad, group_id)
                return True
            except grpc.RpcError as e:
                self.assertEqual(suite_lib.error_reason(e), "ACCOUNT_BLACKLISTED")
                return False
        wait_until(joined, "the blacklisting to expire", timeout=20)

    def test_04_credit_downgrade_lowers_entitlements_at_once(self):
        account = self.verified_account()
        basis = self.report(self.verified_account(),
                            self.create_group(account).group.group_id).report_id
        before = self.credit_of(account)
        self.assertGreaterEqual(before.level, 1)
        self.moderation.DisposeAccount(m.DisposeAccountRequest(
            request_id=self.rid("down"), account_id=account,
            kind=m.DISPOSITION_KIND_CREDIT_DOWNGRADE, levels=1, until=timestamp(86400),
            basis=m.DispositionBasis(report_ids=[basis]),
            statement_of_reasons="Fraud confirmed."), metadata=self.md("moderator"), timeout=10)
        after = self.credit_of(account)
        self.assertEqual(after.level, before.level - 1)
        self.assertLessEqual(after.entitlements.groups_may_create,
                             before.entitlements.groups_may_create)
        self.assertLess(after.entitlements.groups_may_join, before.entitlements.groups_may_join)

    def test_05_bad_input_is_refused_clearly(self):
        reporter = self.verified_account()
        self.assert_error(grpc.StatusCode.NOT_FOUND, "TARGET_NOT_FOUND",
                          lambda: self.report(reporter, 987654321))
        self.assert_error(grpc.StatusCode.INVALID_ARGUMENT, "BASIS_REQUIRED",
                          lambda: self.moderation.DisposeGroup(m.DisposeGroupRequest(
                              request_id=self.rid("d"), group_id=1,
                              kind=m.DISPOSITION_KIND_CLOSE, statement_of_reasons="x"),
                              metadata=self.md("moderator"), timeout=10))
        self.assert_error(grpc.StatusCode.INVALID_ARGUMENT, "STATEMENT_REQUIRED",
                          lambda: self.moderation.DisposeAccount(m.DisposeAccountRequest(
                              request_id=self.rid("d"), account_id=reporter,
                              kind=m.DISPOSITION_KIND_SUSPEND_ADMIN, until=timestamp(60),
                              basis=m.DispositionBasis(report_ids=[1])),
                              metadata=self.md("moderator"), timeout=10))
        listed = self.moderation.ListDispositions(m.ListDispositionsRequest(
            account_id=reporter), metadata=self.md("compliance"), timeout=10)
        self.assertEqual(len(listed.dispositions), 0)

    def blocked_within_a_second(self, sender, group_id, code):
        """Screens every 50 ms until the first reason is `code`; the response.
        Fails unless that happens within 1 s."""
        start = time.monotonic()
        while True:
            response = self.screen(sender, group_id)
            if self.first_code(response) == code:
                self.assertEqual(response.verdict, m.SCREEN_VERDICT_BLOCK, response)
                return response
            self.assertLess(time.monotonic() - start, 1.0, f"no {code} within 1 s: {response}")
            time.sleep(0.05)

    @staticmethod
    def first_code(response):
        return response.reasons[0].code if response.reasons else None

    def test_06_blacklisted_sender_and_group_are_blocked_on_the_hot_path(self):
        owner, member = self.verified_account(), self.verified_account()
        group_id = self.create_group(owner).group.group_id
        self.join(member, group_id)
        self.assertEqual(self.screen(member, group_id).verdict, m.SCREEN_VERDICT_ALLOW)
        entry = self.moderation.AddToBlacklist(m.AddToBlacklistRequest(
            request_id=self.rid("bl"), subject_kind=m.SUBJECT_KIND_ACCOUNT, subject_id=member,
            reason="Spam rings.", expires_at=timestamp(3)),
            metadata=self.md("moderator"), timeout=10).entry
        self.blocked_within_a_second(member, group_id, m.SCREEN_REASON_CODE_SENDER_BLACKLISTED)
        # Let back at expiry without anyone acting. Waited for on the entry
        # (EXPIRED), not by screening: the blacklisting cost the sender its
        # credit (level 0: 5 messages a minute), so each poll would count.
        def expired():
            entries = self.moderation.ListBlacklist(m.ListBlacklistRequest(
                subject_kind=m.SUBJECT_KIND_ACCOUNT, subject_id=member),
                metadata=self.md("moderator"), timeout=10).entries
            return entries[0].state == m.BLACKLIST_ENTRY_STATE_EXPIRED
        self.assertEqual(self.first_code(self.screen(member, group_id)),
                         m.SCREEN_REASON_CODE_SENDER_BLACKLISTED)
        wait_until(expired, "the blacklist entry to expire", timeout=20)
        self.assertGreaterEqual(time.time(), entry.expires_at.seconds)
        allowed = self.screen(member, group_id)
        self.assertEqual(allowed.verdict, m.SCREEN_VERDICT_ALLOW, allowed)
        # A blacklisted group: no posts from anyone, no new members.
        self.moderation.AddToBlacklist(m.AddToBlacklistRequest(
            request_id=self.rid("bl"), subject_kind=m.SUBJECT_KIND_GROUP, subject_id=group_id,
            reason="Gambling syndicate."), metadata=self.md("moderator"), timeout=10)
        self.blocked_within_a_second(owner, group_id, m.SCREEN_REASON_CODE_GROUP_BLACKLISTED)
        self.assertEqual(self.first_code(self.screen(member, group_id)),
                         m.SCREEN_REASON_CODE_GROUP_BLACKLISTED)
        self.assert_error(grpc.StatusCode.FAILED_PRECONDITION, "GROUP_BLACKLISTED",
                          lambda: self.join(self.verified_account(), group_id))

    def held_message(self, report_id):
        return self.moderation.GetHeldMessage(m.GetHeldMessageRequest(report_id=report_id),
                                              metadata=self.md("platform"),
                                              timeout=10).held_message

    def claim_and_resolve(self, report_id, outcome, statement):
        self.moderation.ClaimReport(m.ClaimReportRequest(
            request_id=self.rid("claim"), report_id=report_id, action=m.CLAIM_ACTION_CLAIM),
            metadata=self.md("moderator"), timeout=10)
        return self.moderation.ResolveReport(m.ResolveReportRequest(
            request_id=self.rid("resolve"), report_id=report_id, outcome=outcome,
            statement_of_reasons=statement), metadata=self.md("moderator"), timeout=10).report

    def test_07_held_message_reviewed_end_to_end(self):
        owner, member = self.verified_account(), self.verified_account()
        group_id = self.create_group(owner).group.group_id
        self.join(member, group_id)
        self.assertEqual(self.screen(member, group_id).verdict, m.SCREEN_VERDICT_ALLOW)
        before = timestamp(-1)
        text = f"听说有{HOLD_TERM}，明天停课"
        request_id = self.rid("held")
        held = self.screen(member, group_id, text, request_id)
        self.assertEqual(held.verdict, m.SCREEN_VERDICT_HOLD, held)
        self.assertNotEqual(held.report_id, 0)
        self.assertEqual([(r.code, r.rule_id, r.action) for r in held.reasons],
                         [(m.SCREEN_REASON_CODE_CONTENT_RULE, self.hold_rule_id,
                           m.RULE_ACTION_HOLD)])
        # A retry returns the same report and opens no second one.
        self.assertEqual(self.screen(member, group_id, text, request_id), held)
        screening = self.moderation.ListReports(m.ListReportsRequest(
            source=m.REPORT_SOURCE_SCREENING, target=m.ReportTarget(
                kind=m.REPORT_TARGET_KIND_MESSAGE, group_id=group_id, account_id=member,
                message_id="msg-" + request_id)), metadata=self.md("moderator"),
            timeout=10).reports
        self.assertEqual([r.report_id for r in screening], [held.report_id])
        self.assertEqual(screening[0].state, m.REPORT_STATE_OPEN)
        self.assertEqual(screening[0].held_message.text, text)
        pending = self.held_message(held.report_id)
        self.assertEqual(pending.state, m.HELD_MESSAGE_STATE_PENDING)
        self.assertEqual(pending.message_id, "msg-" + request_id)
        self.assertEqual(pending.sender_account_id, member)
        # Upheld: the message is never delivered.
        resolved = self.claim_and_resolve(held.report_id, m.REPORT_OUTCOME_VIOLATION,
                                          "An unfounded rumour.")
        self.assertEqual(resolved.source, m.REPORT_SOURCE_SCREENING)
        self.assertEqual(self.held_message(held.report_id).state, m.HELD_MESSAGE_STATE_REJECTED)
        # Not upheld: the platform delivers it.
        released = self.screen(member, group_id, f"{HOLD_TERM}：周末活动改到周日")
        self.assertEqual(released.verdict, m.SCREEN_VERDICT_HOLD, released)
        self.assertNotEqual(released.report_id, held.report_id)
        self.claim_and_resolve(released.report_id, m.REPORT_OUTCOME_NO_VIOLATION,
                               "A schedule change, not a rumour.")
        self.assertEqual(self.held_message(released.report_id).state,
                         m.HELD_MESSAGE_STATE_RELEASED)
        # The platform polls the decisions.
        decided = self.moderation.ListHeldMessages(m.ListHeldMessagesRequest(
            group_id=group_id, decided_after=before), metadata=self.md("platform"),
            timeout=10).held_messages
        self.assertEqual([(h.report_id, h.state) for h in decided],
                         [(held.report_id, m.HELD_MESSAGE_STATE_REJECTED),
                          (released.report_id, m.HELD_MESSAGE_STATE_RELEASED)])
        self.assertTrue(all(h.decided_at.seconds >= before.seconds for h in decided))
        later = self.moderation.ListHeldMessages(m.ListHeldMessagesRequest(
            group_id=group_id, decided_after=timestamp(3600)), metadata=self.md("platform"),
            timeout=10).held_messages
        self.assertEqual(len(later), 0)

    def test_08_emergency_hold_all_holds_a_clean_message(self):
        owner = self.verified_account()
        group_id = self.create_group(owner).group.group_id
        self.assertEqual(self.screen(owner, group_id).verdict, m.SCREEN_VERDICT_ALLOW)
        mode = self.moderation.SetEmergencyMode(m.SetEmergencyModeRequest(
            request_id=self.rid("emergency"), scope=m.EMERGENCY_SCOPE_GROUP, group_id=group_id,
            level=m.EMERGENCY_LEVEL_HOLD_ALL, reason="e2e: incident in the area",
            expires_at=timestamp(600)), metadata=self.md("operator"), timeout=10).mode

        def held():
            response = self.screen(owner, group_id)
            return response if response.verdict == m.SCREEN_VERDICT_HOLD else None
        response = wait_until(held, "HOLD_ALL to be in force", timeout=5)
        self.assertEqual(response.reasons[0].code, m.SCREEN_REASON_CODE_EMERGENCY_HOLD_ALL)
        self.assertEqual(response.reasons[0].emergency_mode_id, mode.emergency_mode_id)
        self.assertNotEqual(response.report_id, 0)
        self.assertEqual(self.held_message(response.report_id).state,
                         m.HELD_MESSAGE_STATE_PENDING)
        self.moderation.SetEmergencyMode(m.SetEmergencyModeRequest(
            request_id=self.rid("emergency"), scope=m.EMERGENCY_SCOPE_GROUP, group_id=group_id,
            level=m.EMERGENCY_LEVEL_OFF, reason="e2e: over"), metadata=self.md("operator"),
            timeout=10)
        wait_until(lambda: self.screen(owner, group_id).verdict == m.SCREEN_VERDICT_ALLOW,
                   "HOLD_ALL to end", timeout=5)


if __name__ == "__main__":
    unittest.main(verbosity=2)
