"""Every metric name that deploy/prometheus/alerts.yml and
deploy/grafana/qunzu.json use is one the running services export: the five
binaries are started (suite.py), each /metrics is scraped, checked by
`promtool check metrics`, and the union of the exported names must hold
every name the rules and the dashboard select. A histogram counts with its
_bucket, _sum and _count series; `up` is Prometheus's own. Run by CTest as
  /usr/bin/python3 tests/e2e/metrics_names_test.py BUILD_DIR
"""

import os
import re
import subprocess
import sys
import unittest
import urllib.request

BUILD_DIR = os.path.abspath(sys.argv.pop(1) if len(sys.argv) > 1 else "build")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "deploy"))

import monitoring  # noqa: E402
import suite as suite_lib  # noqa: E402

PROMETHEUS_OWN = {"up"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def exported_names(text):
    """The series names of one exposition, with each histogram's and
    summary's derived series; families declared without a sample yet count
    by their # TYPE line (a labelled family appears once it has a child)."""
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            if kind == "histogram":
                names.update(name + s for s in HISTOGRAM_SUFFIXES)
            elif kind == "summary":
                names.update([name, name + "_sum", name + "_count"])
            else:
                names.add(name)
        elif line and not line.startswith("#"):
            names.add(re.match(r"[A-Za-z_:][A-Za-z0-9_:]*", line).group(0))
    return names


class MetricNamesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.scrapes = {}
        with suite_lib.Suite(BUILD_DIR) as suite:
            for name, service in suite.services.items():
                url = f"http://127.0.0.1:{service.metrics_port}/metrics"
                with urllib.request.urlopen(url, timeout=10) as response:
                    cls.scrapes[name] = response.read().decode()

    def test_scrapes_pass_promtool(self):
        for name, text in self.scrapes.items():
            check = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                                   capture_output=True)
            self.assertEqual(check.returncode, 0,
                             f"{name}: {check.stdout.decode()} {check.stderr.decode()}")

    def test_every_name_the_rules_and_dashboard_use_is_exported(self):
        exported = set()
        for text in self.scrapes.values():
            exported |= exported_names(text)
        used = monitoring.used_metric_names()
        self.assertGreater(len(used), 10)
        missing = {name: where for name, where in used.items()
                   if name not in exported and name not in PROMETHEUS_OWN}
        self.assertFalse(missing, "metric names used but not exported by any service:\n"
                         + "\n".join(f"  {n}: {', '.join(w)}" for n, w in sorted(missing.items())))


if __name__ == "__main__":
    unittest.main(verbosity=2)
