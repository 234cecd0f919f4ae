#!/usr/bin/env bash
# Installs and starts what the test suite needs beyond node_modules: real programs the
# lab layer talks to (pwsh, sshd), Chromium for the report, kernel headers for the guest
# driver. Each concern is one script in scripts/test-deps.d/, run in name order.
#
# Every script is idempotent and quick when its tools are already there. A script that
# cannot install its tool (no root, no registry) says so on stderr and exits 0, and the
# tests that need the tool report themselves as skipped with the reason. They never pass
# silently. pwsh is stricter: with CI=true, 20-pwsh.sh fails the setup without it.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$here/../test-artifacts"
for script in "$here"/test-deps.d/*.sh; do
  [ -e "$script" ] || continue
  name="$(basename "$script")"
  start=$(date +%s)
  if ! bash "$script" >"$here/../test-artifacts/setup-${name%.sh}.log" 2>&1; then
    echo "test-setup: $name failed; its log follows" >&2
    cat "$here/../test-artifacts/setup-${name%.sh}.log" >&2
    exit 1
  fi
  echo "test-setup: $name ok ($(( $(date +%s) - start ))s)" >&2
done
