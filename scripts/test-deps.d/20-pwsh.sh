#!/usr/bin/env bash
# PowerShell for the lab tests (test/lab/host, test/run/engine): the quoting, HostShell and
# Hyper-V stand-in tests run on the real pwsh, nothing else.
#
# 1. If `pwsh` is on PATH or in ~/.dotnet/tools, use it (any 7.x; CI pins it below).
# 2. Else install the PowerShell global tool with the ordinary client, pinned:
#    `dotnet tool install --global PowerShell --version 7.6.10`. Without --version the
#    client picks the newest package (7.7.0 at the time of writing), which fails to
#    install on these machines.
# If pwsh cannot be had: with CI=true the setup fails (a lab suite that silently skips is
# not a green build); elsewhere the lab PowerShell tests are skipped, naming this script.
set -euo pipefail
version=7.6.10
tools="$HOME/.dotnet/tools"

fail() {
  echo "$1" >&2
  if [ "${CI:-}" = "true" ]; then echo "CI=true: pwsh is required" >&2; exit 1; fi
  echo "the lab PowerShell tests will be skipped" >&2; exit 0
}

for p in "$(command -v pwsh || true)" "$tools/pwsh"; do
  if [ -n "$p" ] && [ -x "$p" ]; then
    echo "pwsh already installed: $p ($("$p" -NoLogo -NoProfile -Command '$PSVersionTable.PSVersion.ToString()'))"; exit 0
  fi
done
command -v dotnet >/dev/null 2>&1 || fail "no dotnet SDK, so no way to install the PowerShell global tool"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
dotnet tool install --global PowerShell --version "$version" || fail "dotnet tool install --global PowerShell --version $version failed"
"$tools/pwsh" -NoLogo -NoProfile -Command 'exit 0' || fail "$tools/pwsh does not start"
echo "installed pwsh $version to $tools"
