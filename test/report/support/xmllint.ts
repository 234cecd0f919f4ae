// xmllint (Debian's libxml2-utils) and the Ant JUnit schema, located as in CI: the repo is
// cloned with shared/ beside it, so the schema is <repo>/../shared/reference/junit/JUnit.xsd.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './fixtures.ts';

export const JUNIT_XSD = join(REPO, '..', 'shared', 'reference', 'junit', 'JUnit.xsd');

function hasXmllint(): boolean {
  try {
    execFileSync('xmllint', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Why schema validation cannot run here, or undefined when it can. */
export const schemaSkipReason: string | undefined = !existsSync(JUNIT_XSD)
  ? `JUnit schema not found at ${JUNIT_XSD} (shared/ is not beside the repo)`
  : !hasXmllint()
    ? 'xmllint not installed (scripts/test-deps.d/40-chromium.sh installs libxml2-utils)'
    : undefined;

export const xmllintMissing = hasXmllint() ? undefined : 'xmllint not installed (scripts/test-deps.d/40-chromium.sh installs libxml2-utils)';

/** Validates a file against the schema; returns xmllint's verdict and messages. */
export function validateJunit(file: string): { ok: boolean; output: string } {
  // xmllint says "<file> validates" (or why not) on stderr and exits 0 only when valid.
  const r = spawnSync('xmllint', ['--noout', '--schema', JUNIT_XSD, file], { encoding: 'utf8' });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

/** Runs an XPath query with xmllint --xpath and returns its output, less the newline xmllint adds. */
export function xpath(file: string, expr: string): string {
  return execFileSync('xmllint', ['--xpath', expr, file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).replace(/\n$/, '');
}

/** Appended to a test title, so a skipped test says why in the test report. */
export function skipNote(reason: string | undefined): string {
  return reason ? ` [skipped: ${reason}]` : '';
}
