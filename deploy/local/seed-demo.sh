#!/usr/bin/env bash
# Usage: deploy/local/seed-demo.sh BUILD_DIR
#
# Seeds the demo of `make run` through qunzuctl itself, once the five
# services are SERVING: the operator's agreements (service agreement and
# platform convention), the demo rule set (deploy/local/demo-terms.txt),
# verified accounts that accepted both agreements, one account left
# unverified for the walkthrough, and groups of every tier (LARGE and HUGE
# approved by a moderator). Then a little moderation history (a blocked and
# a held message, a report), and a walkthrough a newcomer can paste.
#
# Every step says ok, skip or FAIL. A step whose RPC answers UNIMPLEMENTED
# (not built in this checkout) is skipped and listed at the end; any other
# failure makes the script exit 1.
#
# Environment: QUNZUCTL_TOKEN_DIR (the <role>.token files, required),
# QUNZUCTL_*_TARGET (default: the local ports of make run), and for the
# walkthrough QUNZU_DEMO_AUDIT_PUBLIC_KEY (PEM), QUNZU_MYSQL_DSN and
# QUNZU_DEMO_AUDIT_SCHEMA (default qunzu_audit).
set -uo pipefail

build_dir=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
ctl="$build_dir/services/qunzuctl/qunzuctl"
: "${QUNZUCTL_TOKEN_DIR:?set QUNZUCTL_TOKEN_DIR to the folder of <role>.token files}"
export QUNZUCTL_TOKEN_DIR
unimplemented=$((64 + 12))
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=() skipped=()
out=""

# step DESCRIPTION QUNZUCTL_ARGS...: runs qunzuctl, keeps its output in $out.
step() {
  local what=$1 rc
  shift
  if out=$("$ctl" "$@" 2>"$tmp/err"); then
    echo "  ok    $what"
    return 0
  else
    rc=$?
  fi
  if [[ $rc == "$unimplemented" ]]; then
    skipped+=("$what")
    echo "  skip  $what: the server answers UNIMPLEMENTED (not built in this checkout)"
  else
    failed+=("$what")
    echo "  FAIL  $what (exit $rc): $(tr '\n' ' ' <"$tmp/err")"
  fi
  return 1
}

echo "[demo] seeding through $ctl"

echo "[demo] operator: agreements and rules"
step "publish the service agreement" --as operator agreements publish \
  --kind service_agreement --label demo-1 --title "群组服务协议 (demo)" \
  --body "用户应遵守法律法规，不得利用群组传播违法信息。平台依法对违规群组和用户采取处置措施。"
step "publish the platform convention" --as operator agreements publish \
  --kind platform_convention --label demo-1 --title "群组公约 (demo)" \
  --body "文明交流，尊重他人；群主和管理员对群组负有管理责任。"
step "load the demo rule set (Chinese and English terms, one HOLD term)" --as operator \
  rules upsert --name demo --description "make run demo terms" --file "$root/deploy/local/demo-terms.txt"

echo "[demo] platform: accounts, verified, agreements accepted"
declare -A account=()
# nickname legal-name resident-id-number (GB 11643 check characters valid)
while read -r key nickname legal_name id_number; do
  step "create account $nickname" --as platform --print account.account_id \
    accounts create "$nickname" --platform-user-id "demo-$key" || continue
  account[$key]=$out
  step "verify $nickname ($legal_name)" --as platform accounts verify "$out" \
    --name "$legal_name" --id-number "$id_number" || continue
  for kind in service_agreement platform_convention; do
    step "$nickname accepts the $kind" --as platform agreements accept "${account[$key]}" --kind "$kind"
  done
done <<'ACCOUNTS'
alice 小明 王小明 110105199003070017
bob Bob 李华 310115198805120026
carol 小张 张伟 44030419950823003X
ACCOUNTS
if step "create account 新用户 (left unverified for the walkthrough)" --as platform \
  --print account.account_id accounts create 新用户 --platform-user-id demo-dave; then
  account[dave]=$out
fi

echo "[demo] groups of every tier"
declare -A group=()
# key owner tier category name
while read -r key owner tier category name; do
  [[ -n ${account[$owner]:-} ]] || { failed+=("group $name: owner $owner missing"); continue; }
  step "$tier group $name" --as platform --print group.group_id groups create \
    --actor "${account[$owner]}" --name "$name" --category "$category" --tier "$tier" \
    --description "make run demo" || continue
  group[$key]=$out
  if [[ $tier == large || $tier == huge ]]; then
    step "moderator approves the $tier group $name" --as moderator groups review "${group[$key]}" \
      --decision approve --reason "demo: creation reviewed"
  fi
done <<'GROUPS'
book alice small hobby 读书会
hike bob medium local_community 上海徒步
dev carol large work 开发者交流
city alice huge local_community 城市生活
GROUPS
if [[ -n ${group[book]:-} ]]; then
  for member in bob carol; do
    [[ -n ${account[$member]:-} ]] &&
      step "$member joins 读书会" --as platform groups join "${group[book]}" --actor "${account[$member]}"
  done
fi

echo "[demo] moderation history"
if [[ -n ${group[book]:-} && -n ${account[bob]:-} && -n ${account[alice]:-} ]]; then
  step "bob posts a gambling advert (BLOCK)" --as platform screen message \
    --actor "${account[bob]}" --group "${group[book]}" --message-id demo-m1 "欢迎加入网络赌博群，稳赚不赔"
  step "bob posts unconfirmed insider news (HOLD for review)" --as platform screen message \
    --actor "${account[bob]}" --group "${group[book]}" --message-id demo-m2 "听说有内部消息，明天停课"
  step "alice reports bob's advert" --as platform reports submit --actor "${account[alice]}" \
    --kind message --group "${group[book]}" --account "${account[bob]}" --message-id demo-m1 \
    --category gambling --description "群里发赌博广告"
  step "list the report queue" --as moderator reports list
fi

echo
if ((${#skipped[@]})); then
  echo "[demo] could not do ${#skipped[@]} step(s); their RPCs are not built in this checkout:"
  printf '         - %s\n' "${skipped[@]}"
fi
if ((${#failed[@]})); then
  echo "[demo] FAILED ${#failed[@]} step(s):"
  printf '         - %s\n' "${failed[@]}"
fi

pub=${QUNZU_DEMO_AUDIT_PUBLIC_KEY:-<audit public key PEM>}
dsn=${QUNZU_MYSQL_DSN:-mysql://qunzu:qunzu@127.0.0.1:33061}
cat <<WALK

Walkthrough: paste these into another terminal, from $root.
  export QUNZUCTL_TOKEN_DIR=$QUNZUCTL_TOKEN_DIR
  Q=$ctl

  # 1. Verify an account: ${account[dave]:+account ${account[dave]} (新用户) was created unverified.}
  A=${account[dave]:-<account id>}
  \$Q --as platform accounts verify \$A --name 赵敏 --id-number 510107199211110041
  \$Q --as platform agreements accept \$A --kind service_agreement
  \$Q --as platform agreements accept \$A --kind platform_convention
  \$Q --as compliance accounts verification get \$A

  # 2. Create a group
  G=\$(\$Q --as platform --print group.group_id groups create --actor \$A --name 周末徒步 --category hobby --tier small)
  \$Q --as moderator groups members list \$G

  # 3. Post a message that is blocked
  \$Q --as platform screen message --actor \$A --group \$G --message-id m-1 "一起来玩网络赌博，稳赚"

  # 4. Report it, and see the queue
  R=\$(\$Q --as platform --print report.report_id reports submit --actor ${account[alice]:-<reporter id>} --kind message --group \$G --account \$A --message-id m-1 --category gambling --description "赌博广告")
  \$Q --as moderator reports list

  # 5. Close the group on that report
  \$Q --as moderator dispositions group \$G --kind close --report \$R --statement "群内发布赌博信息"

  # 6. See the filing to the authority
  \$Q --as compliance filings list

  # 7. Verify the audit log: the signed checkpoint, then the whole log independently
  \$Q --as regulator audit checkpoint --public-key $pub
  $build_dir/services/audit/qunzu-audit-verify --mysql-dsn=$dsn --mysql-schema=${QUNZU_DEMO_AUDIT_SCHEMA:-qunzu_audit} --public-key=$pub
  \$Q --as regulator compliance report --audit-public-key $pub
WALK

((${#failed[@]} == 0))
