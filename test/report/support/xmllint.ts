// xmllint (Debian's libxml2-utils) and the project's own schema of the Ant JUnit format,
// src/report/ant-junit.xsd: the tests need nothing outside the repository.
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { toolsRequired } from './chromium.ts';
import { REPO } from './fixtures.ts';

export const JUNIT_XSD = join(REPO, 'src', 'report', 'ant-junit.xsd');

function hasXmllint(): boolean {
  try {
    execFileSync('xmllint', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const noXmllint = hasXmllint() ? undefined : 'xmllint not installed (scripts/test-deps.d/40-chromium.sh installs libxml2-utils)';

/**
 * Why xmllint's checks are skipped here, or undefined when they run. Under `npm test` they
 * always run (and fail, saying xmllint is missing, when it is).
 */
export const xmllintMissing = toolsRequired ? undefined : noXmllint;

/** The schema is in the repository, so only a missing xmllint can skip its checks. */
export const schemaSkipReason: string | undefined = xmllintMissing;

/** Validates a file against the schema; returns xmllint's verdict and messages. */
export function validateJunit(file: string): { ok: boolean; output: string } {
  if (noXmllint) throw new Error(noXmllint);
  // xmllint says "<file> validates" (or why not) on stderr and exits 0 only when valid.
  const r = spawnSync('xmllint', ['--noout', '--schema', JUNIT_XSD, file], { encoding: 'utf8' });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

/** Runs an XPath query with xmllint --xpath and returns its output, less the newline xmllint adds. */
export function xpath(file: string, expr: string): string {
  if (noXmllint) throw new Error(noXmllint);
  return execFileSync('xmllint', ['--xpath', expr, file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).replace(/\n$/, '');
}

/** Appended to a test title, so a skipped test says why in the test report. */
export function skipNote(reason: string | undefined): string {
  return reason ? ` [skipped: ${reason}]` : '';
}
