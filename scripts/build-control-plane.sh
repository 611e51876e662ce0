#!/usr/bin/env bash
# Build (or reuse) the pinned Kubernetes tools the test suite runs against, from Go modules:
#   helm            helm.sh/helm/v3/cmd/helm           (pinned below)
#   kube-apiserver  k8s.io/kubernetes/cmd/kube-apiserver via the wrapper module tools/k8s/kube-apiserver
#   cert-manager-crds  cert-manager's CRD YAML from its Go module zip
#   cert-manager    cert-manager's certificate controllers (CA, SelfSigned) via tools/k8s/cert-manager
#   node            kubelet, kube-scheduler, kube-controller-manager, kube-proxy for the test node
#                   (scripts/kube-node.sh), same wrapper module and version as kube-apiserver
# Binaries are cached outside the repo in ~/.cache/mxgate/bin/<tool>-<version>, keyed by version.
# Usage: scripts/build-control-plane.sh [helm|kube-apiserver|cert-manager-crds|cert-manager|node|all]
#        (default all: everything but node)
#        MXGATE_REBUILD=1 rebuilds even when a cached binary exists.
# Prints one line per tool: "<tool> <version> <built|cached|fetched> <path>". Exit 3: no Go.
# etcd comes from Debian's etcd-server package and kubectl from the machine (not built here).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

HELM_VERSION=v3.20.2
HELM_K8S_MINOR=35 # helm v3.20.2 builds with k8s.io/client-go v0.35.x
# cert-manager's controller module (cmd/controller) is not on the module proxy; its main
# module is: the CRDs come from its zip (deploy/crds) and its certificate controllers are
# built by a small wrapper main (tools/k8s/cert-manager). Keep in sync with that go.mod.
CERT_MANAGER_VERSION=v1.21.2
# Keep in sync with tools/k8s/kube-apiserver/go.mod (require + staging replaces at v0.35.4).
KUBE_VERSION=v1.35.4

CACHE=${MXGATE_CACHE:-$HOME/.cache/mxgate}
BIN=$CACHE/bin
mkdir -p "$BIN"

# Go is needed only to build or fetch what the cache lacks.
need_go() {
  if ! command -v go >/dev/null 2>&1; then
    echo "build-control-plane: no Go toolchain on PATH to build $1" >&2
    exit 3
  fi
  # Go >= 1.27 turns on encoding/json/v2, which breaks the apiserver's OpenAPI endpoints.
  local go_minor
  go_minor=$(go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')
  if [[ $go_minor =~ ^[0-9]+$ ]] && ((go_minor >= 27)) && [[ ${GOEXPERIMENT:-} != *nojsonv2* ]]; then
    export GOEXPERIMENT=${GOEXPERIMENT:+$GOEXPERIMENT,}nojsonv2
  fi
}
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false
# Two shared cores: keep parallel compiles modest unless the caller says otherwise.
GO_P=${MXGATE_GO_P:-2}

# One build at a time per tool, even across parallel callers (flock on a per-tool lock file).
locked_build() { # tool version builder-fn
  local tool=$1 version=$2 fn=$3 out=$BIN/$1-$2
  exec {fd}>"$BIN/.$tool.lock"
  flock "$fd"
  if [[ -x $out && -z ${MXGATE_REBUILD:-} ]]; then
    echo "$tool $version cached $out"
  else
    local tmp
    need_go "$tool"
    tmp=$(mktemp -d "$BIN/.build-$tool.XXXXXX")
    "$fn" "$tmp/$tool"
    mv "$tmp/$tool" "$out"
    rmdir "$tmp"
    echo "$tool $version built $out"
  fi
  exec {fd}>&-
}

build_helm() {
  # `go install pkg@version` resolves helm's own go.mod and go.sum (checked against the sumdb).
  local dest=$1 gobin
  gobin=$(dirname "$dest")
  # As helm's Makefile does: the default Kubernetes version for `helm template`/`lint`
  # (capabilities, deprecations) is the client-go minor helm builds with, not 1.20.
  GOBIN=$gobin go install -p "$GO_P" -trimpath -ldflags "-s -w \
    -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
    -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 \
    -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$HELM_K8S_MINOR \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$HELM_K8S_MINOR" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
}

build_kube() { # dest cmd: one main package of k8s.io/kubernetes at KUBE_VERSION
  local dest=$1 cmd=$2
  (cd "$ROOT/tools/k8s/kube-apiserver" &&
    go build -p "$GO_P" -trimpath -ldflags "-s -w \
      -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION \
      -X k8s.io/component-base/version.gitMajor=1 \
      -X k8s.io/component-base/version.gitMinor=$(echo "$KUBE_VERSION" | cut -d. -f2)" \
      -o "$dest" "k8s.io/kubernetes/cmd/$cmd")
}
build_kube_apiserver() { build_kube "$1" kube-apiserver; }
build_kubelet() { build_kube "$1" kubelet; }
build_kube_scheduler() { build_kube "$1" kube-scheduler; }
build_kube_controller_manager() { build_kube "$1" kube-controller-manager; }
build_kube_proxy() { build_kube "$1" kube-proxy; }
node() {
  locked_build kubelet "$KUBE_VERSION" build_kubelet
  locked_build kube-scheduler "$KUBE_VERSION" build_kube_scheduler
  locked_build kube-controller-manager "$KUBE_VERSION" build_kube_controller_manager
  locked_build kube-proxy "$KUBE_VERSION" build_kube_proxy
}

cert_manager_crds() {
  local out=$CACHE/cert-manager-crds-$CERT_MANAGER_VERSION dir
  if [[ -d $out && -z ${MXGATE_REBUILD:-} ]]; then
    echo "cert-manager-crds $CERT_MANAGER_VERSION cached $out"
    return
  fi
  need_go cert-manager-crds
  dir=$(cd "$ROOT/tools/k8s/kube-apiserver" &&
    go mod download -json "github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION" |
    sed -nE 's/^\t"Dir": "(.*)",$/\1/p')
  rm -rf "$out.tmp" && mkdir -p "$out.tmp"
  cp "$dir"/deploy/crds/*.yaml "$out.tmp/" && rm -f "$out.tmp/README.md"
  chmod 0644 "$out.tmp"/*.yaml
  rm -rf "$out" && mv "$out.tmp" "$out"
  echo "cert-manager-crds $CERT_MANAGER_VERSION fetched $out"
}

build_cert_manager() {
  local dest=$1
  (cd "$ROOT/tools/k8s/cert-manager" &&
    go build -p "$GO_P" -trimpath -ldflags "-s -w" -o "$dest" .)
}
# The wrapper holds a small main of ours: key its cache by the release and by its sources.
CM_KEY=$CERT_MANAGER_VERSION-$(cat tools/k8s/cert-manager/{go.mod,go.sum,main.go} |
  sha256sum | cut -c1-8)

what=${1:-all}
case $what in
  helm) locked_build helm "$HELM_VERSION" build_helm ;;
  kube-apiserver) locked_build kube-apiserver "$KUBE_VERSION" build_kube_apiserver ;;
  cert-manager-crds) cert_manager_crds ;;
  cert-manager) locked_build cert-manager-controller "$CM_KEY" build_cert_manager ;;
  node) node ;;
  all)
    locked_build helm "$HELM_VERSION" build_helm
    locked_build kube-apiserver "$KUBE_VERSION" build_kube_apiserver
    cert_manager_crds
    locked_build cert-manager-controller "$CM_KEY" build_cert_manager
    ;;
  *)
    echo "usage: $0 [helm|kube-apiserver|cert-manager-crds|cert-manager|node|all]" >&2
    exit 2
    ;;
esac
