"""End to end for the audit service over gRPC: appends from a service
token (idempotent, refused to others), checkpoints and proofs that verify
in a few lines of Python, a regulator's query logged, metrics, and the
stand-alone qunzu-audit-verify against the live schema. Run by CTest as
  /usr/bin/python3 tests/e2e/audit_test.py BUILD_DIR
"""

import hashlib
import os
import subprocess
import sys
import time
import unittest
import urllib.request

BUILD_DIR = os.path.abspath(sys.argv.pop(1) if len(sys.argv) > 1 else "build")
sys.path.insert(0, os.path.join(BUILD_DIR, "python"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402

from qunzu.audit.v1 import audit_pb2  # noqa: E402
from qunzu.common.v1 import common_pb2  # noqa: E402
import suite as suite_lib  # noqa: E402

SERVICE = "/qunzu.audit.v1.AuditService/"


def node(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion(index, size, leaf, proof):
    """RFC 9162 2.1.3.2."""
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


class AuditTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.suite = suite_lib.Suite(BUILD_DIR).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.suite.__exit__(None, None, None)

    def rpc(self, method, request, response_type, token):
        call = self.suite.services["audit"].channel.unary_unary(
            SERVICE + method, request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_type.FromString)
        return call(request, metadata=(("authorization", f"Bearer {token}"),), timeout=30)

    def as_service(self, name):
        return self.suite.service_tokens[name]

    def as_role(self, role):
        return self.suite.tokens[role]

    def event(self, service, source_id, action="GROUP_CREATED"):
        return audit_pb2.AuditEvent(
            service=service, source_id=source_id, action=action, principal="chat-backend",
            role=common_pb2.ROLE_PLATFORM, actor_account_id=7,
            subjects=[audit_pb2.Subject(kind=audit_pb2.SUBJECT_KIND_GROUP, id=source_id)],
            request_id=f"e2e-{source_id}", details={"k": "v"})

    def test_1_append_is_idempotent_and_only_for_our_services(self):
        request = audit_pb2.AppendRequest(
            request_id="groups-outbox-900001-900002",
            events=[self.event("groups", 900001), self.event("groups", 900002)])
        first = self.rpc("Append", request, audit_pb2.AppendResponse, self.as_service("groups"))
        self.assertEqual(len(first.results), 2)
        self.assertFalse(any(r.duplicate for r in first.results))
        again = self.rpc("Append", request, audit_pb2.AppendResponse, self.as_service("groups"))
        self.assertTrue(all(r.duplicate for r in again.results))
        self.assertEqual([r.leaf_index for r in again.results],
                         [r.leaf_index for r in first.results])

        with self.assertRaises(grpc.RpcError) as denied:
            self.rpc("Append", request, audit_pb2.AppendResponse, self.as_role("platform"))
        self.assertEqual(denied.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        with self.assertRaises(grpc.RpcError) as mismatch:
            self.rpc("Append", request, audit_pb2.AppendResponse, self.as_service("credit"))
        self.assertEqual(mismatch.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        self.assertEqual(suite_lib.error_reason(mismatch.exception), "SOURCE_MISMATCH")
        big = self.event("groups", 900003)
        for i in range(8):
            big.details[f"k{i}"] = "x" * 4000
        with self.assertRaises(grpc.RpcError) as too_large:
            self.rpc("Append", audit_pb2.AppendRequest(request_id="r", events=[
                self.event("groups", 900004), big]), audit_pb2.AppendResponse,
                self.as_service("groups"))
        self.assertEqual(too_large.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(suite_lib.error_reason(too_large.exception), "ENTRY_TOO_LARGE")

        # Invalid UTF-8 on the wire (Python will not encode it, so patch the
        # bytes): INVALID_ARGUMENT, nothing appended.
        wire = audit_pb2.AppendRequest(request_id="utf8", events=[
            self.event("groups", 900005)]).SerializeToString()
        wire = wire.replace(b"chat-backend", b"chat\xc3\x28backend")
        raw = self.suite.services["audit"].channel.unary_unary(
            SERVICE + "Append", request_serializer=lambda b: b,
            response_deserializer=audit_pb2.AppendResponse.FromString)
        with self.assertRaises(grpc.RpcError) as utf8:
            raw(wire, metadata=(("authorization", f"Bearer {self.as_service('groups')}"),),
                timeout=30)
        self.assertEqual(utf8.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(suite_lib.error_reason(utf8.exception), "REQUEST_UNPARSABLE")

    def test_2_checkpoint_and_inclusion_proofs_verify(self):
        cp = self.rpc("GetCheckpoint", audit_pb2.GetCheckpointRequest(),
                      audit_pb2.GetCheckpointResponse, self.as_role("regulator"))
        size = cp.checkpoint.tree_size
        self.assertGreater(size, 0)
        self.assertEqual(len(cp.signing_key.public_key), 32)
        self.assertEqual(cp.checkpoint.key_id,
                         hashlib.sha256(cp.signing_key.public_key).hexdigest())
        for index in range(size):
            proof = self.rpc("GetInclusionProof",
                             audit_pb2.GetInclusionProofRequest(leaf_index=index, tree_size=size),
                             audit_pb2.GetInclusionProofResponse, self.as_role("operator"))
            self.assertEqual(root_from_inclusion(index, size, proof.leaf_hash, proof.hashes),
                             cp.checkpoint.root_hash)
        with self.assertRaises(grpc.RpcError) as past:
            self.rpc("GetInclusionProof",
                     audit_pb2.GetInclusionProofRequest(leaf_index=0, tree_size=10**9),
                     audit_pb2.GetInclusionProofResponse, self.as_role("operator"))
        self.assertEqual(past.exception.code(), grpc.StatusCode.OUT_OF_RANGE)
        verified = self.rpc("VerifyRange", audit_pb2.VerifyRangeRequest(),
                            audit_pb2.VerifyRangeResponse, self.as_role("compliance"))
        self.assertTrue(verified.ok, verified.first_failure.detail)

    def test_3_regulator_queries_are_logged(self):
        found = self.rpc("Query", audit_pb2.QueryRequest(
            filter=audit_pb2.AuditFilter(service="groups"), purpose="inspection 42"),
            audit_pb2.QueryResponse, self.as_role("regulator"))
        self.assertGreaterEqual(len(found.entries), 2)
        logged = self.rpc("Query", audit_pb2.QueryRequest(
            filter=audit_pb2.AuditFilter(service="audit", action="AUDIT_LOG_QUERIED")),
            audit_pb2.QueryResponse, self.as_role("compliance"))
        self.assertEqual(len(logged.entries), 1)
        self.assertEqual(logged.entries[0].event.details["purpose"], "inspection 42")
        self.assertEqual(logged.entries[0].event.role, common_pb2.ROLE_REGULATOR)
        status = self.rpc("GetRetentionStatus", audit_pb2.GetRetentionStatusRequest(),
                          audit_pb2.GetRetentionStatusResponse, self.as_role("operator"))
        self.assertEqual(status.retention.seconds, 365 * 86400)
        self.assertEqual(status.minimum_retention.seconds, 180 * 86400)

    def test_4_metrics(self):
        port = self.suite.services["audit"].metrics_port
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
        for name in [b"qunzu_audit_entries_appended_total", b"qunzu_audit_append_batch_size",
                     b"qunzu_audit_append_seconds", b"qunzu_audit_tree_size",
                     b"qunzu_audit_newest_checkpoint_age_seconds",
                     b"qunzu_audit_purge_runs_total", b"qunzu_audit_key_index_lag_entries"]:
            self.assertIn(name, text)

    def test_5_standalone_verifier(self):
        public = os.path.join(self.suite.folder, "audit-signing.pub.pem")
        subprocess.run(["openssl", "pkey", "-in", self.suite.audit_signing_key, "-pubout",
                        "-out", public], check=True, capture_output=True)
        result = subprocess.run(
            [os.path.join(BUILD_DIR, "services", "audit", "qunzu-audit-verify"),
             f"--mysql-dsn={os.environ['QUNZU_MYSQL_DSN']}",
             f"--mysql-schema={self.suite.schema_prefix}audit", f"--public-key={public}"],
            capture_output=True, text=True, timeout=120)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("OK:", result.stdout)

    def index_lag(self):
        port = self.suite.services["audit"].metrics_port
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
        for line in text.decode().splitlines():
            if line.startswith("qunzu_audit_key_index_lag_entries "):
                return float(line.split()[1])
        return None

    def test_6_the_key_index_is_built_in_the_background(self):
        events = [self.event("groups", 910000 + i) for i in range(40)]
        for i, e in enumerate(events):
            e.actor_account_id = 70000 + i
        self.rpc("Append", audit_pb2.AppendRequest(request_id="groups-outbox-910000",
                                                   events=events),
                 audit_pb2.AppendResponse, self.as_service("groups"))
        # The service's own pass covers all but the segment still filling
        # (8 leaves, --key-index-segment-leaves in suite.py).
        deadline = time.monotonic() + 30
        lag = self.index_lag()
        while lag is None or lag >= 8:
            self.assertLess(time.monotonic(), deadline, f"key index lag {lag}")
            time.sleep(0.05)
            lag = self.index_lag()
        by_actor = self.rpc("Query", audit_pb2.QueryRequest(
            filter=audit_pb2.AuditFilter(actor_account_id=70017)),
            audit_pb2.QueryResponse, self.as_role("compliance"))
        self.assertEqual([e.event.source_id for e in by_actor.entries], [910017])
        by_subject = self.rpc("Query", audit_pb2.QueryRequest(filter=audit_pb2.AuditFilter(
            subject=audit_pb2.Subject(kind=audit_pb2.SUBJECT_KIND_GROUP, id=910023))),
            audit_pb2.QueryResponse, self.as_role("compliance"))
        self.assertEqual([e.event.source_id for e in by_subject.entries], [910023])
        by_request = self.rpc("Query", audit_pb2.QueryRequest(
            filter=audit_pb2.AuditFilter(request_id="e2e-910005")),
            audit_pb2.QueryResponse, self.as_role("compliance"))
        self.assertEqual([e.event.source_id for e in by_request.entries], [910005])


if __name__ == "__main__":
    unittest.main(verbosity=2)
