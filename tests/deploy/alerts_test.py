"""deploy/prometheus/alerts.yml under promtool: the rules parse
(`promtool check rules`), and tests/deploy/alerts_test.yml (`promtool test
rules`) has, for every alert, input series that fire it and series that
must not. Run by CTest as
  /usr/bin/python3 tests/deploy/alerts_test.py
"""

import os
import subprocess
import sys
import unittest

import yaml

# CTest passes the build folder, which this test does not need.
if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
    sys.argv.pop(1)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
RULES = os.path.join(ROOT, "deploy", "prometheus", "alerts.yml")
TESTS = os.path.join(HERE, "alerts_test.yml")
# What the issue asks the rules to watch, by the alert that does.
REQUIRED = {
    "error ratio": "QunzuHighErrorRatio",
    "p99 latency": "QunzuHighLatencyP99",
    "overdue reports": "QunzuReportsOverdue",
    "outbox lag": "QunzuOutboxLag",
    "audit checkpoint age": "QunzuAuditCheckpointStale",
    "a service not serving (scrape)": "QunzuServiceDown",
    "a service not serving (dependency)": "QunzuDependencyDown",
}


def load(path):
    with open(path) as f:
        return yaml.safe_load(f)


def promtool(*args):
    run = subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=120)
    return run.returncode, run.stdout + run.stderr


class AlertsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rules = [r for g in load(RULES)["groups"] for r in g["rules"]]
        cls.alerts = {r["alert"]: r for r in cls.rules if "alert" in r}

    def test_rules_parse(self):
        code, out = promtool("check", "rules", RULES)
        self.assertEqual(code, 0, out)
        self.assertIn(f"SUCCESS: {len(self.rules)} rules found", out)

    def test_promtool_unit_tests_pass(self):
        code, out = promtool("test", "rules", TESTS)
        self.assertEqual(code, 0, out)
        self.assertIn("SUCCESS", out)

    def test_every_asked_for_alert_exists(self):
        for what, alert in REQUIRED.items():
            self.assertIn(alert, self.alerts, what)

    def test_every_alert_is_tested_firing_and_not_firing(self):
        fired, quiet = set(), set()
        for case in load(TESTS)["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
        for alert in self.alerts:
            self.assertIn(alert, fired, f"{alert} has no test that fires it")
            self.assertIn(alert, quiet, f"{alert} has no test where it stays quiet")

    def test_every_alert_says_how_bad_and_what(self):
        for name, rule in self.alerts.items():
            self.assertIn(rule["labels"]["severity"], ["warning", "critical"], name)
            self.assertTrue(rule["annotations"]["summary"], name)
            self.assertTrue(rule["annotations"]["description"], name)
            self.assertIn("for", rule, name)


if __name__ == "__main__":
    unittest.main(verbosity=2)
