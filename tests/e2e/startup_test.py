"""Start-up failures end the process with a message that names the cause,
never a hang: a bad flag, a bad credentials file, an unreachable database, a
port in use. Run by CTest as
  /usr/bin/python3 tests/e2e/startup_test.py BUILD_DIR
"""

import os
import socket
import subprocess
import sys
import tempfile
import unittest

BUILD_DIR = os.path.abspath(sys.argv.pop(1) if len(sys.argv) > 1 else "build")
SERVICES = ["identity", "groups", "credit", "moderation", "audit"]
TIMEOUT = 60  # a hang fails the test instead of the run


def binary(name):
    return os.path.join(BUILD_DIR, "services", name, f"qunzu-{name}")


class StartupTest(unittest.TestCase):
    def setUp(self):
        self.folder = tempfile.TemporaryDirectory(prefix="qunzu-startup-")
        self.auth = os.path.join(self.folder.name, "auth.textproto")
        with open(self.auth, "w") as f:
            f.write('credentials { principal: "p" role: ROLE_PLATFORM '
                    'token_sha256: "' + "0" * 64 + '" }\n')
        self.token = os.path.join(self.folder.name, "service.token")
        with open(self.token, "w") as f:
            f.write("not-a-real-token\n")
        self.signing_key = os.path.join(self.folder.name, "audit-signing.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", self.signing_key],
                       check=True, capture_output=True)
        self.keys = os.path.join(self.folder.name, "identity.keys")
        with open(self.keys, "w") as f:
            f.write("hmac " + "a" * 64 + "\nkey 1 " + "1" * 64 + "\n")

    def tearDown(self):
        self.folder.cleanup()

    def run_service(self, name, *overrides, env=None):
        """Runs a binary with working defaults, each `--flag=value` in
        `overrides` replacing the default of that flag."""
        flags = {
            "--listen-host": "127.0.0.1", "--grpc-port": "0", "--metrics-port": "0",
            "--auth-config": self.auth, "--service-token-file": self.token,
            "--mysql-dsn": os.environ.get("QUNZU_MYSQL_DSN", ""),
            "--redis-addr": os.environ.get("QUNZU_REDIS_ADDR", ""),
            "--mysql-schema": f"startup_{os.getpid()}_{name}",
        }
        if name == "audit":
            flags["--signing-key-file"] = self.signing_key
        if name == "identity":
            flags["--pii-keys-file"] = self.keys
        extra = []
        for override in overrides:
            key, _, value = override.partition("=")
            if key in flags:
                flags[key] = value
            else:
                extra.append(override)
        args = [f"{key}={value}" for key, value in flags.items()] + extra
        return subprocess.run([binary(name)] + args, capture_output=True, text=True,
                              timeout=TIMEOUT, env=env)

    def assert_fails_naming(self, result, *words):
        self.assertNotEqual(result.returncode, 0, result.stderr)
        for word in words:
            self.assertIn(word, result.stderr)

    def test_help_exits_zero_and_lists_flags(self):
        for name in SERVICES:
            result = subprocess.run([binary(name), "--help"], capture_output=True, text=True,
                                    timeout=TIMEOUT)
            self.assertEqual(result.returncode, 0, name)
            out = result.stdout + result.stderr
            self.assertIn("--mysql-dsn", out)
            self.assertIn("QUNZU_MYSQL_DSN", out)

    def test_unknown_flag(self):
        for name in SERVICES:
            self.assert_fails_naming(self.run_service(name, "--no-such-flag=1"), "--no-such-flag")

    def test_bad_flag_value(self):
        self.assert_fails_naming(self.run_service("groups", "--grpc-port=http"), "--grpc-port",
                                 "http")
        self.assert_fails_naming(self.run_service("groups", "--grpc-port=70000"), "--grpc-port")
        self.assert_fails_naming(self.run_service("credit", "--health-interval=soon"),
                                 "--health-interval", "soon")

    def test_bad_environment_value_names_the_variable(self):
        env = dict(os.environ, QUNZU_METRICS_PORT="-5")
        result = subprocess.run([binary("identity"), f"--auth-config={self.auth}"],
                                capture_output=True, text=True, timeout=TIMEOUT, env=env)
        self.assert_fails_naming(result, "QUNZU_METRICS_PORT")

    def test_missing_credentials_file(self):
        missing = os.path.join(self.folder.name, "nope.textproto")
        self.assert_fails_naming(self.run_service("audit", f"--auth-config={missing}"), missing)

    def test_malformed_credentials_file(self):
        with open(self.auth, "w") as f:
            f.write('credentials { principal: "p" rolle: ROLE_PLATFORM }\n')
        self.assert_fails_naming(self.run_service("identity"), self.auth, "rolle")

    def test_invalid_credential(self):
        with open(self.auth, "w") as f:
            f.write('credentials { principal: "p" role: ROLE_SERVICE token_sha256: "'
                    + "0" * 64 + '" }\n')
        self.assert_fails_naming(self.run_service("identity"), "credentials[0].service")

    def test_service_token_required_where_audit_events_are_sent(self):
        env = {k: v for k, v in os.environ.items() if k != "QUNZU_SERVICE_TOKEN_FILE"}
        result = subprocess.run([binary("groups"), f"--auth-config={self.auth}"],
                                capture_output=True, text=True, timeout=TIMEOUT, env=env)
        self.assert_fails_naming(result, "--service-token-file")

    def test_identity_requires_valid_pii_keys(self):
        self.assert_fails_naming(self.run_service("identity", "--pii-keys-file="),
                                 "--pii-keys-file")
        with open(self.keys, "w") as f:
            f.write("key 1 abc\n")
        self.assert_fails_naming(self.run_service("identity"), self.keys, "line 1")

    def test_audit_refuses_retention_below_180_days(self):
        self.assert_fails_naming(self.run_service("audit", "--retention-days=179"),
                                 "--retention-days", "179", "180")

    def test_audit_requires_a_signing_key(self):
        self.assert_fails_naming(self.run_service("audit", "--signing-key-file="),
                                 "--signing-key-file")
        with open(self.signing_key, "w") as f:
            f.write("not a key\n")
        self.assert_fails_naming(self.run_service("audit"), self.signing_key)

    def test_redis_credentials_must_be_readable_and_complete(self):
        missing = os.path.join(self.folder.name, "no-such-password")
        result = self.run_service("groups", f"--redis-password-file={missing}")
        self.assert_fails_naming(result, "--redis-password-file", missing)
        self.assert_fails_naming(self.run_service("groups", "--redis-username=qunzu"),
                                 "--redis-username", "--redis-password-file")

    def test_unreachable_database(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        # Nothing listens on `port` now.
        result = self.run_service("credit", f"--mysql-dsn=mysql://qunzu:secret@127.0.0.1:{port}")
        self.assert_fails_naming(result, f"127.0.0.1:{port}")
        self.assertNotIn("secret", result.stderr)

    def test_bad_dsn(self):
        self.assert_fails_naming(self.run_service("credit", "--mysql-dsn=postgres://x"),
                                 "--mysql-dsn")

    def test_grpc_port_in_use(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            port = s.getsockname()[1]
            self.assert_fails_naming(self.run_service("moderation", f"--grpc-port={port}"),
                                     str(port))

    def test_metrics_port_in_use(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            port = s.getsockname()[1]
            self.assert_fails_naming(self.run_service("groups", f"--metrics-port={port}"),
                                     str(port))


if __name__ == "__main__":
    unittest.main(verbosity=2)
