// A C test program built with the machine's gcc for the tests of one file: built into a
// temporary folder before the file's tests run and removed after them. The drivers' C
// code is checked this way in user mode (protocol-agreement, the trace library).

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll } from 'vitest';

/** The repository's root folder (sources and include folders are named from it). */
export const REPO = fileURLToPath(new URL('../../../', import.meta.url));

/** gcc is installed (scripts/test-deps.d/30-drivers.sh installs it); the tests skip without it. */
export const haveGcc = spawnSync('gcc', ['--version']).status === 0;

/** Why a describe block is skipped, for its title: '' when gcc is there. */
export const gccSkipNote = haveGcc ? '' : ' (skipped: gcc not installed; scripts/test-deps.d/30-drivers.sh installs it)';

export interface GccBuild {
  /** sources, from the repository's root */
  sources: string[];
  /** include folders, from the repository's root */
  include: string[];
  /** macros to define (-D) */
  define?: string[];
  /**
   * warnings beyond -Wall -Wextra -Werror, which every build has: the drivers' code is
   * meant to compile in user mode without a warning too
   */
  warnings?: string[];
}

/**
 * Registers the build of program `name` (beforeAll) and its removal (afterAll) in the
 * calling test file. Returns where it will be: `path` is set once it is built (empty
 * without gcc).
 */
export function gccProgram(name: string, build: GccBuild): { path: string } {
  const program = { path: '' };
  let dir = '';
  beforeAll(() => {
    if (!haveGcc) return;
    dir = mkdtempSync(join(tmpdir(), `${name}-`));
    const path = join(dir, name);
    execFileSync('gcc', [
      '-std=c11', '-O1', '-Wall', '-Wextra', '-Werror', ...(build.warnings ?? []),
      ...(build.define ?? []).map((d) => `-D${d}`),
      ...build.include.flatMap((i) => ['-I', join(REPO, i)]),
      '-o', path, ...build.sources.map((s) => join(REPO, s)),
    ]);
    program.path = path;
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  return program;
}
