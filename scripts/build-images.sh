#!/usr/bin/env bash
# Build the container images the test node runs, without a registry, and save them as
# docker-archive tarballs for `ctr images import`:
#   mxgate-base     Debian minbase + python3 (mmdebstrap, the machine's own apt sources)
#   mxgate          the project's unmodified Dockerfile, `buildah bud --build-arg
#                   PYTHON_IMAGE=<mxgate-base>` (the default base stays the public python image)
#   mxgate-postfix  Debian minbase + postfix: the upstream MTA as a pod
#   mxgate-pause    the pod sandbox: a static Go program that waits for a signal
# Output in ~/.cache/mxgate/images/<name>-<key>.tar, keyed by the inputs' hash; prints one
# line per image: "<name> <ref> <built|cached> <tarball>". Needs root, buildah, mmdebstrap, go.
# It must not push anywhere or name a mirror host: apt sources are the machine's own.
# Usage: scripts/build-images.sh [all|base|mxgate|postfix|pause]   (MXGATE_REBUILD=1 rebuilds)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=${MXGATE_CACHE:-$HOME/.cache/mxgate}
OUT=$CACHE/images
mkdir -p "$OUT"
export BUILDAH_ISOLATION=chroot
SUITE=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
BASE_PKGS=python3,python3-venv,python3-pip,python-is-python3,ca-certificates,passwd
POSTFIX_PKGS=postfix,ca-certificates,libsasl2-modules
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

key() { sha256sum | cut -c1-12; }

# The machine's apt sources (deb822 .sources or one-line .list files), never a named mirror.
apt_sources() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
    [[ -s $f ]] && echo "$f"
  done
  return 0
}

# rootfs tarball -> image in buildah's store, committed as $2, with env PATH and $3.. config.
import_rootfs() { # tarball ref [buildah config args...]
  local tar=$1 ref=$2 ctr mnt
  shift 2
  ctr=$(buildah from scratch)
  mnt=$(buildah mount "$ctr")
  tar -C "$mnt" -xf "$tar"
  buildah umount "$ctr" >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@" "$ctr"
  buildah commit -q --rm "$ctr" "$ref" >/dev/null
}

save() { # ref tarball: write the archive, then drop older builds of the same image
  local old key name=${1%:*}
  local short=${name#localhost/}
  rm -f "$2.tmp"
  buildah push -q "$1" "docker-archive:$2.tmp:$1" >/dev/null
  mv "$2.tmp" "$2"
  for old in "$OUT/$short"-*.tar; do
    [[ $(basename "$old") =~ ^$short-([0-9a-f]{12})\.tar$ && $old != "$2" ]] || continue
    key=${BASH_REMATCH[1]}
    rm -f "$old"
    buildah rmi "$name:$key" >/dev/null 2>&1 || true
  done
}

debian_image() { # name packages extra-config...
  local name=$1 pkgs=$2 k tar ref rootfs
  shift 2
  k=$( (echo "$SUITE $pkgs" && cat $(apt_sources)) | key)
  ref=localhost/$name:$k
  tar=$OUT/$name-$k.tar
  if [[ -s $tar && -z ${MXGATE_REBUILD:-} ]] && buildah inspect "$ref" >/dev/null 2>&1; then
    echo "$name $ref cached $tar"
    return
  fi
  rootfs=$(mktemp "$OUT/.$name-rootfs.XXXXXX.tar")
  # shellcheck disable=SC2046
  mmdebstrap --quiet --variant=minbase --include="$pkgs" --aptopt='Acquire::Retries "3"' \
    --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/*' \
    "$SUITE" "$rootfs" $(apt_sources)
  import_rootfs "$rootfs" "$ref" "$@"
  rm -f "$rootfs"
  save "$ref" "$tar"
  echo "$name $ref built $tar"
}

BASE_REF=""
base() {
  local line
  line=$(debian_image mxgate-base "$BASE_PKGS")
  echo "$line"
  BASE_REF=$(echo "$line" | cut -d' ' -f2)
}

mxgate() {
  [[ -n $BASE_REF ]] || base >/dev/null
  local k ref tar
  # Everything the Dockerfile copies (.dockerignore) plus the Dockerfile and the base.
  k=$( (echo "$BASE_REF" && cat Dockerfile .dockerignore pyproject.toml README.md requirements/runtime.txt requirements/build.txt &&
    find gateway operator -type f ! -path '*/__pycache__/*' ! -name '*.pyc' ! -path '*.egg-info*' |
    LC_ALL=C sort | xargs cat) | key)
  ref=localhost/mxgate:$k
  tar=$OUT/mxgate-$k.tar
  if [[ -s $tar && -z ${MXGATE_REBUILD:-} ]]; then
    echo "mxgate $ref cached $tar"
    return
  fi
  # pip in the build trusts what the host trusts (read-only bundle); nothing else is mounted.
  buildah bud -q --layers=false --build-arg "PYTHON_IMAGE=$BASE_REF" \
    -v "$CA_BUNDLE:$CA_BUNDLE:ro" -t "$ref" -f Dockerfile . >/dev/null
  save "$ref" "$tar"
  echo "mxgate $ref built $tar"
}

postfix() {
  debian_image mxgate-postfix "$POSTFIX_PKGS" --entrypoint '["/usr/sbin/postfix","start-fg"]'
}

pause() {
  local k ref tar dir ctr mnt
  k=$(cat tools/k8s/pause/go.mod tools/k8s/pause/main.go | key)
  ref=localhost/mxgate-pause:$k
  tar=$OUT/mxgate-pause-$k.tar
  if [[ -s $tar && -z ${MXGATE_REBUILD:-} ]]; then
    echo "mxgate-pause $ref cached $tar"
    return
  fi
  dir=$(mktemp -d)
  (cd tools/k8s/pause && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$dir/pause" .)
  ctr=$(buildah from scratch)
  mnt=$(buildah mount "$ctr")
  install -m 0755 "$dir/pause" "$mnt/pause"
  buildah umount "$ctr" >/dev/null
  buildah config --entrypoint '["/pause"]' --user 65535:65535 "$ctr"
  buildah commit -q --rm "$ctr" "$ref" >/dev/null
  rm -rf "$dir"
  save "$ref" "$tar"
  echo "mxgate-pause $ref built $tar"
}

if [[ $(id -u) -ne 0 ]]; then
  echo "build-images: needs root (mmdebstrap, buildah)" >&2
  exit 3
fi
for tool in buildah mmdebstrap go; do
  command -v "$tool" >/dev/null || {
    echo "build-images: no $tool on PATH" >&2
    exit 3
  }
done
exec {lock}>"$OUT/.lock"
flock "$lock"
case ${1:-all} in
  base) base ;;
  mxgate) mxgate ;;
  postfix) postfix ;;
  pause) pause ;;
  all) pause && base && mxgate && postfix ;;
  *)
    echo "usage: $0 [all|base|mxgate|postfix|pause]" >&2
    exit 2
    ;;
esac
