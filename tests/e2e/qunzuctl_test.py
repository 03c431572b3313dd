"""End to end for qunzuctl: the real binary against the five real services
(tests/e2e/suite.py), and deploy/local/seed-demo.sh, the seed of `make run`.
Run by CTest as
  /usr/bin/python3 tests/e2e/qunzuctl_test.py BUILD_DIR

Every RPC is built now: the seed does every step (no `skip`), every staff
moderation command exits 0, the compliance report is complete (no MISSING
item, exit 0), and the walkthrough the seed prints runs, line by line, in a
shell with the seed's environment.
"""

import json
import os
import re
import subprocess
import sys
import time
import unittest

BUILD_DIR = os.path.abspath(sys.argv.pop(1) if len(sys.argv) > 1 else "build")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import suite as suite_lib  # noqa: E402

CTL = os.path.join(BUILD_DIR, "services", "qunzuctl", "qunzuctl")
EXIT_USAGE = 2
EXIT_INCOMPLETE = 3
EXIT_UNAVAILABLE = 64 + 14
EXIT_DEADLINE = 64 + 4
EXIT_PERMISSION_DENIED = 64 + 7
EXIT_UNAUTHENTICATED = 64 + 16


class DemoSuite(suite_lib.Suite):
    """The suite with credit on the demo policy, as `make run` starts it."""

    def base_args(self, name, auth_config):
        args = super().base_args(name, auth_config)
        if name == "credit":
            path = os.path.join(self.folder, "demo-credit.textproto")
            subprocess.run([os.path.join(ROOT, "deploy", "local", "demo-credit-policy.sh"), path],
                           check=True)
            args.append(f"--policy-file={path}")
        if name == "audit":
            # Sign checkpoints soon after entries arrive, for the proofs.
            args.append("--checkpoint-interval=1s")
        return args


class QunzuctlTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.suite = DemoSuite(BUILD_DIR).__enter__()
        cls.token_dir = os.path.join(cls.suite.folder, "tokens")
        os.makedirs(cls.token_dir)
        for role, token in cls.suite.tokens.items():
            with open(os.path.join(cls.token_dir, f"{role}.token"), "w") as f:
                f.write(token + "\n")
        cls.public_key = os.path.join(cls.suite.folder, "audit-signing.pub.pem")
        subprocess.run(["openssl", "pkey", "-in", cls.suite.audit_signing_key, "-pubout",
                        "-out", cls.public_key], check=True)
        cls.env = dict(os.environ, QUNZUCTL_TOKEN_DIR=cls.token_dir)
        for name, service in cls.suite.services.items():
            cls.env[f"QUNZUCTL_{name.upper()}_TARGET"] = f"127.0.0.1:{service.grpc_port}"

    @classmethod
    def tearDownClass(cls):
        cls.suite.__exit__(None, None, None)

    def seed_env(self):
        """The environment of the seed, and of the walkthrough it prints."""
        return dict(self.env, QUNZU_DEMO_AUDIT_PUBLIC_KEY=self.public_key,
                    QUNZU_DEMO_AUDIT_SCHEMA=self.suite.schema_prefix + "audit")

    def ctl(self, *args, role=None, timeout=60):
        command = [CTL] + (["--as", role] if role else []) + [str(a) for a in args]
        done = subprocess.run(command, capture_output=True, text=True, env=self.env,
                              timeout=timeout)
        return done.returncode, done.stdout, done.stderr

    def json(self, *args, role):
        code, out, err = self.ctl("--output", "json", *args, role=role)
        self.assertEqual(code, 0, f"{args}: {err}")
        return json.loads(out)

    def wait_for_checkpoints(self, count, deadline=60):
        """The signed checkpoints once there are at least `count`."""
        end = time.monotonic() + deadline
        while True:
            listed = self.json("audit", "checkpoints", "list", role="regulator")
            if len(listed.get("checkpoints", [])) >= count or time.monotonic() > end:
                return listed.get("checkpoints", [])
            # Each regulator call is itself audited, so the log grows and
            # the next checkpoint follows within the 1 s interval.
            time.sleep(0.2)

    def test_1_health_of_every_service(self):
        code, out, err = self.ctl("health", "--output", "json")
        self.assertEqual(code, 0, err)
        health = json.loads(out)
        self.assertEqual(sorted(health), sorted(suite_lib.SERVICES))
        self.assertTrue(all(h["status"] == "SERVING" for h in health.values()), health)

    def test_2_seed_demo_does_every_step(self):
        done = subprocess.run([os.path.join(ROOT, "deploy", "local", "seed-demo.sh"), BUILD_DIR],
                              capture_output=True, text=True, env=self.seed_env(), timeout=300)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        type(self).seed_output = done.stdout
        lines = done.stdout.splitlines()
        steps = [line.split()[0] for line in lines if line.startswith("  ") and
                 line.split() and line.split()[0] in ("ok", "skip", "FAIL")]
        self.assertEqual(set(steps), {"ok"}, done.stdout)
        self.assertNotIn("could not do", done.stdout)
        for step in ("bob posts a gambling advert (BLOCK)",
                     "bob posts unconfirmed insider news (HOLD for review)",
                     "alice reports bob's advert", "list the report queue"):
            self.assertIn(f"  ok    {step}", lines, done.stdout)
        for tier in ("small", "medium", "large", "huge"):
            self.assertTrue(any(line.startswith(f"  ok    {tier} group") for line in lines),
                            done.stdout)
        self.assertIn("Walkthrough", done.stdout)
        self.assertIn("dispositions group $G --kind close", done.stdout)
        groups = self.json("groups", "list", role="moderator")["groups"]
        self.assertEqual(sorted(g["scale_tier"] for g in groups if g["state"] ==
                                "GROUP_STATE_ACTIVE"),
                         sorted(["SCALE_TIER_SMALL", "SCALE_TIER_MEDIUM", "SCALE_TIER_LARGE",
                                 "SCALE_TIER_HUGE"]))
        type(self).groups = {g["name"]: int(g["group_id"]) for g in groups}

    def test_3_commands_of_every_service(self):
        # identity
        alice = self.json("accounts", "get", "--platform-user-id", "demo-alice",
                          role="moderator")["account"]
        self.assertTrue(alice["verified"])
        self.assertTrue(alice["agreements_current"])
        verification = self.json("accounts", "verification", "get", alice["account_id"],
                                 role="compliance")["verification"]
        self.assertEqual(verification["state"], "VERIFICATION_STATE_VERIFIED")
        self.assertEqual(verification["masked"]["legal_name"], "王**")
        revealed = self.json("accounts", "reveal", alice["account_id"], "--case", "e2e-case-1",
                             "--reason", "e2e: inspection", role="compliance")
        self.assertEqual(revealed["identity"]["legal_name"], "王小明")
        status = self.json("agreements", "status", role="operator")
        self.assertEqual(len(status["current"]), 2)
        # groups
        book = self.groups["读书会"]
        members = self.json("groups", "members", "list", book, role="moderator")["members"]
        self.assertEqual([m["role"] for m in members][0], "MEMBER_ROLE_OWNER")
        self.assertEqual(len(members), 3)
        code, out, err = self.ctl("groups", "filing-document", role="regulator")
        self.assertEqual(code, 0, err)
        self.assertIn("SMALL", out)
        tier = self.json("groups", "tier", book, role="regulator")
        self.assertEqual(tier["scale_tier"], "SCALE_TIER_SMALL")
        # moderation's service token, for the one service-only group command
        code, out, err = self.ctl("--token", self.suite.service_tokens["moderation"], "--output",
                                  "json", "groups", "state", "set", self.groups["上海徒步"],
                                  "--state", "warned", "--until", "+7d", "--reason",
                                  "e2e: rectify the announcement")
        self.assertEqual(code, 0, err)
        self.assertEqual(json.loads(out)["group"]["state"], "GROUP_STATE_WARNED")
        # credit: the demo policy starts a verified account at level 4
        credit = self.json("credit", "get", alice["account_id"], role="moderator")["status"]
        self.assertEqual(credit["level"], 4)
        self.assertEqual(credit["policy_version"], "demo-1")
        history = self.json("credit", "history", alice["account_id"], role="regulator")
        self.assertEqual(history["entries"][0]["event_type"],
                         "CREDIT_EVENT_TYPE_IDENTITY_VERIFIED")
        self.assertEqual(self.json("credit", "policy", role="regulator")["policy"]["version"],
                         "demo-1")
        # moderation: rules and the content screen
        sets = self.json("rules", "list", role="regulator")["rule_sets"]
        self.assertEqual([s["name"] for s in sets], ["demo"])
        tested = self.json("rules", "test", "来玩網絡賭博", role="moderator")
        self.assertEqual(tested["verdict"], "SCREEN_VERDICT_BLOCK")
        self.assertEqual(tested["normalized_text"], "来玩网络赌博")
        held = self.json("screen", "text", "有内部消息", role="platform")
        self.assertEqual(held["verdict"], "SCREEN_VERDICT_HOLD")
        # audit: the signed checkpoint, verified against the pinned key
        checkpoints = self.wait_for_checkpoints(2)
        self.assertGreaterEqual(len(checkpoints), 2)
        first, second = (int(c["tree_size"]) for c in checkpoints[-2:])
        code, out, err = self.ctl("audit", "proof", "consistency", first, second, "--public-key",
                                  self.public_key, role="regulator")
        self.assertEqual(code, 0, err)
        self.assertIn(f"signed checkpoints {first} -> {second}: consistent", err)
        code, out, err = self.ctl("--output", "json", "audit", "checkpoint", "--public-key",
                                  self.public_key, role="regulator")
        self.assertEqual(code, 0, err)
        self.assertIn("Ed25519 signature verified", err)
        size = int(json.loads(out)["checkpoint"]["tree_size"])
        code, out, err = self.ctl("audit", "proof", "inclusion", 0, size, "--public-key",
                                  self.public_key, role="regulator")
        self.assertEqual(code, 0, err)
        self.assertIn("proof verified", err)
        entries = self.json("audit", "query", "--service", "identity", "--purpose", "e2e",
                            role="regulator")["entries"]
        self.assertIn("IDENTITY_VERIFIED", [e["event"]["action"] for e in entries])
        code, out, err = self.ctl("audit", "verify-range", role="compliance")
        self.assertEqual(code, 0, err + out)
        hold = self.json("audit", "legal-hold", "--start-time", "-1d", "--end-time", "+1d",
                         "--case", "e2e-case-1", "--reason", "e2e: keep", role="compliance")
        self.assertNotEqual(hold["legal_hold"]["legal_hold_id"], "0")
        retention = self.json("audit", "retention", role="compliance")
        self.assertGreaterEqual(int(retention["retention"].rstrip("s")), 180 * 86400)

    def test_4_staff_moderation_commands_answer(self):
        for args in (["reports", "list"], ["reports", "stats"], ["dispositions", "list"],
                     ["blacklist", "list"], ["filings", "list"], ["emergency", "list"],
                     ["held", "list"]):
            role = "moderator" if args[0] in ("held", "emergency") else "regulator"
            code, out, err = self.ctl("--output", "json", *args, role=role)
            self.assertEqual(code, 0, f"{args}: {err}")
            json.loads(out)
        # The seed's report and held message are in the queue.
        reports = self.json("reports", "list", role="moderator")["reports"]
        self.assertEqual(sorted(r["source"] for r in reports),
                         ["REPORT_SOURCE_SCREENING", "REPORT_SOURCE_USER"], reports)
        held = self.json("held", "list", role="moderator")["held_messages"]
        self.assertEqual([h["message_id"] for h in held], ["demo-m2"])

    def test_5_a_missing_or_bad_flag_is_a_usage_error(self):
        code, _, err = self.ctl("groups", "create", "--actor", 1, role="platform")
        self.assertEqual(code, EXIT_USAGE)
        self.assertIn("--name: required", err)
        code, _, err = self.ctl("groups", "create", "--actor", 1, "--name", "x", "--category",
                                "hobby", "--tier", "giant", role="platform")
        self.assertEqual(code, EXIT_USAGE)
        self.assertIn("--scale-tier", err)
        code, _, err = self.ctl("groups", "frobnicate", role="platform")
        self.assertEqual(code, EXIT_USAGE)
        self.assertIn("unknown command", err)

    def test_6_an_unreachable_target_fails_within_the_deadline(self):
        start = time.monotonic()
        code, _, err = self.ctl("--deadline", "2s", "--credit-target", "127.0.0.1:1", "credit",
                                "policy", role="regulator", timeout=30)
        self.assertLess(time.monotonic() - start, 4)
        self.assertEqual(code, EXIT_UNAVAILABLE, err)
        self.assertIn("credit at 127.0.0.1:1", err)
        # An address nobody answers: the deadline ends the wait.
        start = time.monotonic()
        code, _, err = self.ctl("--deadline", "1s", "--target", "10.255.255.1:50051", "accounts",
                                "get", 1, role="regulator", timeout=30)
        self.assertLess(time.monotonic() - start, 4)
        self.assertIn(code, (EXIT_UNAVAILABLE, EXIT_DEADLINE), err)

    def test_7_a_wrong_token_exits_unauthenticated_with_the_reason(self):
        code, _, err = self.ctl("--token", "not-a-token", "groups", "list")
        self.assertEqual(code, EXIT_UNAUTHENTICATED)
        self.assertIn("UNAUTHENTICATED TOKEN_INVALID", err)
        code, _, err = self.ctl("audit", "query", role="platform")
        self.assertEqual(code, EXIT_PERMISSION_DENIED)
        self.assertIn("PERMISSION_DENIED", err)

    def test_8_compliance_report_is_complete(self):
        code, out, err = self.ctl("--output", "json", "compliance", "report",
                                  "--audit-public-key", self.public_key, role="regulator")
        report = json.loads(out)
        items = {item["requirements"]: item for item in report["items"]}
        self.assertIn("pinned key", items["R13.3"]["evidence"])
        # test_3 waited for a second checkpoint: the newest is proven
        # consistent with the one before.
        self.assertIn("consistent with the previous checkpoint", items["R13.3"]["evidence"])
        self.assertIn("\"demo\"", items["R5.2, R10.1"]["evidence"])
        verdicts = {item["requirements"]: item["verdict"] for item in report["items"]}
        self.assertTrue(all(v in ("OK", "ATTENTION") for v in verdicts.values()), report)
        self.assertEqual(code, 0, err)
        self.assertTrue(report["complete"], report)

    def test_9_the_walkthrough_runs_line_by_line(self):
        """Every command line the seed printed, in order, in one bash with the
        seed's environment, from the checkout: each must exit 0."""
        printed = self.seed_output.split("\nWalkthrough:", 1)[1].splitlines()[1:]
        commands = [line.strip() for line in printed
                    if line.strip() and not line.strip().startswith("#")]
        self.assertGreaterEqual(len(commands), 15, printed)
        self.assertEqual([c for c in commands if re.search(r"<[a-z][a-z ]*>", c)], [],
                         "a placeholder left in the walkthrough")
        script = "".join(f"{c}\necho \"step {i} rc=$?\" >&3\n"
                         for i, c in enumerate(commands))
        marks = os.path.join(self.suite.folder, "walkthrough.marks")
        done = subprocess.run(["bash", "-c", f"exec 3>{marks}\n{script}"], cwd=ROOT,
                              capture_output=True, text=True, env=self.seed_env(), timeout=300)
        with open(marks) as f:
            codes = [int(line.split("rc=")[1]) for line in f]
        self.assertEqual(len(codes), len(commands), done.stderr)
        for command, code in zip(commands, codes):
            self.assertEqual(code, 0, f"{command}\n{done.stdout}\n{done.stderr}")
        out = done.stdout
        self.assertIn("  state: VERIFIED\n", out)
        self.assertIn("verdict: BLOCK\n", out)
        self.assertIn("  kind: CLOSE\n", out)
        self.assertRegex(out, r"\n1 +DISPOSITION +GROUP ")
        self.assertIn("qunzu-audit-verify: OK:", out)
        self.assertIn("COMPLETE: every item evidenced", out)
        # The seed's two reports (bob's held message, alice's report) and the
        # walkthrough's, the last filed moments before the report ran.
        self.assertIn("received 3, handled 0, open 3,", out)
        # What the walkthrough did, seen from outside it.
        closed = [g for g in self.json("groups", "list", role="moderator")["groups"]
                  if g["name"] == "周末徒步"]
        self.assertEqual([g["state"] for g in closed], ["GROUP_STATE_CLOSED"])
        filings = self.json("filings", "list", role="compliance")["filings"]
        self.assertTrue(any(f["kind"] == "FILING_KIND_DISPOSITION" for f in filings), filings)

if __name__ == "__main__":
    unittest.main(verbosity=2)
