"""Usage: wait_serving.py HOST:PORT TIMEOUT_SECONDS

Follows grpc.health.v1.Health/Watch on a Qunzu service until it reports
SERVING. Exits 0 when it does, 1 when the timeout passes first.
"""
import sys
import time

import grpc


def main():
    target, timeout = sys.argv[1], float(sys.argv[2])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with grpc.insecure_channel(target) as channel:
            watch = channel.unary_stream("/grpc.health.v1.Health/Watch")
            try:
                for message in watch(b"", timeout=max(0.1, deadline - time.monotonic())):
                    if message[:2] == b"\x08\x01":  # status: SERVING
                        return 0
            except grpc.RpcError:
                # Not listening yet, or the deadline passed: retry until it does.
                time.sleep(0.2)
    return 1


if __name__ == "__main__":
    sys.exit(main())
