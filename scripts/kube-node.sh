#!/usr/bin/env bash
# A one-node Kubernetes cluster on this machine for the `pods` tests and `make kube-up`:
# etcd (loopback), kube-apiserver, controller-manager, scheduler, containerd + runc, kubelet,
# kube-proxy (iptables) and the CNI bridge, with the project's images imported.
#
#   scripts/kube-node.sh up     start (after a `down` of any earlier run), print `export KUBECONFIG=...`
#   scripts/kube-node.sh down   stop everything by PID and restore the host
#   scripts/kube-node.sh check  exit 0 if this machine can run the node, else print why (exit 3)
#
# Network: the bridge mxk0 holds the node IP 198.19.240.1 (pods 198.19.240.0/24, Services
# 198.19.241.0/24, RFC 2544 benchmarking range): no masquerade out, forwarding off the bridge
# dropped, nothing listens beyond loopback and the bridge. kube-proxy never captures loopback.
# `down` restores what `up` changed: iptables chains added since `up`, sysctls (ip_forward and
# the kubelet's kernel tunables), the bridge and route, netns and mounts, kubepods cgroups.
# State in $MXGATE_KUBE_STATE (default /tmp/mxgate-kube); one node per machine (flock).
# It must not touch chains, netns, mounts or processes it did not create.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STATE=${MXGATE_KUBE_STATE:-/tmp/mxgate-kube}
BRIDGE=mxk0
NODE_IP=198.19.240.1
POD_CIDR=198.19.240.0/24
SVC_CIDR=198.19.241.0/24
API_SVC_IP=198.19.241.1
API_PORT=6443
NODE_NAME=mxgate-node
CNI_BIN=${MXGATE_CNI_BIN:-/usr/lib/cni}
# Sysctls the node changes (kubelet kernel tunables, forwarding); saved at up, restored at down.
SYSCTLS=(net.ipv4.ip_forward vm.overcommit_memory vm.panic_on_oom kernel.panic
  kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes)
TABLES=(filter nat mangle raw)
# Fixed paths the kubelet, containerd 1.6 and its shims use whatever their root dirs: removed
# at down when they did not exist at up.
FIXED_DIRS=(/var/lib/kubelet /var/log/pods /var/log/containers /var/lib/cni /run/containerd /run/netns)
SOCK=$STATE/containerd/containerd.sock
# Image content and snapshots persist between runs (like the binaries): a warm `up` imports
# only images whose key changed. Containers never outlive `down`.
CTR_ROOT=${MXGATE_CACHE:-$HOME/.cache/mxgate}/containerd-root

log() { echo "kube-node: $*" >&2; }
die() {
  log "$*"
  exit 1
}

# ---------------------------------------------------------------- checks
check() {
  local missing=()
  [[ $(id -u) -eq 0 ]] || {
    echo "needs root (network, mounts, cgroups)"
    return 3
  }
  local capeff
  capeff=$(awk '/^CapEff/ {print $2}' /proc/self/status)
  if (((16#$capeff >> 12 & 1) == 0)); then
    echo "lacks CAP_NET_ADMIN"
    return 3
  fi
  for p in bridge host-local loopback; do
    [[ -x $CNI_BIN/$p ]] || missing+=("CNI plugin $CNI_BIN/$p (containernetworking-plugins)")
  done
  for c in containerd containerd-shim-runc-v2 runc ctr iptables conntrack ip curl buildah mmdebstrap etcd kubectl openssl; do
    command -v "$c" >/dev/null || missing+=("$c")
  done
  if ((${#missing[@]})); then
    echo "missing: ${missing[*]} (scripts/install-system-deps.sh installs them)"
    return 3
  fi
  return 0
}

# ---------------------------------------------------------------- processes
spawn() { # name argv...: start detached, log to $STATE/logs/name.log, pid in $STATE/pids
  local name=$1
  shift
  # fd 9 (the node lock) stays with this script: daemons must not hold it.
  setsid "$@" >"$STATE/logs/$name.log" 2>&1 </dev/null 9>&- &
  echo $! >"$STATE/pids/$name.pid"
}

ours() { # pid: true if the process is alive and was started with our state dir in argv
  [[ -r /proc/$1/cmdline ]] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF -- "$STATE"
}

stop_pid() { # name
  local f=$STATE/pids/$1.pid pid i
  [[ -f $f ]] || return 0
  pid=$(cat "$f")
  if ours "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 100); do
      ours "$pid" || break
      sleep 0.1
    done
    if ours "$pid"; then
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
    fi
  fi
  rm -f "$f"
}

wait_for() { # seconds description command...
  local secs=$1 what=$2 end
  shift 2
  end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < end)) || die "$what not ready after ${secs}s (logs in $STATE/logs)"
    sleep 0.3
  done
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---------------------------------------------------------------- binaries and images
find_binaries() {
  local out line
  out=$(bash scripts/build-control-plane.sh kube-apiserver && bash scripts/build-control-plane.sh node) ||
    die "control plane build failed"
  while read -r tool _ _ path; do
    case $tool in
      kube-apiserver) APISERVER=$path ;;
      kubelet) KUBELET=$path ;;
      kube-scheduler) SCHEDULER=$path ;;
      kube-controller-manager) CONTROLLER_MANAGER=$path ;;
      kube-proxy) KUBE_PROXY=$path ;;
    esac
  done <<<"$out"
  line=$(bash scripts/build-images.sh all) || die "image build failed"
  IMAGES=$line
}

# ---------------------------------------------------------------- PKI and configs
pki() {
  local d=$STATE/pki
  mkdir -p "$d"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=mxgate-kube-ca" -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
  cert apiserver "/CN=kube-apiserver" \
    "subjectAltName=IP:$NODE_IP,IP:$API_SVC_IP,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "extendedKeyUsage=clientAuth"
  openssl genrsa -out "$d/sa.key" 2048 2>/dev/null
  openssl rsa -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
  TOKEN=$(openssl rand -hex 16)
  echo "$TOKEN,admin,admin,\"system:masters\"" >"$d/tokens.csv"
  chmod 0600 "$d"/*.key "$d/tokens.csv"
}

cert() { # name subject extension
  local d=$STATE/pki
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$2" \
    -keyout "$d/$1.key" -out "$d/$1.csr" 2>/dev/null
  openssl x509 -req -in "$d/$1.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
    -days 2 -extfile <(echo "$3") -out "$d/$1.crt" 2>/dev/null
}

kubeconfig() {
  cat >"$STATE/admin.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: mxgate-node
  cluster: {server: "https://$NODE_IP:$API_PORT", certificate-authority: "$STATE/pki/ca.crt"}
users:
- name: admin
  user: {token: "$TOKEN"}
contexts:
- name: mxgate-node
  context: {cluster: mxgate-node, user: admin, namespace: default}
current-context: mxgate-node
EOF
  chmod 0600 "$STATE/admin.kubeconfig"
}

containerd_config() {
  local pause_ref
  pause_ref=$(awk '$1 == "mxgate-pause" {print $2}' <<<"$IMAGES")
  mkdir -p "$STATE/containerd" "$STATE/cni/net.d" "$STATE/cni/ipam"
  cat >"$STATE/containerd/config.toml" <<EOF
version = 2
root = "$CTR_ROOT"
state = "$STATE/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$STATE/containerd/containerd.sock.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$STATE/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_ref"
  # root here lacks CAP_SYS_RESOURCE: lowering a child's oom_score_adj would fail in runc.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$STATE/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN"
    conf_dir = "$STATE/cni/net.d"
EOF
  # No ipMasq: pods reach the node and each other, never beyond the machine.
  cat >"$STATE/cni/net.d/10-mxgate.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "mxgate", "plugins": [
  {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false,
   "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": "$STATE/cni/ipam",
            "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$NODE_IP",
                         "rangeStart": "198.19.240.10"}]],
            "routes": [{"dst": "0.0.0.0/0"}]}}]}
EOF
}

kubelet_config() {
  mkdir -p "$STATE/kubelet"
  cat >"$STATE/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine has cgroup v1 only; kubelet 1.35 refuses it unless told.
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$SOCK
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $STATE/pki/ca.crt}
authorization: {mode: AlwaysAllow}
# Pick up ConfigMap/Secret changes within seconds (the default is a minute).
syncFrequency: 5s
fileCheckFrequency: 5s
failSwapOn: false
resolvConf: /etc/resolv.conf
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
maxPods: 40
EOF
}

kube_proxy_config() {
  cat >"$STATE/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
hostnameOverride: $NODE_NAME
clientConnection: {kubeconfig: $STATE/admin.kubeconfig}
bindAddress: $NODE_IP
healthzBindAddress: $NODE_IP:10256
metricsBindAddress: $NODE_IP:10249
clusterCIDR: $POD_CIDR
# NodePorts only on the bridge address; never on loopback, where other jobs listen.
nodePortAddresses: ["$POD_CIDR"]
iptables: {masqueradeAll: true, localhostNodePorts: false, syncPeriod: 10s, minSyncPeriod: 0s}
# Leave the machine's conntrack sysctls alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
}

# ---------------------------------------------------------------- host state
snapshot_host() {
  local h=$STATE/host s t ipt
  mkdir -p "$h"
  for s in "${SYSCTLS[@]}"; do
    echo "$s=$(sysctl -n "$s")" >>"$h/sysctl"
  done
  for ipt in iptables ip6tables; do
    command -v "$ipt" >/dev/null || continue
    for t in "${TABLES[@]}"; do
      "$ipt" -w -t "$t" -S 2>/dev/null | sed -n 's/^-N //p' >"$h/$ipt.$t.chains" || true
    done
  done
  ls /run/netns 2>/dev/null >"$h/netns" || true
  for s in "${FIXED_DIRS[@]}"; do
    [[ -e $s ]] || echo "$s" >>"$h/absent-dirs"
  done
  ip route show "$SVC_CIDR" >"$h/route"
}

restore_iptables() {
  local h=$STATE/host ipt t chain new rule
  for ipt in iptables ip6tables; do
    command -v "$ipt" >/dev/null || continue
    for t in "${TABLES[@]}"; do
      [[ -f $h/$ipt.$t.chains ]] || continue
      new=()
      while read -r chain; do
        grep -qxF -- "$chain" "$h/$ipt.$t.chains" || new+=("$chain")
      done < <("$ipt" -w -t "$t" -S 2>/dev/null | sed -n 's/^-N //p')
      ((${#new[@]})) || continue
      # Rules in the machine's chains that jump into ours go first, then our chains.
      while read -r rule; do
        eval "$ipt -w -t $t ${rule/#-A/-D}" 2>/dev/null || true
      done < <("$ipt" -w -t "$t" -S | grep '^-A' | grep -E -- "-j ($(
        IFS='|'
        echo "${new[*]}"
      ))( |\$)" || true)
      for chain in "${new[@]}"; do "$ipt" -w -t "$t" -F "$chain" 2>/dev/null || true; done
      for chain in "${new[@]}"; do "$ipt" -w -t "$t" -X "$chain" 2>/dev/null || true; done
      log "removed $ipt $t chains: ${new[*]}"
    done
  done
}

forward_guard() {
  # Forwarding is on for Service traffic between pods; nothing crosses between the bridge
  # and any other interface.
  iptables -w -N MXGATE-KUBE-FWD
  iptables -w -A MXGATE-KUBE-FWD -i "$BRIDGE" -o "$BRIDGE" -j RETURN
  iptables -w -A MXGATE-KUBE-FWD -i "$BRIDGE" -j DROP
  iptables -w -A MXGATE-KUBE-FWD -o "$BRIDGE" -j DROP
  iptables -w -I FORWARD 1 -j MXGATE-KUBE-FWD
}

# ---------------------------------------------------------------- up
up() {
  local why
  why=$(check) || die "cannot run here: $why"
  exec 9>/tmp/mxgate-kube.lock
  flock -w 600 9 || die "another node is starting or stopping (lock /tmp/mxgate-kube.lock)"
  if [[ -f $STATE/pids/kube-apiserver.pid ]] && ours "$(cat "$STATE/pids/kube-apiserver.pid")"; then
    die "a node is already running in $STATE (export KUBECONFIG=$STATE/admin.kubeconfig, or make kube-down)"
  fi
  down_locked # what a crashed run left behind
  # A failed start shows the logs' tails and undoes itself (MXGATE_KUBE_KEEP=1 keeps it all).
  trap 'rc=$?; if ((rc)); then tail_logs; [[ -n ${MXGATE_KUBE_KEEP:-} ]] || down_locked; fi' EXIT
  find_binaries
  mkdir -p "$STATE"/{logs,pids}
  echo "$IMAGES" >"$STATE/images"
  echo "$KUBE_PROXY" >"$STATE/kube-proxy.path"
  local begin=$SECONDS
  snapshot_host
  # The bridge first: it holds the node IP every component binds to.
  ip link add "$BRIDGE" type bridge
  ip addr add "$NODE_IP/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  ip route add "$SVC_CIDR" dev "$BRIDGE" src "$NODE_IP"
  sysctl -qw net.ipv4.ip_forward=1
  forward_guard
  pki
  kubeconfig
  containerd_config
  kubelet_config
  kube_proxy_config

  local etcd_port peer_port
  etcd_port=$(free_port)
  peer_port=$(free_port)
  spawn etcd etcd --name=mxgate-node --data-dir="$STATE/etcd" \
    --listen-client-urls="http://127.0.0.1:$etcd_port" --advertise-client-urls="http://127.0.0.1:$etcd_port" \
    --listen-peer-urls="http://127.0.0.1:$peer_port" --initial-advertise-peer-urls="http://127.0.0.1:$peer_port" \
    --initial-cluster="mxgate-node=http://127.0.0.1:$peer_port" --log-level=warn
  spawn containerd containerd --config "$STATE/containerd/config.toml"
  wait_for 30 etcd curl -sf "http://127.0.0.1:$etcd_port/health"
  spawn kube-apiserver "$APISERVER" --etcd-servers="http://127.0.0.1:$etcd_port" \
    --bind-address="$NODE_IP" --advertise-address="$NODE_IP" --secure-port="$API_PORT" \
    --tls-cert-file="$STATE/pki/apiserver.crt" --tls-private-key-file="$STATE/pki/apiserver.key" \
    --client-ca-file="$STATE/pki/ca.crt" --token-auth-file="$STATE/pki/tokens.csv" \
    --authorization-mode=Node,RBAC --service-cluster-ip-range="$SVC_CIDR" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$STATE/pki/sa.pub" --service-account-signing-key-file="$STATE/pki/sa.key" \
    --kubelet-client-certificate="$STATE/pki/kubelet-client.crt" \
    --kubelet-client-key="$STATE/pki/kubelet-client.key" --kubelet-preferred-address-types=InternalIP \
    --enable-priority-and-fairness=false --profiling=false --v=1
  wait_for 60 containerd ctr -a "$SOCK" version
  local name ref tar have
  have=$(ctr -a "$SOCK" -n k8s.io images ls -q)
  while read -r name ref _ tar; do
    [[ $name == mxgate-base ]] && continue
    grep -qxF "$ref" <<<"$have" && continue
    ctr -a "$SOCK" -n k8s.io images import "$tar" >/dev/null || die "ctr import $tar failed"
  done <<<"$IMAGES"
  # Older builds of our images go (their content with them).
  for ref in $(grep -E '^localhost/mxgate' <<<"$have" || true); do
    awk '{print $2}' <<<"$IMAGES" | grep -qxF "$ref" || ctr -a "$SOCK" -n k8s.io images rm "$ref" >/dev/null
  done
  wait_for 90 kube-apiserver curl -sf --cacert "$STATE/pki/ca.crt" -H "Authorization: Bearer $TOKEN" \
    "https://$NODE_IP:$API_PORT/readyz"
  spawn kube-controller-manager "$CONTROLLER_MANAGER" --kubeconfig="$STATE/admin.kubeconfig" \
    --authentication-kubeconfig="$STATE/admin.kubeconfig" --authorization-kubeconfig="$STATE/admin.kubeconfig" \
    --bind-address="$NODE_IP" --secure-port=10257 --leader-elect=false \
    --service-account-private-key-file="$STATE/pki/sa.key" --root-ca-file="$STATE/pki/ca.crt" \
    --service-cluster-ip-range="$SVC_CIDR" --cluster-cidr="$POD_CIDR" --allocate-node-cidrs=false \
    --cert-dir="$STATE/pki/controller-manager" --profiling=false --v=1
  spawn kube-scheduler "$SCHEDULER" --kubeconfig="$STATE/admin.kubeconfig" \
    --authentication-kubeconfig="$STATE/admin.kubeconfig" --authorization-kubeconfig="$STATE/admin.kubeconfig" \
    --bind-address="$NODE_IP" --secure-port=10259 --leader-elect=false \
    --cert-dir="$STATE/pki/scheduler" --profiling=false --v=1
  spawn kubelet "$KUBELET" --config="$STATE/kubelet/config.yaml" --kubeconfig="$STATE/admin.kubeconfig" \
    --root-dir="$STATE/kubelet/root" --cert-dir="$STATE/kubelet/pki" \
    --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --v=1
  spawn kube-proxy "$KUBE_PROXY" --config="$STATE/kube-proxy.yaml" --v=1
  export KUBECONFIG=$STATE/admin.kubeconfig
  wait_for 120 "node $NODE_NAME" kubectl wait --for=condition=Ready --timeout=5s "node/$NODE_NAME"
  wait_for 60 "default ServiceAccount" kubectl get serviceaccount default -n default
  {
    echo "export KUBECONFIG=$STATE/admin.kubeconfig"
    awk '{gsub("-", "_", $1); print "export " toupper($1) "_IMAGE=" $2}' <<<"$IMAGES"
  } >"$STATE/env"
  log "node $NODE_NAME Ready in $((SECONDS - begin)) s; logs in $STATE/logs"
  cat "$STATE/env"
  trap - EXIT
}

tail_logs() {
  local f
  for f in "$STATE"/logs/*.log; do
    [[ -s $f ]] || continue
    echo "--- $f" >&2
    tail -n 8 "$f" >&2
  done
}

# ---------------------------------------------------------------- down
down() {
  exec 9>/tmp/mxgate-kube.lock
  flock -w 600 9 || die "another node is starting or stopping (lock /tmp/mxgate-kube.lock)"
  down_locked
}

down_locked() {
  [[ -d $STATE ]] || return 0
  local id pid m c s
  stop_pid kube-proxy
  stop_pid kubelet
  stop_pid kube-scheduler
  stop_pid kube-controller-manager
  # Every container and sandbox goes, so their shims exit and their netns are released.
  if [[ -S $SOCK ]] && ctr -a "$SOCK" version >/dev/null 2>&1; then
    for id in $(ctr -a "$SOCK" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr -a "$SOCK" -n k8s.io tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
    done
    for id in $(ctr -a "$SOCK" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr -a "$SOCK" -n k8s.io tasks delete -f "$id" >/dev/null 2>&1 || true
    done
    for id in $(ctr -a "$SOCK" -n k8s.io containers ls -q 2>/dev/null); do
      ctr -a "$SOCK" -n k8s.io containers delete "$id" >/dev/null 2>&1 || true
    done
  fi
  stop_pid containerd
  # Shims of ours still alive (containerd gone before they were told): by PID, ours only.
  for pid in $(pgrep -f containerd-shim-runc-v2 || true); do
    if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$SOCK"; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  stop_pid kube-apiserver
  stop_pid etcd
  # Mounts under our state dir (pod volumes, rootfs, shm), deepest first.
  for m in $(awk -v s="$STATE/" 'index($5, s) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
  # Network namespaces containerd made for our pods (not in the snapshot taken at up).
  if [[ -d /run/netns ]]; then
    for m in /run/netns/cni-*; do
      [[ -e $m ]] || continue
      grep -qxF "$(basename "$m")" "$STATE/host/netns" 2>/dev/null && continue
      umount "$m" 2>/dev/null || true
      rm -f "$m"
    done
  fi
  if [[ -x $(cat "$STATE/kube-proxy.path" 2>/dev/null) ]]; then
    "$(cat "$STATE/kube-proxy.path")" --cleanup >/dev/null 2>&1 || true
  fi
  restore_iptables
  ip link del "$BRIDGE" 2>/dev/null || true
  if [[ -f $STATE/host/route ]] && [[ ! -s $STATE/host/route ]]; then
    ip route del "$SVC_CIDR" 2>/dev/null || true
  fi
  if [[ -f $STATE/host/sysctl ]]; then
    while IFS== read -r s c; do
      [[ $(sysctl -n "$s") == "$c" ]] || sysctl -qw "$s=$c"
    done <"$STATE/host/sysctl"
  fi
  if [[ -f $STATE/host/absent-dirs ]]; then
    while read -r s; do
      rm -rf --one-file-system "$s"
    done <"$STATE/host/absent-dirs"
  fi
  # The kubelet's cgroup tree (cgroupfs driver), emptied above: remove it, deepest first.
  for c in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [[ -d $c ]] && find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  rm -rf "$STATE"
  log "down: stopped and host restored"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  check) check ;;
  *)
    echo "usage: $0 up|down|check" >&2
    exit 2
    ;;
esac
