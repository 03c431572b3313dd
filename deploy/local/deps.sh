#!/usr/bin/env bash
# Installs the build and run stack from Debian's archive when something is
# missing; does nothing (and needs no network) when all is there.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  libhiredis-dev libmysqlcppconn-dev prometheus-cpp-dev libgtest-dev libgmock-dev
  libssl-dev libvectorscan-dev libicu-dev libopencc-dev python3-jieba
  mariadb-server mariadb-client redis-server redis-tools
  prometheus python3 python3-grpcio python3-protobuf
  clang-format clang-tidy
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "[deps] installing: ${missing[*]}" >&2
sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
# The packaged services must not start on the machine's default ports: the
# suite runs its own MariaDB and Redis in a scratch folder.
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
  $sudo chmod +x /usr/sbin/policy-rc.d
  trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
fi
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
