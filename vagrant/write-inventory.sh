#!/usr/bin/env bash
# Writes a clusterctl inventory for the VMs of ./Vagrantfile to stdout and
# their host keys to ./known_hosts (read from `vagrant ssh-config`, so nothing
# is trusted on first use).
set -euo pipefail
cd "$(dirname "$0")"
NET=${CLUSTERCTL_VAGRANT_NET:-192.168.56}
HOSTS=${CLUSTERCTL_VAGRANT_HOSTS:-3}
: > known_hosts
key=""
for i in $(seq 1 "$HOSTS"); do
  cfg=$(vagrant ssh-config "node$i")
  key=$(awk '/IdentityFile/ {print $2}' <<<"$cfg" | tr -d '"')
  # Ask the VM for its own host key over the already-trusted vagrant channel.
  pub=$(vagrant ssh "node$i" -c 'cat /etc/ssh/ssh_host_ed25519_key.pub' 2>/dev/null | tr -d '\r')
  echo "$NET.$((10 + i)) $pub" >> known_hosts
done
cat <<YAML
# clusterctl inventory for the Vagrant VMs (vagrant/write-inventory.sh)
apiVersion: clusterctl.dev/v1alpha1
kind: Inventory
cluster:
  name: vagrant
ssh:
  user: vagrant
  identityFile: $key
  knownHosts: $PWD/known_hosts
  sudo: always
  useAgent: false
  sshConfig: none
hosts:
YAML
for i in $(seq 1 "$HOSTS"); do
  printf '  - name: node%d\n    address: %s.%d\n' "$i" "$NET" $((10 + i))
done
