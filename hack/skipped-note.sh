#!/usr/bin/env bash
# Says which integration tests `make test` skipped, and why.
if [ "$(id -u)" != 0 ]; then
  echo "NOTE: not root: skipped the integration tests that need the local lab, a real sshd and"
  echo "      a private containerd (packages lab, e2e, remote, agentlet). Run 'sudo make test' for all."
elif [ "$(uname -s)" != Linux ]; then
  echo "NOTE: not Linux: skipped every integration test."
fi
