// The toolchain a C driver's WebAssembly build needs: Debian's clang and wasm-ld (package
// lld), found on PATH, their version lines (part of every build's hash), and the cache
// folder builds go to. A missing tool is the user's to install: an InputError (exit 2)
// naming the package, never a crash.

import { threadId } from 'node:worker_threads';
import { mkdirSync, readFileSync, realpathSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { InputError } from '../../errors.ts';

/**
 * execa's execaSync, loaded on first use: only a build (a cache miss) or a tool's first
 * version check runs a program, and loading execa cost every explore worker ~70 ms of
 * CPU at its start while the drivers came from the cache. (execa is ES modules without
 * top-level await, which Node's require loads synchronously, as these callers need.)
 */
let execa: typeof import('execa').execaSync | undefined;
export function execaSync(): typeof import('execa').execaSync {
  return (execa ??= (createRequire(import.meta.url)('execa') as typeof import('execa')).execaSync);
}

const REPO = fileURLToPath(new URL('../../..', import.meta.url));

/** Where builds are cached: VMBUS_BENCH_WASM_CACHE, or node_modules/.cache/vmbus-bench-wasm. */
export function defaultCacheDir(): string {
  return process.env.VMBUS_BENCH_WASM_CACHE ?? join(REPO, 'node_modules', '.cache', 'vmbus-bench-wasm');
}

/**
 * The Debian package that provides each tool (a missing one is the user's to install).
 * GNU patch applies a test's unfixed-driver fixtures (build.ts, `replace` with a .patch).
 */
const TOOL_PACKAGE = { clang: 'clang', 'wasm-ld': 'lld', patch: 'patch' } as const;

/** Each tool's version line, asked once per process (a spawn costs more than a cached build). */
const toolVersions = new Map<string, string>();

export function requireTool(tool: keyof typeof TOOL_PACKAGE): string {
  const key = `${tool}\0${process.env.PATH ?? ''}`;
  const known = toolVersions.get(key);
  if (known !== undefined) return known;
  const version = cachedVersion(tool) ?? findTool(tool);
  toolVersions.set(key, version);
  return version;
}

/**
 * The tool's version line from the cache directory, recorded the last time it was asked,
 * while the binary found on PATH is the same file (path, size and mtime): the spawn
 * cost every process (every explore worker thread) a third of a second. Null: ask it.
 */
function cachedVersion(tool: keyof typeof TOOL_PACKAGE): string | null {
  const bin = onPath(tool);
  if (!bin) return null;
  const st = statSync(bin);
  const stamp = `${bin}\0${st.size}\0${st.mtimeMs}`;
  const file = join(defaultCacheDir(), `${tool}.version`);
  try {
    const [seen, version] = readFileSync(file, 'utf8').split('\n');
    if (seen === stamp && version) return version;
  } catch {
    // not recorded yet
  }
  const version = findTool(tool);
  try {
    mkdirSync(defaultCacheDir(), { recursive: true });
    // pid and thread: worker threads share a pid and may record the same tool at once.
    const staged = `${file}.${process.pid}.${threadId}`;
    writeFileSync(staged, `${stamp}\n${version}\n`);
    renameSync(staged, file);
  } catch {
    // a read-only cache only costs the spawn next time
  }
  return version;
}

/** The file PATH resolves `tool` to (symlinks followed), or null. */
function onPath(tool: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      const p = realpathSync(join(dir, tool));
      if (statSync(p).isFile()) return p;
    } catch {
      // not in this folder
    }
  }
  return null;
}

function findTool(tool: keyof typeof TOOL_PACKAGE): string {
  try {
    const r = execaSync()(tool, ['--version'], { reject: false });
    if (r.exitCode === 0) return String(r.stdout).split('\n')[0] ?? tool;
  } catch {
    // not on PATH: the error below says what to install
  }
  throw new InputError(`${tool} is not installed: the C drivers cannot be built to WebAssembly`, {}, {
    hint: `install the Debian package '${TOOL_PACKAGE[tool]}' (apt-get install -y ${tool === 'patch' ? 'patch' : 'clang lld'})`,
  });
}
