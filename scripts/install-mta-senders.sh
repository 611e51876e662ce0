#!/usr/bin/env bash
# Unpack Exim 4 and OpenSMTPD (the sending MTAs of tests/mtapeers) into a private cache.
#
# Debian's exim4-daemon-light and opensmtpd conflict with the installed postfix as apt
# packages (all provide mail-transport-agent), so they are never installed: their .debs
# are fetched with `apt-get download` and unpacked with `dpkg-deb -x` under
# ~/.cache/mxgate/mta/<name>. Nothing is configured or started; the tests run private
# instances with their own config, spool and log. Idempotent: skips what is present.
# A shared library the binaries need and the system lacks (libidn12) is apt-installed.
set -euo pipefail

root="${MXGATE_MTA_CACHE:-$HOME/.cache/mxgate/mta}"
declare -A binary=([exim]=usr/sbin/exim4 [opensmtpd]=usr/sbin/smtpd)
declare -A packages=([exim]="exim4-daemon-light" [opensmtpd]="opensmtpd")

missing_libs() { # the "not found" shared libraries of $1
  ldd "$1" 2>/dev/null | awk '/not found/ {print $1}'
}

fetch() { # download and unpack the given packages into $1
  local dest=$1; shift
  local tmp; tmp=$(mktemp -d)
  chmod 755 "$tmp"
  (cd "$tmp" && apt-get download -qq "$@" >/dev/null 2>&1) || {
    if [[ $(id -u) -eq 0 ]]; then apt-get update -qq && (cd "$tmp" && apt-get download -qq "$@" >/dev/null); else false; fi
  }
  mkdir -p "$dest"
  for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$dest"; done
  rm -rf "$tmp"
}

mkdir -p "$root"
for name in exim opensmtpd; do
  if [[ ! -x "$root/$name/${binary[$name]}" ]]; then
    # shellcheck disable=SC2086
    fetch "$root/$name" ${packages[$name]}
  fi
done

# Shared libraries the system lacks (libidn12 for Exim on bookworm) are installed as the
# ordinary library packages they are (no conflicts): Exim re-executes itself as its own
# user with a cleaned environment, so LD_LIBRARY_PATH tricks do not reach the delivery.
for name in exim opensmtpd; do
  for lib in $(missing_libs "$root/$name/${binary[$name]}"); do
    case "$lib" in
      libidn.so.12) pkg=libidn12 ;;
      *) echo "install-mta-senders: $name needs $lib (no package known)" >&2; exit 1 ;;
    esac
    if [[ $(id -u) -ne 0 ]]; then
      echo "install-mta-senders: need root to install $pkg" >&2; exit 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null
  done
  left=$(missing_libs "$root/$name/${binary[$name]}")
  if [[ -n "$left" ]]; then
    echo "install-mta-senders: $name still misses: $left" >&2
    exit 1
  fi
done

# Exim delivers as its compiled-in user, OpenSMTPD runs as its own two users: create them
# like the packages' maintainer scripts would (system users, no home, no shell).
for user in Debian-exim opensmtpd opensmtpq; do
  if ! getent passwd "$user" >/dev/null; then
    if [[ $(id -u) -ne 0 ]]; then echo "install-mta-senders: need root to add $user" >&2; exit 1; fi
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin "$user"
  fi
done
echo "install-mta-senders: exim and opensmtpd unpacked under $root"
