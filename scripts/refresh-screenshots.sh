#!/usr/bin/env bash
# Refreshes the screenshot the README shows (docs/report-grouped-failures.png) from the test
# that produces it: test/report/html-failures.test.ts renders a run with 100 failures in
# headless Chromium and keeps test-artifacts/report/grouped-failures.png. Run it after a
# change to how report.html looks, and commit the new picture with the change.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
npx vitest run test/report/html-failures.test.ts -t "grouped failure view"
cp test-artifacts/report/grouped-failures.png docs/report-grouped-failures.png
echo "refresh-screenshots: docs/report-grouped-failures.png updated"
