#!/usr/bin/env bash
# What test/report needs beyond node_modules:
#   - chromium: Debian's headless-capable browser. The report tests open report.html in it
#     through playwright-core (executablePath /usr/bin/chromium), check what renders and
#     that no request leaves the page, and keep a screenshot under test-artifacts/.
#     playwright-core's own browser download is never used (no network but the registries).
#   - libxml2-utils: xmllint, to validate junit.xml against the project's schema of the Ant
#     JUnit format, src/report/ant-junit.xsd.
# Idempotent: installs only what is missing. Without root or apt-get it says so and exits
# 0. Under `npm test` the browser and schema tests then fail, naming what is missing (the
# done-when of issue 16: the report checks run in real Chromium in npm test); a bare
# `vitest run` reports them as skipped, with the reason.
set -euo pipefail

need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v xmllint >/dev/null || need+=(libxml2-utils)

if [ "${#need[@]}" -eq 0 ]; then
  echo "40-chromium: $(/usr/bin/chromium --version 2>/dev/null || echo chromium); $(xmllint --version 2>&1 | head -n1)"
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "40-chromium: not root or no apt-get; cannot install ${need[*]}; the report browser/schema tests will be skipped" >&2
  exit 0
fi
echo "40-chromium: installing ${need[*]}"
# Fonts come with chromium's recommends; fonts-dejavu-core keeps text legible in screenshots
# even with --no-install-recommends.
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" fonts-dejavu-core
echo "40-chromium: $(/usr/bin/chromium --version 2>/dev/null || echo 'chromium missing')"
