// Debian's Chromium driven by playwright-core, as the report tests use it: the system
// binary (scripts/test-deps.d/40-chromium.sh installs it; playwright's own browser download
// is never used), headless, no network side channels, a fresh profile per launch.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/**
 * Under `npm test` (npm sets npm_lifecycle_event) the report's browser and schema checks are
 * part of the suite: a missing tool fails them, naming it, instead of skipping them.
 */
export const toolsRequired = process.env.npm_lifecycle_event === 'test';

const missing = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} not installed (scripts/test-deps.d/40-chromium.sh installs Debian's chromium)`;
/** Why the browser tests are skipped, or undefined when they run (always under npm test). */
export const chromiumMissing = toolsRequired ? undefined : missing;

export async function launch(viewport = { width: 1280, height: 900 }): Promise<{ context: BrowserContext; close: () => Promise<void> }> {
  if (missing) throw new Error(`the report's browser checks need Chromium: ${missing}`);
  const profile = mkdtempSync(join(tmpdir(), 'bench-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
