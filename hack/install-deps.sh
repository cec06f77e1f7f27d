#!/usr/bin/env bash
# Installs the Debian packages clusterctl's lab and integration tests need.
# Runs apt-get only when something is missing; as non-root it only reports.
set -euo pipefail
need=()
check() { # check BINARY PACKAGE
  if ! command -v "$1" >/dev/null 2>&1 && [ ! -x "$1" ]; then need+=("$2"); fi
}
check containerd containerd
check ctr containerd
check runc runc
check /usr/lib/cni/bridge containernetworking-plugins
check /usr/sbin/sshd openssh-server
check ssh-keygen openssh-client
check iptables-restore iptables
check nft nftables
check ip iproute2
check nsenter util-linux
check busybox busybox-static
check /usr/bin/docker-registry docker-registry
check sha256sum coreutils
check ps procps
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
if [ "$(id -u)" != 0 ]; then
  echo "install-deps: missing ${need[*]}; not root, so not installing (integration tests will be skipped)" >&2
  exit 0
fi
echo "install-deps: apt-get install ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The package enables a machine-wide registry on :5000; the lab runs its own.
if printf '%s\n' "${need[@]}" | grep -qx docker-registry && [ -d /run/systemd/system ]; then
  echo "install-deps: disabling the docker-registry system service (the lab starts its own registry)"
  systemctl disable --now docker-registry.service >/dev/null 2>&1 || true
fi
