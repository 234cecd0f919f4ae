#!/usr/bin/env bash
# Installs Debian's OpenSSH server for the lab tests (test/lab/support/sshd.ts), which run
# their own sshd as a child process on a loopback port with a throwaway config and keys.
#
# The system service must stay off: the tests never need it, and a CI machine should not
# gain a listening port 22 because of a test run. So, only when this script installs the
# package itself:
#   - a temporary /usr/sbin/policy-rc.d answers 101 ("action forbidden"), so the package's
#     maintainer scripts do not start the daemon during installation;
#   - /etc/ssh/sshd_not_to_be_run is created, the Debian switch honoured by both the
#     init script and the systemd unit (ConditionPathExists), so the service never starts
#     later either, even though the package enables the unit;
#   - the units the package enabled are disabled again when systemd's helper is there.
# An sshd that was already installed is left exactly as it was.
set -euo pipefail

have_sftp() { [ -x /usr/lib/openssh/sftp-server ] || [ -x /usr/libexec/openssh/sftp-server ]; }
if [ -x /usr/sbin/sshd ] && have_sftp; then
  echo "sshd already installed: $(/usr/sbin/sshd -V 2>&1 | head -n1 || true)"
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "not root or no apt-get: cannot install openssh-server; the lab SSH tests will be skipped" >&2
  exit 0
fi
if [ -x /usr/sbin/sshd ]; then
  # Only the SFTP subsystem is missing; it has no service of its own.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-sftp-server
  exit 0
fi

made_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  made_policy=1
fi
cleanup() { if [ "$made_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi; }
trap cleanup EXIT

mkdir -p /etc/ssh
touch /etc/ssh/sshd_not_to_be_run
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server

if command -v deb-systemd-helper >/dev/null; then
  deb-systemd-helper disable ssh.service ssh.socket >/dev/null 2>&1 || true
fi
echo "installed: $(/usr/sbin/sshd -V 2>&1 | head -n1 || true)"
