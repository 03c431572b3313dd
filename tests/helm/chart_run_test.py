"""The chart's Deployments run: `helm template` renders the chart, and each
rendered container's command, args and env start the real binary here, the
way the kubelet would: the ConfigMap's files and the Secrets' keys are
written where the pod would mount them, `$(VAR)` in env is expanded from the
Secret-backed variables, the Services' names resolve to this machine. Each
service must then answer SERVING on its probe port (grpc.health.v1, what the
kubelet's gRPC probe asks), serve /metrics on its metrics port, and exit 0 on
SIGTERM within the pod's grace period.

MariaDB and Redis come from the environment (`make test`, with-servers.sh).
Run by CTest as
  /usr/bin/python3 tests/helm/chart_run_test.py BUILD_DIR
"""

import hashlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import unittest
import urllib.request

import yaml

BUILD_DIR = os.path.abspath(sys.argv.pop(1) if len(sys.argv) > 1 else "build")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
sys.path.insert(0, HERE)

import grpc  # noqa: E402

import chart_test  # noqa: E402
import suite as suite_lib  # noqa: E402

START_ORDER = ["audit", "credit", "identity", "moderation", "groups"]
RELEASE = "qz"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mysql_from_env():
    """(user, password, host, port) of QUNZU_MYSQL_DSN."""
    dsn = os.environ["QUNZU_MYSQL_DSN"]
    creds, hostport = dsn.split("://", 1)[1].rsplit("@", 1)
    user, password = creds.split(":", 1)
    host, port = hostport.split("?")[0].split(":")
    return user, password, host, int(port)


def redis_from_env():
    host, port = os.environ["QUNZU_REDIS_ADDR"].rsplit(":", 1)
    return host, int(port)


def expand(value, env):
    """The kubelet's $(VAR) expansion of a container's env value."""
    return re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), value)


class ChartRunTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.folder = tempfile.mkdtemp(prefix="qunzu-chart-run-")
        cls.procs = {}
        cls.prefix = "chart_%d_%s_" % (os.getpid(), secrets.token_hex(3))
        user, password, mysql_host, mysql_port = mysql_from_env()
        redis_host, redis_port = redis_from_env()
        # What the operator puts in the Secrets.
        cls.secret_data = {
            "qunzu-mysql": {"username": user, "password": password},
            "qunzu-service-tokens": {n: secrets.token_urlsafe(24) for n in START_ORDER},
            "qunzu-identity-keys": {"pii.keys": f"hmac {secrets.token_hex(32)}\n"
                                                f"key 1 {secrets.token_hex(32)}\n"},
            "qunzu-audit-signing-key": {"signing-key.pem": subprocess.run(
                ["openssl", "genpkey", "-algorithm", "ed25519"], check=True,
                capture_output=True, text=True).stdout},
        }
        auth = "".join(
            f'credentials {{ principal: "service:{n}" role: ROLE_SERVICE service: "{n}" '
            f'token_sha256: "{hashlib.sha256(t.encode()).hexdigest()}" }}\n'
            for n, t in cls.secret_data["qunzu-service-tokens"].items())
        cls.ports = {n: (free_port(), free_port()) for n in START_ORDER}
        values = {
            "mysql": {"host": mysql_host, "port": mysql_port, "schemaPrefix": cls.prefix},
            "redis": {"host": redis_host, "port": redis_port},
            "authConfig": auth,
            "healthInterval": "200ms",
            "drainTimeoutSeconds": 5,
            "services": {n: {"grpcPort": g, "metricsPort": m}
                         for n, (g, m) in cls.ports.items()},
        }
        values_file = os.path.join(cls.folder, "values.yaml")
        with open(values_file, "w") as f:
            yaml.safe_dump(values, f)
        _, objects = chart_test.render([values_file], release=RELEASE)
        cls.deployments = chart_test.by_kind(objects, "Deployment")
        cls.config = chart_test.by_kind(objects, "ConfigMap")[f"{RELEASE}-qunzu-config"]["data"]
        try:
            for name in START_ORDER:
                cls.procs[name] = cls.start(name)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for proc in cls.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stderr.close()
        shutil.rmtree(cls.folder, ignore_errors=True)
        user, password, host, port = mysql_from_env()
        statements = "".join(f"DROP DATABASE IF EXISTS `{cls.prefix}{n}`;" for n in START_ORDER)
        subprocess.run(["mariadb", "--no-defaults", f"-h{host}", f"-P{port}", f"-u{user}",
                        f"-p{password}", "-e", statements], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    @classmethod
    def pod_files(cls, name):
        """The pod's mounts, laid out under a folder of its own: {mount path: local path}."""
        pod = cls.deployments[f"{RELEASE}-qunzu-{name}"]["spec"]["template"]["spec"]
        root = os.path.join(cls.folder, name)
        volumes = {v["name"]: v for v in pod["volumes"]}
        mapping = {}
        for mount in pod["containers"][0]["volumeMounts"]:
            local = os.path.join(root, mount["name"])
            os.makedirs(local, mode=0o700)
            volume = volumes[mount["name"]]
            files = {}
            if "configMap" in volume:
                files = dict(cls.config)
            for source in volume.get("projected", {}).get("sources", []):
                data = cls.secret_data[source["secret"]["name"]]
                for item in source["secret"]["items"]:
                    files[item["path"]] = data[item["key"]]
            for file_name, content in files.items():
                path = os.path.join(local, file_name)
                with open(path, "w") as f:
                    f.write(content)
                os.chmod(path, 0o440)
            mapping[mount["mountPath"]] = local
        return mapping

    @classmethod
    def start(cls, name):
        (container,) = cls.deployments[f"{RELEASE}-qunzu-{name}"]["spec"]["template"]["spec"][
            "containers"]
        mounts = cls.pod_files(name)
        binary = container["command"][0].replace(
            "/usr/local/bin", os.path.join(BUILD_DIR, "services", name))

        def localise(arg):
            flag, equals, value = arg.partition("=")
            for mount_path, local in mounts.items():
                if value.startswith(mount_path + "/"):
                    arg = flag + equals + local + value[len(mount_path):]
            arg = arg.replace("--listen-host=0.0.0.0", "--listen-host=127.0.0.1")
            return re.sub(rf"{RELEASE}-qunzu-[a-z]+:", "127.0.0.1:", arg)

        args = [localise(a) for a in container["args"]]
        env = {k: v for k, v in os.environ.items() if not k.startswith("QUNZU_")}
        for var in container["env"]:
            if "valueFrom" in var:
                ref = var["valueFrom"]["secretKeyRef"]
                env[var["name"]] = cls.secret_data[ref["name"]][ref["key"]]
            else:
                env[var["name"]] = expand(var["value"], env)
        try:
            proc, _, _ = suite_lib.start_listening([binary] + args, env=env)
        except RuntimeError as e:
            raise RuntimeError(f"qunzu-{name} from the chart's manifest: "
                               + " ".join([binary] + args) + f"\n{e}") from None
        return proc

    def container(self, name):
        return self.deployments[f"{RELEASE}-qunzu-{name}"]["spec"]["template"]["spec"][
            "containers"][0]

    def test_1_probe_ports_answer_serving(self):
        for name in START_ORDER:
            probe_port = self.container(name)["readinessProbe"]["grpc"]["port"]
            self.assertEqual(probe_port, self.ports[name][0])
            with grpc.insecure_channel(f"127.0.0.1:{probe_port}") as channel:
                watch = channel.unary_stream(suite_lib.HEALTH_WATCH)
                stream = watch(suite_lib.encode_health_request(""), timeout=30)
                status = None
                for message in stream:
                    status = suite_lib.decode_health_response(message)
                    if status == suite_lib.SERVING:
                        break
                stream.cancel()
                self.assertEqual(status, suite_lib.SERVING, name)

    def test_2_metrics_ports_serve_metrics(self):
        for name in START_ORDER:
            port = next(p["containerPort"] for p in self.container(name)["ports"]
                        if p["name"] == "metrics")
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
                self.assertIn(b"grpc_server_handled_total", r.read(), name)

    def test_3_sigterm_drains_within_the_grace_period(self):
        for name in reversed(START_ORDER):
            grace = self.deployments[f"{RELEASE}-qunzu-{name}"]["spec"]["template"]["spec"][
                "terminationGracePeriodSeconds"]
            proc = self.procs[name]
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(timeout=grace), 0, name)


if __name__ == "__main__":
    unittest.main(verbosity=2)
