"""deploy/grafana/qunzu.json, statically: a well-formed dashboard whose
panels show what the issue asks for, whose every query is PromQL that
promtool parses, and whose panels do not overlap. (That each metric name is
one the services export is tests/e2e/metrics_names_test.py's job.) Run by
CTest as
  /usr/bin/python3 tests/deploy/dashboard_test.py
"""

import os
import subprocess
import sys
import tempfile
import unittest

import yaml

# CTest passes the build folder, which this test does not need.
if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
    sys.argv.pop(1)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import monitoring  # noqa: E402


class DashboardTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dashboard = monitoring.load_dashboard()
        cls.panels = monitoring.dashboard_panels(cls.dashboard)
        cls.exprs = monitoring.dashboard_expressions(cls.dashboard)

    def test_identity_and_datasource(self):
        self.assertEqual(self.dashboard["uid"], "qunzu-overview")
        ids = [p["id"] for p in self.panels]
        self.assertEqual(len(ids), len(set(ids)), "panel ids must be unique")
        variables = {v["name"]: v for v in self.dashboard["templating"]["list"]}
        self.assertEqual(variables["datasource"]["type"], "datasource")
        for panel in self.panels:
            if panel["type"] == "row":
                continue
            self.assertEqual(panel["datasource"]["uid"], "${datasource}", panel["title"])
            for target in panel["targets"]:
                self.assertEqual(target["datasource"]["uid"], "${datasource}", panel["title"])

    def test_panels_do_not_overlap(self):
        taken = set()
        for panel in self.panels:
            g = panel["gridPos"]
            self.assertLessEqual(g["x"] + g["w"], 24, panel["title"])
            cells = {(x, y) for x in range(g["x"], g["x"] + g["w"])
                     for y in range(g["y"], g["y"] + g["h"])}
            self.assertFalse(cells & taken, f"{panel['title']} overlaps another panel")
            taken |= cells

    def test_every_query_is_promql(self):
        rules = [{"record": f"dashboard:query_{i}", "expr": monitoring.grafana_to_promql(e)}
                 for i, e in enumerate(self.exprs.values())]
        with tempfile.NamedTemporaryFile("w", suffix=".yml") as f:
            yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)
            f.flush()
            run = subprocess.run(["promtool", "check", "rules", f.name],
                                 capture_output=True, text=True)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        self.assertIn(f"SUCCESS: {len(rules)} rules found", run.stdout)

    def query_of(self, title):
        panel = next((p for p in self.panels if p["title"] == title), None)
        self.assertIsNotNone(panel, f"no panel {title!r}")
        return " ".join(t["expr"] for t in panel["targets"])

    def test_the_asked_for_panels(self):
        q = self.query_of("Requests by method and code")
        self.assertIn("grpc_server_handled_total", q)
        self.assertIn("grpc_method, grpc_code", q)
        q = self.query_of("Latency p50 and p99 (unary)")
        self.assertIn("histogram_quantile(0.5,", q)
        self.assertIn("histogram_quantile(0.99,", q)
        self.assertIn("grpc_server_handling_seconds_bucket", q)
        self.assertIn("qunzu_moderation_screened_total", self.query_of("Screened by verdict"))
        q = self.query_of("Blocked and held by category")
        self.assertIn('qunzu_moderation_rule_matches_total{action="BLOCK"}', q)
        self.assertIn("by (category)", q)
        self.assertIn("qunzu_moderation_reports_open", self.query_of("Open reports by category"))
        self.assertIn("qunzu_moderation_reports_overdue",
                      self.query_of("Overdue reports by category"))
        self.assertIn("qunzu_outbox_oldest_pending_seconds",
                      self.query_of("Outbox lag (oldest undelivered)"))
        self.assertIn("qunzu_audit_tree_size", self.query_of("Audit tree size"))

    def test_metric_names_are_read_from_promql(self):
        names = monitoring.metric_names(
            'histogram_quantile(0.99, sum by (grpc_service, le) (rate(a_seconds_bucket'
            '{x=~"b|c", le!="d"}[5m]))) > 0.5 and on () sum without (pod) (b_total) '
            'or up{job=~".*qunzu.*"} == bool 0')
        self.assertEqual(names, {"a_seconds_bucket", "b_total", "up"})


if __name__ == "__main__":
    unittest.main(verbosity=2)
