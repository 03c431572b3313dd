"""The Helm chart (helm/qunzu) under real Helm: `helm lint --strict` and
`helm template` across a matrix of values, then checks over the rendered
objects. Helm comes from deploy/tools/fetch-helm.sh (pinned by SHA-256).
Run by CTest as
  /usr/bin/python3 tests/helm/chart_test.py
"""

import glob
import os
import subprocess
import sys
import unittest

import yaml

# CTest passes the build folder, which this test does not need.
if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
    sys.argv.pop(1)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CHART = os.path.join(ROOT, "helm", "qunzu")
VALUES = os.path.join(ROOT, "tests", "helm", "values")
MINIMAL = os.path.join(VALUES, "minimal.yaml")
MONITORING_API = "monitoring.coreos.com/v1"
SERVICES = ["identity", "groups", "credit", "moderation", "audit"]
# Planted where a careless chart or user would put a secret: it must never
# come out in a manifest.
SENTINEL = "QUNZU-SENTINEL-7f3c9e"

# The matrix: name -> (extra values files, extra helm flags).
MATRIX = {
    "defaults": ([], []),
    "service-monitor-api": ([], ["--api-versions", MONITORING_API]),
    "no-autoscaling": ([os.path.join(VALUES, "no-autoscaling.yaml")], []),
    "everything-set": ([os.path.join(VALUES, "full.yaml")], ["--api-versions", MONITORING_API]),
}


def fetch_helm():
    out = subprocess.run([os.path.join(ROOT, "deploy", "tools", "fetch-helm.sh")],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


HELM = fetch_helm()


def helm(*args, stdout_only=False):
    """(exit code, output) of one helm command: stdout and stderr, or stdout
    alone (the rendered manifests; stderr has Helm's notes on the symlinked
    policy files)."""
    run = subprocess.run([HELM, *args], capture_output=True, text=True, timeout=120)
    if stdout_only and run.returncode == 0:
        return run.returncode, run.stdout
    return run.returncode, run.stdout + run.stderr


def value_args(files):
    args = ["-f", MINIMAL]
    for f in files:
        args += ["-f", f]
    return args


def render(files=(), flags=(), release="qz"):
    code, out = helm("template", release, CHART, "--namespace", "qunzu",
                     *value_args(files), *flags, stdout_only=True)
    if code != 0:
        raise AssertionError(f"helm template failed:\n{out}")
    return out, [doc for doc in yaml.safe_load_all(out) if doc]


def expected_error(path):
    with open(path) as f:
        first = f.readline()
    assert first.startswith("# expect: "), f"{path} must start with '# expect: <field>'"
    return first[len("# expect: "):].strip()


def by_kind(objects, kind):
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


class ChartTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rendered = {name: render(files, flags) for name, (files, flags) in MATRIX.items()}

    def each(self):
        return [(name, text, objects) for name, (text, objects) in self.rendered.items()]

    # helm lint ----------------------------------------------------------

    def test_lint_strict_passes_across_the_matrix(self):
        # helm lint has no --api-versions: the matrix's values files are what differ.
        for name, (files, _) in MATRIX.items():
            code, out = helm("lint", "--strict", CHART, *value_args(files))
            self.assertEqual(code, 0, f"{name}:\n{out}")
            self.assertIn("0 chart(s) failed", out)

    def test_chart_defaults_alone_fail_naming_each_required_value(self):
        code, out = helm("lint", "--strict", CHART)
        self.assertNotEqual(code, 0, out)
        for field in ["image.tag", "mysql.host", "mysql.existingSecret", "redis.host",
                      "authConfig", "serviceTokens.existingSecret",
                      "services.identity.piiKeys.existingSecret",
                      "services.audit.signingKey.existingSecret"]:
            self.assertIn(f"- {field}:", out, field)

    def test_each_bad_values_file_fails_lint_and_template_naming_the_field(self):
        files = sorted(glob.glob(os.path.join(VALUES, "bad", "*.yaml")))
        self.assertGreater(len(files), 15)
        for path in files:
            with self.subTest(values=os.path.basename(path)):
                field = expected_error(path)
                code, out = helm("lint", "--strict", CHART, "-f", MINIMAL, "-f", path)
                self.assertNotEqual(code, 0, out)
                errors = [line for line in out.splitlines() if line.startswith("- ")]
                self.assertTrue(any(field in line for line in errors),
                                f"no error naming {field!r}:\n{out}")
                code, out = helm("template", "qz", CHART, "-f", MINIMAL, "-f", path)
                self.assertNotEqual(code, 0, out)
                self.assertIn(field, out)
                self.assertNotIn(SENTINEL, out)

    def test_values_the_schema_cannot_judge_fail_at_render_naming_the_field(self):
        for path in sorted(glob.glob(os.path.join(VALUES, "bad-render", "*.yaml"))):
            with self.subTest(values=os.path.basename(path)):
                code, out = helm("template", "qz", CHART, "-f", MINIMAL, "-f", path)
                self.assertNotEqual(code, 0, out)
                self.assertIn(expected_error(path), out)

    def test_kube_version_below_the_chart_minimum_is_refused(self):
        code, out = helm("template", "qz", CHART, "-f", MINIMAL, "--kube-version", "1.25.0")
        self.assertNotEqual(code, 0, out)
        self.assertIn("kubeVersion", out)
        code, out = helm("template", "qz", CHART, "-f", MINIMAL, "--kube-version", "1.30.0")
        self.assertEqual(code, 0, out)

    # The rendered objects ---------------------------------------------------

    def test_every_service_has_its_objects(self):
        for name, _, objects in self.each():
            with self.subTest(values=name):
                kinds = {}
                for o in objects:
                    kinds.setdefault(o["kind"], set()).add(o["metadata"]["name"])
                for service in SERVICES:
                    full = f"qz-qunzu-{service}"
                    self.assertIn(full, kinds["Deployment"])
                    self.assertIn(full, kinds["Service"])
                    if name != "no-autoscaling":
                        self.assertIn(full, kinds["NetworkPolicy"])
                    if name == "everything-set" and service == "audit":
                        self.assertNotIn(full, kinds.get("PodDisruptionBudget", set()))
                        self.assertNotIn(full, kinds.get("HorizontalPodAutoscaler", set()))
                    else:
                        self.assertIn(full, kinds["PodDisruptionBudget"])
                self.assertIn("qz-qunzu-config", kinds["ConfigMap"])

    def test_selectors_match_the_pod_labels(self):
        for name, _, objects in self.each():
            with self.subTest(values=name):
                deployments = by_kind(objects, "Deployment")
                pods = {n: d["spec"]["template"]["metadata"]["labels"] for n, d in deployments.items()}
                for n, d in deployments.items():
                    self.assertTrue(matches(d["spec"]["selector"]["matchLabels"], pods[n]), n)
                for kind, get in [("Service", lambda o: o["spec"]["selector"]),
                                  ("PodDisruptionBudget", lambda o: o["spec"]["selector"]["matchLabels"]),
                                  ("NetworkPolicy", lambda o: o["spec"]["podSelector"]["matchLabels"])]:
                    for n, o in by_kind(objects, kind).items():
                        picked = [p for p, labels in pods.items() if matches(get(o), labels)]
                        self.assertEqual(picked, [n], f"{kind} {n} selects {picked}")
                for n, hpa in by_kind(objects, "HorizontalPodAutoscaler").items():
                    self.assertEqual(hpa["spec"]["scaleTargetRef"]["name"], n)
                    self.assertIn(n, deployments)
                    self.assertNotIn("replicas", deployments[n]["spec"],
                                     "an autoscaled Deployment must leave replicas to its HPA")

    def test_fixed_replicas_without_autoscaling(self):
        _, objects = self.rendered["no-autoscaling"]
        self.assertEqual(by_kind(objects, "HorizontalPodAutoscaler"), {})
        self.assertEqual(by_kind(objects, "NetworkPolicy"), {})
        for n, d in by_kind(objects, "Deployment").items():
            self.assertEqual(d["spec"]["replicas"], 3, n)

    def test_probes_are_grpc_on_numeric_ports_the_container_opens(self):
        for name, _, objects in self.each():
            with self.subTest(values=name):
                for n, d in by_kind(objects, "Deployment").items():
                    (container,) = d["spec"]["template"]["spec"]["containers"]
                    ports = {p["containerPort"] for p in container["ports"]}
                    grpc_port = next(p["containerPort"] for p in container["ports"]
                                     if p["name"] == "grpc")
                    self.assertIn(f"--grpc-port={grpc_port}", container["args"], n)
                    for probe in ["startupProbe", "readinessProbe", "livenessProbe"]:
                        spec = container[probe]
                        self.assertEqual(set(spec) & {"httpGet", "tcpSocket", "exec"}, set(), n)
                        port = spec["grpc"]["port"]
                        self.assertIsInstance(port, int, f"{n} {probe}")
                        self.assertIn(port, ports, f"{n} {probe}")
                        self.assertEqual(port, grpc_port, f"{n} {probe}")

    def test_pods_run_unprivileged_on_a_read_only_root(self):
        for name, _, objects in self.each():
            with self.subTest(values=name):
                for n, d in by_kind(objects, "Deployment").items():
                    pod = d["spec"]["template"]["spec"]
                    self.assertTrue(pod["securityContext"]["runAsNonRoot"], n)
                    self.assertGreater(pod["securityContext"]["runAsUser"], 0, n)
                    for c in pod["containers"]:
                        sc = c["securityContext"]
                        self.assertTrue(sc["runAsNonRoot"], n)
                        self.assertTrue(sc["readOnlyRootFilesystem"], n)
                        self.assertFalse(sc["allowPrivilegeEscalation"], n)
                        self.assertEqual(sc["capabilities"]["drop"], ["ALL"], n)
                        self.assertNotIn("add", sc["capabilities"], n)
                        self.assertTrue(c["resources"]["requests"], n)
                        self.assertTrue(c["resources"]["limits"], n)

    def test_moderation_has_room_for_a_million_term_rule_set(self):
        # 200 MiB in force + ~420 MiB while the next set is built or loaded
        # (docs/benchmarks.md) + the process: over the 512Mi default.
        def mib(quantity):
            units = {"Mi": 1, "Gi": 1024}
            return int(quantity[:-2]) * units[quantity[-2:]]

        for name, _, objects in self.each():
            with self.subTest(values=name):
                for n, d in by_kind(objects, "Deployment").items():
                    (c,) = d["spec"]["template"]["spec"]["containers"]
                    if n.endswith("moderation"):
                        self.assertGreaterEqual(mib(c["resources"]["limits"]["memory"]), 1024, n)

    def test_moderation_is_given_its_projection_cache_size(self):
        for name, _, objects in self.each():
            with self.subTest(values=name):
                for n, d in by_kind(objects, "Deployment").items():
                    (c,) = d["spec"]["template"]["spec"]["containers"]
                    flags = [a for a in c["args"] if a.startswith("--redis-cache-entries=")]
                    if n.endswith("moderation"):
                        entries = 500000 if name == "everything-set" else 200000
                        self.assertEqual(flags, [f"--redis-cache-entries={entries}"], n)
                    else:
                        self.assertEqual(flags, [], n)

    def test_images_are_pinned_never_latest(self):
        for name, text, objects in self.each():
            with self.subTest(values=name):
                self.assertNotIn(":latest", text)
                for n, d in by_kind(objects, "Deployment").items():
                    (container,) = d["spec"]["template"]["spec"]["containers"]
                    image = container["image"]
                    if name == "everything-set":
                        self.assertRegex(image, r"@sha256:[0-9a-f]{64}$", n)
                    else:
                        self.assertEqual(image, "qunzu:3a672cd", n)
                    self.assertEqual(container["command"], [f"/usr/local/bin/{n[len('qz-'):]}"])

    def test_secrets_are_referenced_by_name_and_never_rendered(self):
        names = {"qunzu-mysql", "qunzu-service-tokens", "qunzu-identity-keys",
                 "qunzu-audit-signing-key", "qunzu-redis"}
        for name, text, objects in self.each():
            with self.subTest(values=name):
                self.assertEqual(by_kind(objects, "Secret"), {}, "the chart creates no Secret")
                for n, d in by_kind(objects, "Deployment").items():
                    pod = d["spec"]["template"]["spec"]
                    refs = []
                    for c in pod["containers"]:
                        for env in c.get("env", []):
                            if "valueFrom" in env:
                                ref = env["valueFrom"]["secretKeyRef"]
                                refs.append(ref["name"])
                                self.assertEqual(set(ref), {"name", "key"}, n)
                            else:
                                # Only the DSN, built from the secret's variables.
                                self.assertEqual(env["name"], "QUNZU_MYSQL_DSN", n)
                                self.assertIn("$(QUNZU_MYSQL_PASSWORD)", env["value"], n)
                        self.assertEqual(c.get("envFrom"), None, n)
                    for volume in pod["volumes"]:
                        for source in volume.get("projected", {}).get("sources", []):
                            if "secret" in source:
                                refs.append(source["secret"]["name"])
                        if "secret" in volume:
                            refs.append(volume["secret"]["secretName"])
                    self.assertTrue(refs, n)
                    self.assertLessEqual(set(refs), names, n)

    def test_each_service_mounts_only_its_own_secrets_and_the_flags_point_at_them(self):
        _, objects = self.rendered["defaults"]
        for n, d in by_kind(objects, "Deployment").items():
            service = n[len("qz-qunzu-"):]
            pod = d["spec"]["template"]["spec"]
            (secrets,) = [v for v in pod["volumes"] if v["name"] == "secrets"]
            paths = {item["path"]: (s["secret"]["name"], item["key"])
                     for s in secrets["projected"]["sources"] for item in s["secret"]["items"]}
            expected = {}
            if service != "audit":
                expected["service-token"] = ("qunzu-service-tokens", service)
            if service == "identity":
                expected["pii.keys"] = ("qunzu-identity-keys", "pii.keys")
            if service == "audit":
                expected["signing-key.pem"] = ("qunzu-audit-signing-key", "signing-key.pem")
            self.assertEqual(paths, expected, n)
            args = pod["containers"][0]["args"]
            for path in expected:
                self.assertTrue(any(a.endswith("=/etc/qunzu/secrets/" + path) for a in args),
                                f"{n} never passes {path}")

    def test_redis_auth_comes_from_its_secret_where_redis_is_used(self):
        _, objects = self.rendered["everything-set"]
        for n, d in by_kind(objects, "Deployment").items():
            pod = d["spec"]["template"]["spec"]
            container = pod["containers"][0]
            (secrets,) = [v for v in pod["volumes"] if v["name"] == "secrets"]
            mounted = {(s["secret"]["name"], item["key"], item["path"])
                       for s in secrets["projected"]["sources"] for item in s["secret"]["items"]}
            user_refs = [e["valueFrom"]["secretKeyRef"] for e in container.get("env", [])
                         if e["name"] == "QUNZU_REDIS_USERNAME"]
            flag = "--redis-password-file=/etc/qunzu/secrets/redis-password"
            if n.endswith("-audit"):
                self.assertNotIn(("qunzu-redis", "password", "redis-password"), mounted, n)
                self.assertNotIn(flag, container["args"], n)
                self.assertEqual(user_refs, [], n)
            else:
                self.assertIn(("qunzu-redis", "password", "redis-password"), mounted, n)
                self.assertIn(flag, container["args"], n)
                self.assertEqual(user_refs, [{"name": "qunzu-redis", "key": "username"}], n)
        # Without a Secret there is no AUTH at all.
        _, objects = self.rendered["defaults"]
        for n, d in by_kind(objects, "Deployment").items():
            args = d["spec"]["template"]["spec"]["containers"][0]["args"]
            self.assertFalse([a for a in args if a.startswith("--redis-password-file")], n)

    def test_config_checksum_rolls_pods_when_a_policy_changes(self):
        def checksums(flags):
            _, objects = render(flags=flags)
            return {d["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
                    for d in by_kind(objects, "Deployment").values()}
        before = checksums([])
        self.assertEqual(len(before), 1)
        after = checksums(["--set-string", "policies.credit=version: \"changed\""])
        self.assertEqual(len(after), 1)
        self.assertNotEqual(before, after)
        _, objects = self.rendered["defaults"]
        config = by_kind(objects, "ConfigMap")["qz-qunzu-config"]["data"]
        with open(os.path.join(ROOT, "deploy", "policies", "credit.textproto")) as f:
            self.assertEqual(config["credit.textproto"].strip(), f.read().strip())
        with open(os.path.join(ROOT, "deploy", "policies", "groups.textproto")) as f:
            self.assertEqual(config["groups.textproto"].strip(), f.read().strip())

    def test_service_monitor_only_with_the_operator_api_and_on_a_real_port(self):
        self.assertEqual(by_kind(self.rendered["defaults"][1], "ServiceMonitor"), {})
        self.assertEqual(by_kind(self.rendered["no-autoscaling"][1], "ServiceMonitor"), {})
        for name in ["service-monitor-api", "everything-set"]:
            _, objects = self.rendered[name]
            monitors = by_kind(objects, "ServiceMonitor")
            self.assertEqual(len(monitors), 1, name)
            (monitor,) = monitors.values()
            services = [s for s in by_kind(objects, "Service").values()
                        if matches(monitor["spec"]["selector"]["matchLabels"],
                                   s["metadata"]["labels"])]
            self.assertEqual(len(services), len(SERVICES), name)
            for endpoint in monitor["spec"]["endpoints"]:
                for service in services:
                    port_names = {p["name"] for p in service["spec"]["ports"]}
                    self.assertIn(endpoint["port"], port_names, service["metadata"]["name"])
        code, out = helm("template", "qz", CHART, "-f", MINIMAL, "--api-versions",
                         MONITORING_API, "--set", "metrics.serviceMonitor.enabled=false")
        self.assertEqual(code, 0, out)
        self.assertNotIn("kind: ServiceMonitor", out)

    def test_prometheus_rule_is_the_tested_alerts_file(self):
        self.assertEqual(by_kind(self.rendered["defaults"][1], "PrometheusRule"), {})
        _, objects = self.rendered["service-monitor-api"]
        (rule,) = by_kind(objects, "PrometheusRule").values()
        with open(os.path.join(ROOT, "deploy", "prometheus", "alerts.yml")) as f:
            self.assertEqual(rule["spec"]["groups"], yaml.safe_load(f)["groups"])

    def test_service_ports_reach_named_container_ports(self):
        for name, _, objects in self.each():
            with self.subTest(values=name):
                deployments = by_kind(objects, "Deployment")
                for n, s in by_kind(objects, "Service").items():
                    (container,) = deployments[n]["spec"]["template"]["spec"]["containers"]
                    named = {p["name"]: p["containerPort"] for p in container["ports"]}
                    for port in s["spec"]["ports"]:
                        self.assertIn(port["targetPort"], named, n)
                        self.assertEqual(port["port"], named[port["targetPort"]], n)

    def test_clients_are_pointed_at_the_services_of_the_release(self):
        _, objects = self.rendered["defaults"]
        args = {n[len("qz-qunzu-"):]: d["spec"]["template"]["spec"]["containers"][0]["args"]
                for n, d in by_kind(objects, "Deployment").items()}
        for service in ["identity", "groups", "credit", "moderation"]:
            self.assertIn("--audit-target=qz-qunzu-audit:50055", args[service])
            self.assertIn("--service-token-file=/etc/qunzu/secrets/service-token",
                          args[service])
        self.assertIn("--credit-target=qz-qunzu-credit:50053", args["identity"])
        self.assertIn("--moderation-target=qz-qunzu-moderation:50054", args["groups"])
        self.assertIn("--policy-file=/etc/qunzu/config/credit.textproto", args["credit"])
        self.assertIn("--policy-file=/etc/qunzu/config/groups.textproto", args["groups"])
        self.assertNotIn("--redis-pool-size=16", args["audit"])
        for service, a in args.items():
            self.assertIn("--listen-host=0.0.0.0", a, service)
            self.assertIn("--auth-config=/etc/qunzu/config/auth.textproto", a, service)

    def test_network_policy_admits_the_release_and_the_named_callers(self):
        _, objects = self.rendered["everything-set"]
        for n, policy in by_kind(objects, "NetworkPolicy").items():
            spec = policy["spec"]
            self.assertEqual(spec["policyTypes"], ["Ingress", "Egress"])
            grpc_rule, metrics_rule = spec["ingress"]
            self.assertEqual(grpc_rule["ports"], [{"port": "grpc", "protocol": "TCP"}])
            self.assertEqual(len(grpc_rule["from"]), 2, n)
            self.assertEqual(metrics_rule["from"][0]["namespaceSelector"]["matchLabels"],
                             {"kubernetes.io/metadata.name": "monitoring"})
            database = [r for r in spec["egress"]
                        if any(p["port"] == 3307 for p in r.get("ports", []))]
            self.assertEqual(len(database), 1, n)
            self.assertEqual(database[0]["to"], [{"ipBlock": {"cidr": "10.20.0.0/16"}}])


if __name__ == "__main__":
    unittest.main(verbosity=2)
