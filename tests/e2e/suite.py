"""Starts the five Qunzu binaries against a real MariaDB and a Redis of the
test's own, for end-to-end tests driven by Python's grpcio (a gRPC
implementation that is not ours).

MariaDB comes from the environment (QUNZU_MYSQL_DSN, set by `make test`);
every Suite uses schemas of its own. Redis is started here, on a unix socket
in a private folder, so a test can stop and restart it.
"""

import json
import os
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import grpc

SERVICES = {
    # name: full gRPC service name
    "audit": "qunzu.audit.v1.AuditService",
    "identity": "qunzu.identity.v1.IdentityService",
    "groups": "qunzu.groups.v1.GroupService",
    "credit": "qunzu.credit.v1.CreditService",
    "moderation": "qunzu.moderation.v1.ModerationService",
}

ROLES = ["platform", "moderator", "compliance", "regulator", "operator"]

HEALTH_CHECK = "/grpc.health.v1.Health/Check"
HEALTH_WATCH = "/grpc.health.v1.Health/Watch"
SERVING, NOT_SERVING = 1, 2


def encode_health_request(service):
    """grpc.health.v1.HealthCheckRequest{service} on the wire."""
    data = service.encode()
    return (b"\x0a" + bytes([len(data)]) + data) if data else b""


def decode_health_response(data):
    """grpc.health.v1.HealthCheckResponse.status from the wire."""
    if len(data) >= 2 and data[0] == 0x08:
        return data[1]
    return 0


class Redis:
    """A redis-server on a unix socket that can be stopped and restarted."""

    def __init__(self, folder):
        self.folder = folder
        self.socket = os.path.join(folder, "redis.sock")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", "0", "--unixsocket", self.socket,
             "--unixsocketperm", "700", "--save", "", "--appendonly", "no",
             "--dir", self.folder],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ping = subprocess.run(["redis-cli", "-s", self.socket, "ping"],
                                  capture_output=True, text=True)
            if ping.stdout.strip() == "PONG":
                return
            if self.proc.poll() is not None:
                raise RuntimeError("redis-server exited during start-up")
            time.sleep(0.05)
        raise RuntimeError("redis-server did not answer within 30 s")

    def cli(self, *args):
        """A redis-cli command's output, stripped."""
        out = subprocess.run(["redis-cli", "-s", self.socket, *args],
                             capture_output=True, text=True, check=True)
        return out.stdout.strip()

    def hget(self, key, field):
        """One hash field as redis-cli prints it ("" when absent)."""
        out = subprocess.run(["redis-cli", "-s", self.socket, "HGET", key, field],
                             capture_output=True, text=True, check=True)
        return out.stdout.strip()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        self.proc = None


def start_listening(argv, env=None, timeout=60):
    """Starts a Qunzu binary and reads its JSON log until it says "listening".
    Returns (process, the listening event, the log lines so far); a binary
    that exits or stays silent is killed and its last lines raised."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lines = []
    deadline = time.monotonic() + timeout
    buffer = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], 1.0)
        if not ready:
            if proc.poll() is not None:
                break
            continue
        chunk = os.read(proc.stderr.fileno(), 65536)
        if not chunk:
            break
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            lines.append(line.decode(errors="replace"))
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "listening":
                return proc, event, lines
    proc.kill()
    proc.wait()
    proc.stderr.close()
    raise RuntimeError(f"{os.path.basename(argv[0])} did not start:\n" + "\n".join(lines[-30:]))


class Service:
    def __init__(self, name, proc, grpc_port, metrics_port):
        self.name = name
        self.proc = proc
        self.grpc_port = grpc_port
        self.metrics_port = metrics_port
        self.channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
        self.stderr_lines = []


class Suite:
    """The whole suite, started in __enter__ and stopped in __exit__."""

    def __init__(self, build_dir, moderation_args=()):
        self.build_dir = build_dir
        # Extra flags for moderation, e.g. --authority-target of a receiver
        # the test serves, or shorter report deadlines.
        self.moderation_args = list(moderation_args)
        self.folder = tempfile.mkdtemp(prefix="qunzu-e2e-")
        self.redis = Redis(self.folder)
        self.schema_prefix = "e2e_%d_%s_" % (os.getpid(), secrets.token_hex(3))
        self.tokens = {role: secrets.token_urlsafe(24) for role in ROLES}
        self.service_tokens = {name: secrets.token_urlsafe(24) for name in SERVICES}
        self.services = {}
        # Each service's command line, for a second replica of it.
        self.args = {}

    def binary(self, name):
        return os.path.join(self.build_dir, "services", name, f"qunzu-{name}")

    def write_auth_config(self):
        import hashlib
        lines = []
        for role, token in self.tokens.items():
            digest = hashlib.sha256(token.encode()).hexdigest()
            lines.append(f'credentials {{ principal: "e2e-{role}" role: ROLE_{role.upper()} '
                         f'token_sha256: "{digest}" }}')
        for name, token in self.service_tokens.items():
            digest = hashlib.sha256(token.encode()).hexdigest()
            lines.append(f'credentials {{ principal: "service:{name}" role: ROLE_SERVICE '
                         f'service: "{name}" token_sha256: "{digest}" }}')
        path = os.path.join(self.folder, "auth.textproto")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        for name, token in self.service_tokens.items():
            with open(os.path.join(self.folder, f"{name}.token"), "w") as f:
                f.write(token)
        return path

    def write_identity_keys(self):
        """identity's field-encryption keys and blind-index key, fresh per run."""
        path = os.path.join(self.folder, "identity.keys")
        with open(path, "w") as f:
            f.write(f"hmac {secrets.token_hex(32)}\nkey 1 {secrets.token_hex(32)}\n")
        os.chmod(path, 0o600)
        return path

    def write_audit_signing_key(self):
        """audit's Ed25519 checkpoint signing key, fresh per run."""
        path = os.path.join(self.folder, "audit-signing.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", path],
                       check=True, capture_output=True)
        os.chmod(path, 0o600)
        self.audit_signing_key = path
        return path

    def base_args(self, name, auth_config):
        return [
            "--listen-host=127.0.0.1", "--grpc-port=0", "--metrics-port=0",
            f"--mysql-dsn={os.environ['QUNZU_MYSQL_DSN']}",
            f"--mysql-schema={self.schema_prefix}{name}",
            f"--redis-addr=unix:{self.redis.socket}",
            f"--auth-config={auth_config}",
            f"--service-token-file={os.path.join(self.folder, name + '.token')}",
            "--health-interval=200ms", "--drain-timeout=5s",
        ]

    def start_service(self, name, extra_args):
        proc, event, lines = start_listening([self.binary(name)] + extra_args)
        service = Service(name, proc, event["grpc_port"], event["metrics_port"])
        service.stderr_lines = lines
        self.args.setdefault(name, extra_args)
        return service

    def start_replica(self, name, key):
        """Another process of service `name` on the same database and Redis
        (its own ports), as services[key]; stopped with the suite."""
        args = [a for a in self.args[name] if not a.startswith("--grpc-port=")]
        self.services[key] = self.start_service(name, args + ["--grpc-port=0"])
        return self.services[key]

    def __enter__(self):
        try:
            self.redis.start()
            auth_config = self.write_auth_config()
            # Key index segments of 8 leaves, so its background pass runs.
            audit = self.start_service("audit", self.base_args("audit", auth_config) + [
                f"--signing-key-file={self.write_audit_signing_key()}",
                "--key-index-segment-leaves=8"])
            self.services["audit"] = audit
            # credit first, so identity knows where to send its credit events.
            # moderation before groups: groups screens text through it.
            # moderation disposes through groups, which starts after it: groups
            # gets a port chosen now.
            groups_port = free_port()
            for name in ["credit", "identity", "moderation", "groups"]:
                args = self.base_args(name, auth_config) + [
                    f"--audit-target=127.0.0.1:{audit.grpc_port}"]
                if name == "moderation":
                    args += [f"--groups-target=127.0.0.1:{groups_port}",
                             f"--credit-target=127.0.0.1:{self.services['credit'].grpc_port}"]
                    args += self.moderation_args
                if name == "identity":
                    args += [f"--pii-keys-file={self.write_identity_keys()}",
                             f"--credit-target=127.0.0.1:{self.services['credit'].grpc_port}"]
                if name == "groups":
                    args = [a for a in args if not a.startswith("--grpc-port=")]
                    args += [f"--grpc-port={groups_port}",
                             f"--moderation-target=127.0.0.1:"
                             f"{self.services['moderation'].grpc_port}"]
                self.services[name] = self.start_service(name, args)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def stop_service(self, name, timeout=30):
        """SIGTERM, then the exit code (None when it had to be killed)."""
        service = self.services[name]
        if service.proc.poll() is None:
            service.proc.send_signal(signal.SIGTERM)
            try:
                service.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                service.proc.kill()
                service.proc.wait()
                return None
        service.channel.close()
        return service.proc.returncode

    def __exit__(self, *exc):
        for name in list(self.services):
            self.stop_service(name)
            self.services[name].proc.stderr.close()
        self.redis.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
        self.drop_schemas()
        return False

    def drop_schemas(self):
        dsn = os.environ["QUNZU_MYSQL_DSN"]
        rest = dsn.split("://", 1)[1]
        creds, hostport = rest.rsplit("@", 1)
        user, password = creds.split(":", 1)
        host, port = hostport.split("/")[0].split(":")
        statements = "".join(f"DROP DATABASE IF EXISTS `{self.schema_prefix}{name}`;"
                             for name in SERVICES)
        subprocess.run(["mariadb", "--no-defaults", f"-h{host}", f"-P{port}", f"-u{user}",
                        f"-p{password}", "-e", statements], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    # Calls -----------------------------------------------------------------

    def health(self, name, service=""):
        call = self.services[name].channel.unary_unary(HEALTH_CHECK)
        return decode_health_response(call(encode_health_request(service), timeout=10))

    def watch_until(self, name, wanted, timeout=60):
        """Follows Health.Watch until the status is `wanted`; True if seen."""
        call = self.services[name].channel.unary_stream(HEALTH_WATCH)
        stream = call(encode_health_request(""), timeout=timeout)
        try:
            for message in stream:
                if decode_health_response(message) == wanted:
                    return True
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                raise
        finally:
            stream.cancel()
        return False

    def metadata(self, role):
        return (("authorization", f"Bearer {self.tokens[role]}"),)


def free_port():
    """A loopback port free right now (for a service others must know first)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def error_reason(error):
    """The ErrorInfo reason from a failed call's rich status trailer, or ''.
    Needs the build's Python modules on sys.path."""
    from qunzu.common.v1 import common_pb2
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            details = common_pb2.StatusDetails.FromString(value)
            for any_detail in details.details:
                info = common_pb2.ErrorInfo()
                if any_detail.Unpack(info):
                    return info.reason
    return ""


def python_path(build_dir):
    sys.path.insert(0, os.path.join(build_dir, "python"))
