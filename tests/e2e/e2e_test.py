"""End to end: MariaDB, Redis and the five Qunzu binaries, driven from
Python's grpcio. Run by CTest (`make test`) as
  /usr/bin/python3 tests/e2e/e2e_test.py BUILD_DIR
"""

import importlib
import os
import subprocess
import sys
import unittest
import urllib.request

BUILD_DIR = os.path.abspath(sys.argv.pop(1) if len(sys.argv) > 1 else "build")
sys.path.insert(0, os.path.join(BUILD_DIR, "python"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402

from qunzu.common.v1 import common_pb2  # noqa: E402
import suite as suite_lib  # noqa: E402

MODULES = {name: importlib.import_module(f"qunzu.{name}.v1.{name}_pb2")
           for name in suite_lib.SERVICES}
ROLE_BY_ENUM = {common_pb2.ROLE_PLATFORM: "platform", common_pb2.ROLE_MODERATOR: "moderator",
                common_pb2.ROLE_COMPLIANCE: "compliance",
                common_pb2.ROLE_REGULATOR: "regulator", common_pb2.ROLE_OPERATOR: "operator"}


def methods_of(name):
    """(method name, AccessPolicy) for every RPC of a service."""
    descriptor = MODULES[name].DESCRIPTOR.services_by_name[
        suite_lib.SERVICES[name].rsplit(".", 1)[1]]
    for method in descriptor.methods:
        yield method.name, method.GetOptions().Extensions[common_pb2.access]


class SuiteTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.suite = suite_lib.Suite(BUILD_DIR).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.suite.__exit__(None, None, None)

    def call(self, name, method, metadata=None):
        full = f"/{suite_lib.SERVICES[name]}/{method}"
        rpc = self.suite.services[name].channel.unary_unary(full)
        return rpc(b"", metadata=metadata, timeout=10)

    def test_01_every_service_reports_serving(self):
        for name, full in suite_lib.SERVICES.items():
            self.assertTrue(self.suite.watch_until(name, suite_lib.SERVING, timeout=30), name)
            self.assertEqual(self.suite.health(name), suite_lib.SERVING, name)
            self.assertEqual(self.suite.health(name, full), suite_lib.SERVING, name)

    def test_01b_every_service_runs_on_the_configured_allocator(self):
        # QUNZU_TCMALLOC (default ON) links the service binaries with
        # tcmalloc; a binary that only names it (dropped by --as-needed, or a
        # loader that binds malloc elsewhere) still runs on glibc's malloc.
        with open(os.path.join(BUILD_DIR, "CMakeCache.txt"), encoding="utf-8") as cache:
            wanted = "QUNZU_TCMALLOC:BOOL=ON" in cache.read()
        for name, service in self.suite.services.items():
            with open(f"/proc/{service.proc.pid}/maps", encoding="utf-8") as maps:
                mapped = "libtcmalloc_minimal" in maps.read()
            self.assertEqual(mapped, wanted, name)
            # And every library's malloc binds to it (the loader says so).
            out = subprocess.run([self.suite.binary(name), "--help"], capture_output=True,
                                 text=True, timeout=30,
                                 env={**os.environ, "LD_DEBUG": "bindings"}).stderr
            targets = {line.split(" to ", 1)[1].split(" [", 1)[0]
                       for line in out.splitlines() if "normal symbol `malloc'" in line}
            self.assertTrue(targets, name)
            self.assertEqual({"libtcmalloc_minimal" in t for t in targets}, {wanted},
                             f"{name}: malloc binds to {sorted(targets)}")

    def test_02_every_rpc_declares_who_may_call_it(self):
        for name in suite_lib.SERVICES:
            for method, policy in methods_of(name):
                self.assertTrue(policy.roles, f"{name}.{method} declares no roles")

    def test_03_no_token_is_unauthenticated_everywhere(self):
        for name in suite_lib.SERVICES:
            for method, _ in methods_of(name):
                with self.assertRaises(grpc.RpcError, msg=f"{name}.{method}") as caught:
                    self.call(name, method)
                self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
                self.assertEqual(suite_lib.error_reason(caught.exception), "TOKEN_MISSING")
        with self.assertRaises(grpc.RpcError) as caught:
            self.call("identity", "GetAccount", (("authorization", "Bearer forged"),))
        self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
        self.assertEqual(suite_lib.error_reason(caught.exception), "TOKEN_INVALID")

    def test_04_wrong_role_is_permission_denied_everywhere(self):
        for name in suite_lib.SERVICES:
            for method, policy in methods_of(name):
                allowed = {ROLE_BY_ENUM[r] for r in policy.roles if r in ROLE_BY_ENUM}
                outsiders = [role for role in suite_lib.ROLES if role not in allowed]
                for role in outsiders:
                    with self.assertRaises(grpc.RpcError, msg=f"{name}.{method} {role}") as c:
                        self.call(name, method, self.suite.metadata(role))
                    self.assertEqual(c.exception.code(), grpc.StatusCode.PERMISSION_DENIED,
                                     f"{name}.{method} as {role}")
                    self.assertEqual(suite_lib.error_reason(c.exception), "ROLE_NOT_ALLOWED")
                for role in allowed:
                    try:
                        self.call(name, method, self.suite.metadata(role))
                    except grpc.RpcError as e:
                        self.assertNotIn(e.code(), (grpc.StatusCode.PERMISSION_DENIED,
                                                    grpc.StatusCode.UNAUTHENTICATED),
                                         f"{name}.{method} as {role}")

    def test_05_metrics_pass_promtool(self):
        for name, service in self.suite.services.items():
            url = f"http://127.0.0.1:{service.metrics_port}/metrics"
            with urllib.request.urlopen(url, timeout=10) as response:
                text = response.read()
            self.assertIn(b"grpc_server_handled_total", text, name)
            self.assertIn(b"qunzu_dependency_up", text, name)
            check = subprocess.run(["promtool", "check", "metrics"], input=text,
                                   capture_output=True)
            self.assertEqual(check.returncode, 0,
                             f"{name}: {check.stdout.decode()} {check.stderr.decode()}")

    def test_06_redis_outage_turns_services_not_serving_and_back(self):
        # Audit keeps no Redis state, so only the other four depend on it.
        users = [name for name in suite_lib.SERVICES if name != "audit"]
        self.suite.redis.stop()
        for name in users:
            self.assertTrue(self.suite.watch_until(name, suite_lib.NOT_SERVING), name)
        self.assertEqual(self.suite.health("audit"), suite_lib.SERVING)
        self.suite.redis.start()
        for name in users:
            self.assertTrue(self.suite.watch_until(name, suite_lib.SERVING), name)

    def test_06b_a_redis_that_may_evict_projections_is_not_served(self):
        # allkeys-* may evict keys without an expiry: the projections, and
        # an evicted blacklist would let a blacklisted sender post.
        users = [name for name in suite_lib.SERVICES if name != "audit"]
        self.assertEqual(self.suite.redis.cli("CONFIG", "SET", "maxmemory-policy",
                                              "allkeys-lru"), "OK")
        try:
            for name in users:
                self.assertTrue(self.suite.watch_until(name, suite_lib.NOT_SERVING), name)
                port = self.suite.services[name].metrics_port
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                            timeout=10) as response:
                    metrics = response.read().decode()
                self.assertIn('qunzu_dependency_up{dependency="redis"} 0', metrics, name)
            self.assertEqual(self.suite.health("audit"), suite_lib.SERVING)
        finally:
            self.suite.redis.cli("CONFIG", "SET", "maxmemory-policy", "noeviction")
        for name in users:
            self.assertTrue(self.suite.watch_until(name, suite_lib.SERVING), name)

    def test_07_reflection_lists_the_service_to_authenticated_callers(self):
        # ServerReflectionRequest{list_services: "*"} and the raw response,
        # so the check needs no reflection stubs.
        path = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
        for name, full in suite_lib.SERVICES.items():
            rpc = self.suite.services[name].channel.stream_stream(path)
            with self.assertRaises(grpc.RpcError) as caught:
                list(rpc(iter([b"\x3a\x01*"]), timeout=10))
            self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
            replies = list(rpc(iter([b"\x3a\x01*"]), metadata=self.suite.metadata("regulator"),
                               timeout=10))
            self.assertEqual(len(replies), 1)
            self.assertIn(full.encode(), replies[0], name)

    def test_08_sigterm_drains_and_exits_cleanly(self):
        self.assertEqual(self.suite.stop_service("credit"), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
