#!/usr/bin/env bash
# apt-get update once per machine boot-ish (an hour), so later scripts can install by name.
set -euo pipefail
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "not root or no apt-get: skipping package installs" >&2; exit 0
fi
stamp=/var/lib/apt/periodic/vmbus-bench-update
if [ ! -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +60)" ]; then
  apt-get update -qq
  mkdir -p "$(dirname "$stamp")" && touch "$stamp"
fi
