"""The PromQL that deploy/prometheus/alerts.yml and deploy/grafana/qunzu.json
use, and the metric names in it. Shared by tests/deploy/dashboard_test.py
and tests/e2e/metrics_names_test.py."""

import json
import os
import re

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RULES = os.path.join(ROOT, "deploy", "prometheus", "alerts.yml")
DASHBOARD = os.path.join(ROOT, "deploy", "grafana", "qunzu.json")

# Grafana's variables, replaced by what they stand for so promtool can parse.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$service": "qunzu\\\\..*"}

_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
             "and", "or", "unless", "offset", "inf", "nan"}


def rule_expressions():
    """{alert or record name: expr} of the rules file."""
    with open(RULES) as f:
        groups = yaml.safe_load(f)["groups"]
    return {r.get("alert") or r["record"]: r["expr"] for g in groups for r in g["rules"]}


def load_dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def dashboard_panels(dashboard=None):
    """Every panel, those inside collapsed rows too."""
    out = []
    for panel in (dashboard or load_dashboard())["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def dashboard_expressions(dashboard=None):
    """{"<panel title> <refId>": expr, "variable <name>": query} of the dashboard."""
    dashboard = dashboard or load_dashboard()
    out = {}
    for panel in dashboard_panels(dashboard):
        for target in panel.get("targets", []):
            out[f"{panel['title']} {target['refId']}"] = target["expr"]
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]
            query = query["query"] if isinstance(query, dict) else query
            match = re.fullmatch(r"label_values\((\w+),\s*\w+\)", query)
            if match:
                out[f"variable {variable['name']}"] = match.group(1)
    return out


def grafana_to_promql(expr):
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def metric_names(expr):
    """The metric names an expression selects (not functions, labels or keywords)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)        # string literals
    text = re.sub(r"\{[^}]*\}", " ", text)                    # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)                   # ranges
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        name = match.group(0)
        rest = text[match.end():].lstrip()
        if name.lower() in _KEYWORDS or rest.startswith("("):
            continue
        names.add(name)
    return names


def used_metric_names():
    """{metric name: [where it is used]} across the rules and the dashboard."""
    used = {}
    for where, expr in rule_expressions().items():
        for name in metric_names(expr):
            used.setdefault(name, []).append(f"alerts.yml {where}")
    for where, expr in dashboard_expressions().items():
        for name in metric_names(grafana_to_promql(expr)):
            used.setdefault(name, []).append(f"qunzu.json {where}")
    return used
