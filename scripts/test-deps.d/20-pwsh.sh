#!/usr/bin/env bash
# PowerShell for the lab tests (test/lab/host): the quoting, HostShell and Hyper-V stand-in
# tests need a real PowerShell engine.
#
# 1. If `pwsh` is already on PATH or in ~/.dotnet/tools, use it.
# 2. Else install the PowerShell global tool from NuGet (`dotnet tool install --global
#    PowerShell`), the ordinary client and registry.
# 3. The NuGet copy this project's machines reach has held no "PowerShell" package, but it
#    has System.Management.Automation (the PowerShell engine itself). Then build
#    test/lab/standin/pwsh-host, a small console host around that engine, into
#    test-artifacts/pwsh-host/bench-pwsh. The tests say which of the two they ran on.
# Without dotnet at all the lab PowerShell tests are skipped with that reason.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
tools="$HOME/.dotnet/tools"

if command -v pwsh >/dev/null 2>&1 || [ -x "$tools/pwsh" ]; then
  echo "pwsh already installed"; exit 0
fi
if ! command -v dotnet >/dev/null 2>&1; then
  echo "no dotnet SDK: the lab PowerShell tests will be skipped" >&2; exit 0
fi
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

# The tool lookup fails within a second when the package is absent; remember that for a day.
miss="$root/test-artifacts/pwsh-tool-missing"
if [ ! -f "$miss" ] || [ -n "$(find "$miss" -mmin +1440)" ]; then
  if dotnet tool install --global PowerShell; then echo "installed pwsh to $tools"; exit 0; fi
  mkdir -p "$(dirname "$miss")" && touch "$miss"
  echo "PowerShell global tool not available from NuGet; building the engine host instead" >&2
fi

src="$root/test/lab/standin/pwsh-host"
out="$root/test-artifacts/pwsh-host"
sum="$(cat "$src"/*.cs "$src"/*.csproj | sha256sum | cut -c1-16)"
if [ -x "$out/bench-pwsh" ] && [ "$(cat "$out/.source-sum" 2>/dev/null)" = "$sum" ]; then
  echo "bench-pwsh up to date"; exit 0
fi
# Build from a copy so obj/ never lands in the source tree.
work="$root/test-artifacts/pwsh-host-build"
rm -rf "$work" && mkdir -p "$work" && cp "$src"/*.cs "$src"/*.csproj "$work"/
dotnet build "$work" -c Release -o "$out" --nologo -v quiet
echo "$sum" > "$out/.source-sum"
echo '"exit 0"' | "$out/bench-pwsh" -NoLogo -NoProfile -NonInteractive -Command - >/dev/null
echo "built $out/bench-pwsh"
