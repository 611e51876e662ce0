#!/usr/bin/env bash
# Install the real peers the test suite talks to (Postfix, swaks, HAProxy, etcd, openssl) and
# what the one-node cluster of the `pods` tests runs on (scripts/kube-node.sh): containerd,
# runc, the CNI plugins, iptables and conntrack (kube-proxy), buildah and mmdebstrap (images),
# and promtool (Debian `prometheus`: `promtool check metrics` / `promtool test rules`).
# Idempotent: installs only what is missing. Never starts the system's own services.
set -euo pipefail

need=()
command -v swaks >/dev/null || need+=(swaks)
# swaks speaks STARTTLS only with Net::SSLeay (a Recommends, skipped by --no-install-recommends)
perl -MNet::SSLeay -e 1 2>/dev/null || need+=(libnet-ssleay-perl)
test -x /usr/lib/postfix/sbin/master || need+=(postfix)
command -v smtp-source >/dev/null || need+=(postfix)
command -v haproxy >/dev/null || need+=(haproxy)
command -v etcd >/dev/null || need+=(etcd-server)
command -v openssl >/dev/null || need+=(openssl)
command -v containerd >/dev/null || need+=(containerd)
command -v runc >/dev/null || need+=(runc)
test -x /usr/lib/cni/bridge || need+=(containernetworking-plugins)
command -v buildah >/dev/null || need+=(buildah)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v iptables >/dev/null || need+=(iptables)
command -v conntrack >/dev/null || need+=(conntrack)
command -v curl >/dev/null || need+=(curl)
command -v promtool >/dev/null || need+=(prometheus)
# The same package's server scrapes a gateway to check the dashboard's queries (tests/e2e).
command -v prometheus >/dev/null || need+=(prometheus)

if ((${#need[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-system-deps: need root to install: ${need[*]}" >&2
    exit 1
  fi
  # Postfix must not configure or start a system mail server; tests run private instances.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d keeps package scripts from starting daemons (haproxy, etcd, containerd,
  # prometheus) on install.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
echo "install-system-deps: postfix swaks haproxy etcd openssl containerd runc CNI buildah mmdebstrap iptables conntrack promtool present"

# Exim 4 and OpenSMTPD as sending clients, and Exim as a receiver for the estimate tests
# (tests/mtapeers): unpacked into a private cache, never installed as packages (they
# conflict with postfix as mail-transport-agent).
bash "$(dirname "$0")/install-mta-senders.sh"
