#!/usr/bin/env bash
# Usage: deploy/local/demo-credit-policy.sh OUT_FILE
# Writes the credit policy of the local demo: the default policy
# (deploy/policies/credit.textproto) with one change, a verified identity
# starting at 900 points (level 4, "leader") instead of 600, so the demo's
# freshly verified accounts may create groups of every tier, LARGE and HUGE
# included. Never use it outside the demo.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:?usage: $0 OUT_FILE}
sed -e 's/^version: "default-1"/version: "demo-1"/' \
    -e '/CREDIT_EVENT_TYPE_IDENTITY_VERIFIED/s/delta: 600/delta: 900/' \
    "$root/deploy/policies/credit.textproto" >"$out"
grep -q 'version: "demo-1"' "$out" && grep -q 'IDENTITY_VERIFIED delta: 900' "$out" || {
  echo "demo-credit-policy: deploy/policies/credit.textproto changed shape; update me" >&2
  exit 1
}
