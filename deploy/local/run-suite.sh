#!/usr/bin/env bash
# Usage: deploy/local/run-suite.sh BUILD_DIR
# Run by `make run` inside with-servers.sh (which exports QUNZU_MYSQL_DSN and
# QUNZU_REDIS_ADDR): generates fresh tokens for this run, starts the five
# services (credit with the demo policy, deploy/local/demo-credit-policy.sh),
# waits until each reports SERVING, seeds the demo with qunzuctl
# (deploy/local/seed-demo.sh, which prints a walkthrough), prints the
# endpoints, and stops them all on Ctrl-C or when any of them exits.
set -euo pipefail

build_dir=$(cd "${1:-build}" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
run_dir=${QUNZU_RUN_DIR:?run me through deploy/local/with-servers.sh}
secrets_dir="$run_dir/secrets"
logs_dir="$run_dir/logs"
mkdir -p "$secrets_dir" "$logs_dir"
chmod 700 "$secrets_dir"

services=(audit identity groups credit moderation)
declare -A grpc_port=([identity]=50051 [groups]=50052 [credit]=50053 [moderation]=50054 [audit]=50055)
declare -A metrics_port=([identity]=9101 [groups]=9102 [credit]=9103 [moderation]=9104 [audit]=9105)
roles=(platform moderator compliance regulator operator)
pids=()

stop_all() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "[run] services stopped" >&2
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

new_token() { head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '='; }
digest() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

auth="$secrets_dir/auth.textproto"
: >"$auth"
for role in "${roles[@]}"; do
  token=$(new_token)
  printf '%s' "$token" >"$secrets_dir/$role.token"
  echo "credentials { principal: \"local-$role\" role: ROLE_${role^^} token_sha256: \"$(digest "$token")\" }" >>"$auth"
done
for name in "${services[@]}"; do
  token=$(new_token)
  printf '%s' "$token" >"$secrets_dir/$name.service-token"
  echo "credentials { principal: \"service:$name\" role: ROLE_SERVICE service: \"$name\" token_sha256: \"$(digest "$token")\" }" >>"$auth"
done
# identity's field-encryption and blind-index keys: kept across runs, since
# the data encrypted under them is.
identity_keys="$secrets_dir/identity.keys"
if [[ ! -s "$identity_keys" ]]; then
  hex_key() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
  printf 'hmac %s\nkey 1 %s\n' "$(hex_key)" "$(hex_key)" >"$identity_keys"
fi
# audit's checkpoint signing key (Ed25519): kept across runs, like the log
# it signs. Only qunzu-audit reads the variable.
audit_key="$secrets_dir/audit-signing.pem"
if [[ ! -s "$audit_key" ]]; then
  openssl genpkey -algorithm ed25519 -out "$audit_key"
fi
export QUNZU_AUDIT_SIGNING_KEY_FILE="$audit_key"
# Its public half, for verifiers (qunzuctl, qunzu-audit-verify) to pin.
audit_public_key="$secrets_dir/audit-signing.pub.pem"
openssl pkey -in "$audit_key" -pubout -out "$audit_public_key"
chmod 600 "$secrets_dir"/*
demo_credit_policy="$run_dir/demo-credit.textproto"
"$root/deploy/local/demo-credit-policy.sh" "$demo_credit_policy"

for name in "${services[@]}"; do
  extra=()
  if [[ $name == identity ]]; then
    extra=(--pii-keys-file="$identity_keys" --credit-target="127.0.0.1:${grpc_port[credit]}")
  fi
  if [[ $name == credit ]]; then
    extra=(--policy-file="$demo_credit_policy")
  fi
  "$build_dir/services/$name/qunzu-$name" "${extra[@]}" \
    --listen-host=127.0.0.1 \
    --grpc-port="${grpc_port[$name]}" --metrics-port="${metrics_port[$name]}" \
    --auth-config="$auth" \
    --service-token-file="$secrets_dir/$name.service-token" \
    --audit-target="127.0.0.1:${grpc_port[audit]}" \
    2> >(tee "$logs_dir/$name.log" >&2) &
  pids+=($!)
done

for name in "${services[@]}"; do
  if ! /usr/bin/python3 "$root/deploy/local/wait_serving.py" "127.0.0.1:${grpc_port[$name]}" 60; then
    echo "[run] qunzu-$name did not become SERVING; see $logs_dir/$name.log" >&2
    exit 1
  fi
done

# The demo: seeded through qunzuctl, which also prints the walkthrough. A
# failed seed leaves the suite running, with what failed said above.
if ! QUNZUCTL_TOKEN_DIR="$secrets_dir" QUNZU_DEMO_AUDIT_PUBLIC_KEY="$audit_public_key" \
  "$root/deploy/local/seed-demo.sh" "$build_dir" >&2; then
  echo "[run] the demo seed did not complete; the suite keeps running" >&2
fi

cat >&2 <<MSG

Qunzu is up. Endpoints (gRPC, plaintext, reflection on; metrics over HTTP):
$(for name in "${services[@]}"; do printf '  %-11s grpc 127.0.0.1:%s   metrics http://127.0.0.1:%s/metrics\n' "$name" "${grpc_port[$name]}" "${metrics_port[$name]}"; done)

Tokens for this run (one per role) are in $secrets_dir/<role>.token.
Try, from another terminal (the walkthrough above goes further):
  $build_dir/services/qunzuctl/qunzuctl --token-dir $secrets_dir --as regulator health
  $build_dir/services/qunzuctl/qunzuctl --token-dir $secrets_dir --as regulator compliance report --audit-public-key $audit_public_key
  curl -s http://127.0.0.1:${metrics_port[groups]}/metrics | grep grpc_server_handled_total | head
Logs: $logs_dir/. Press Ctrl-C to stop everything.
MSG

# Stop the whole suite when any one service exits on its own.
set +e
wait -n "${pids[@]}"
status=$?
echo "[run] a service exited with status $status; stopping the suite" >&2
exit "$status"
