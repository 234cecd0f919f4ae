// Builds a device's C drivers to WebAssembly with Debian's clang and lld, from a recipe
// the device gives (its sources, its own header and include folders, extra exports and
// flags: `DriverRecipe`). The sample's recipes are in devices/sample/c/recipes.ts,
// blockq's in devices/blockq/c/recipe.ts; this file knows no device.
//
// The driver sources compile unchanged: freestanding wasm32, no libc. What the build
// adds is the world the recipe names: a KMDF driver (`kmdf`) sees the stand-in WDK
// headers (lab/drivers/wdk-standin/km), a Linux driver (`linux`) the stand-in kernel API
// (lab/drivers/linux-standin); both see the trace library (lab/drivers/trace-lib, as
// `#include <vmbus_bench_trace.h>`). Every function a driver calls and does not define
// becomes an import, which the kernel shim (kmcl-shim.ts, wdf-shim.ts, ...) implements.
// The shim's own C part (c/*.c: memcpy and friends, the KMCL function tables, WDF
// structure marshalling) is linked in beside the driver, never into its sources.
//
// `_Must_inspect_result_` is clang's warn_unused_result, and -Werror turns an ignored
// result into a build failure: the compile-time half of the Driver-Verifier-style checks.
//
// Builds are cached by a hash of everything that goes in (sources, headers, flags, the
// compiler's version) under node_modules/.cache, or VMBUS_BENCH_WASM_CACHE.

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError } from '../../errors.ts';
import { defaultCacheDir, execaSync, requireTool } from './toolchain.ts';

export { defaultCacheDir };

/** Where the stand-in headers and the trace library live (shared by every device's drivers). */
export const DRIVERS_DIR = fileURLToPath(new URL('../../../lab/drivers', import.meta.url));
const SHIM_C_DIR = fileURLToPath(new URL('./c', import.meta.url));
const REPO = fileURLToPath(new URL('../../..', import.meta.url));

/**
 * The kernel a driver is written for: `kmdf`, a Windows KMDF driver using KMCL (the
 * stand-in WDK headers; DriverEntry exported; the WDF and KMCL shims), or `linux`, a
 * Linux VMBus driver (the stand-in kernel API; its entry points exported by the shim's
 * linux-glue.c).
 */
export type DriverWorld = 'kmdf' | 'linux';

/** What a device tells the build about one of its C drivers. */
export interface DriverRecipe {
  /** names the build in the cache and in messages: letters, digits, dot, dash, underscore */
  name: string;
  world: DriverWorld;
  /** the absolute folder every path below is relative to */
  root: string;
  /** the driver's C sources */
  sources: readonly string[];
  /** folders whose every .c and .h goes into the hash: the driver's own headers */
  headerDirs?: readonly string[];
  /** folders for `#include <...>` beside the world's (`-I`) */
  includeDirs?: readonly string[];
  /** functions to export by name beside the world's (export_name in the source also works) */
  exports?: readonly string[];
  /** warning flags of the driver's own build system */
  cflags?: readonly string[];
}

/** What a world adds to every recipe. */
interface World {
  /** -isystem folders, under lab/drivers */
  system: string[];
  /** shim C files, under src/devices/wasm/c */
  shim: string[];
  exports: string[];
}

const WORLDS: Record<DriverWorld, World> = {
  kmdf: { system: ['wdk-standin/km'], shim: ['runtime.c', 'wdf-glue.c', 'kmcl-table.c'], exports: ['DriverEntry'] },
  // The entry points are exported by name from the C side (export_name in linux-glue.c).
  linux: { system: ['linux-standin'], shim: ['runtime.c', 'linux-glue.c'], exports: [] },
};

const TRACE_LIB = 'trace-lib';

/** The .c files of `dir` (under `root`; '.' for root itself), sorted: for a recipe that takes a whole folder. */
export function cSourcesIn(root: string, dir: string): string[] {
  return readdirSync(join(root, dir)).filter((f) => f.endsWith('.c')).sort().map((f) => (dir === '.' ? f : `${dir}/${f}`));
}

/** The recipe checked, with absolute paths: what a build reads. */
interface Resolved {
  name: string;
  world: World;
  sources: string[];
  /** folders whose .c/.h files are hashed */
  hashedDirs: string[];
  includes: string[];
  exports: string[];
  cflags: string[];
}

/** A path as messages show it: from the repository when inside it. */
function shown(f: string): string {
  const r = relative(REPO, f);
  return r.startsWith('..') || isAbsolute(r) ? f : r;
}

function resolveRecipe(r: DriverRecipe): Resolved {
  const where = { field: `recipe ${r.name}` };
  if (!/^[A-Za-z0-9._-]+$/.test(r.name)) throw new InputError(`driver recipe name '${r.name}': only letters, digits, dot, dash and underscore`, where);
  const world = WORLDS[r.world];
  if (!world) throw new InputError(`driver recipe ${r.name}: world '${String(r.world)}' is not one of ${Object.keys(WORLDS).join(', ')}`, where);
  if (!isAbsolute(r.root)) throw new InputError(`driver recipe ${r.name}: root '${r.root}' is not an absolute path`, where);
  if (r.sources.length === 0) throw new InputError(`driver recipe ${r.name}: no sources`, where);
  const sources = r.sources.map((f) => resolve(r.root, f));
  for (const f of sources) if (!existsSync(f)) throw new InputError(`driver recipe ${r.name}: source not found`, { file: shown(f) });
  const own = [...(r.headerDirs ?? []), ...(r.includeDirs ?? [])].map((d) => resolve(r.root, d));
  const system = world.system.map((d) => join(DRIVERS_DIR, d));
  return {
    name: r.name,
    world,
    sources,
    hashedDirs: [...new Set([...own, ...system, join(DRIVERS_DIR, TRACE_LIB)])],
    includes: [
      ...system.flatMap((d) => ['-isystem', d]),
      '-I', join(DRIVERS_DIR, TRACE_LIB),
      ...(r.includeDirs ?? []).flatMap((d) => ['-I', resolve(r.root, d)]),
    ],
    exports: [...world.exports, ...(r.exports ?? [])],
    cflags: [...(r.cflags ?? [])],
  };
}

export const COMPILE_FLAGS = [
  '--target=wasm32', '-ffreestanding', '-nostdlib', '-nostdlibinc', '-fms-extensions',
  // -fno-inline: a violation names the driver's own functions, as a stack in a debugger would.
  '-O2', '-fno-inline', '-mbulk-memory', '-Wall', '-Wextra', '-Werror', '-Werror=unused-result',
  // clang's own stddef.h/stdarg.h stay visible; -nostdlibinc hides the host's libc.
];

export interface BuiltDriver {
  name: string;
  wasm: Uint8Array;
  hash: string;
  path: string;
  cached: boolean;
}

export interface BuildOptions {
  /** extra -D switches */
  defines?: readonly string[];
  /**
   * Sources to replace, by their path as the recipe gives it, with another file, or
   * changed by a unified diff of that one source (a file ending in `.patch`, applied with
   * GNU patch to the source as it is now): a test builds the driver with a defect put
   * back, kept as the few lines that differ, so the fixture cannot drift from the fixed
   * source unnoticed. A patch that does not apply exactly (no fuzz), or is for another
   * file, is an InputError naming the patch.
   */
  replace?: Readonly<Record<string, string>>;
  cacheDir?: string;
}

/** A source to compile: its file, and its name in the hash (a patched source's is its own and its patch's). */
interface CompiledSource {
  file: string;
  /** the folder its "..." includes are relative to (a replacement keeps the folder of the file it replaces) */
  dir: string;
  name: string;
}

function hashInputs(r: Resolved, sources: readonly CompiledSource[], flags: readonly string[], versions: string[]): string {
  const h = createHash('sha256');
  // Which files are compiled, not only their bytes: a file of a hashed folder that a
  // recipe starts (or stops) compiling is another build with the same bytes.
  h.update(JSON.stringify({ flags, versions, exports: r.exports, shim: r.world.shim, includes: r.includes.map((d) => relative(REPO, d)), compiled: sources.map((x) => x.name) }));
  const files = new Set<string>();
  for (const x of sources) {
    h.update(x.name);
    h.update(readFileSync(x.file));
  }
  for (const dir of r.hashedDirs) {
    if (!existsSync(dir)) continue;
    for (const f of walk(dir)) if (/\.[ch]$/.test(f)) files.add(f);
  }
  for (const f of r.world.shim) files.add(join(SHIM_C_DIR, f));
  for (const f of walk(SHIM_C_DIR)) if (f.endsWith('.h')) files.add(f);
  for (const f of [...files].sort()) {
    h.update(relative(REPO, f));
    h.update(readFileSync(f));
  }
  return h.digest('hex').slice(0, 32);
}

function walk(dir: string): string[] {
  return readdirSync(dir).sort().flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}


/**
 * Builds one driver from its recipe (or takes it from the cache). Throws InputError
 * naming the package when clang or wasm-ld is missing, InputError naming the file when
 * the recipe is wrong, and InputError with clang's output when the driver does not
 * compile (an ignored _Must_inspect_result_ among them).
 */
export function buildDriver(recipe: DriverRecipe, opts: BuildOptions = {}): BuiltDriver {
  // The same build again in this process (explore loads the driver once per schedule):
  // the last answer while no input file has changed size or time since.
  const memoKey = JSON.stringify([recipe, opts.defines ?? [], opts.replace ?? {}, opts.cacheDir ?? defaultCacheDir(), process.env.PATH ?? '']);
  const memo = builtThisProcess.get(memoKey);
  if (memo && memo.stamp === inputStamp(memo.files)) return { ...memo.built, cached: true };
  const r = resolveRecipe(recipe);
  const files = inputFiles(r, opts);
  const stamp = inputStamp(files);
  const built = buildFresh(recipe, r, opts);
  builtThisProcess.set(memoKey, { built, files, stamp });
  return built;
}

const builtThisProcess = new Map<string, { built: BuiltDriver; files: string[]; stamp: string }>();

/** Every file a build reads: its sources (replacements included), headers and shim. */
function inputFiles(r: Resolved, opts: BuildOptions): string[] {
  const files = new Set<string>(r.sources);
  for (const to of Object.values(opts.replace ?? {})) files.add(resolve(to));
  for (const dir of r.hashedDirs) {
    if (existsSync(dir)) for (const f of walk(dir)) if (/\.[ch]$/.test(f)) files.add(f);
  }
  for (const f of walk(SHIM_C_DIR)) files.add(f);
  return [...files].sort();
}

function inputStamp(files: readonly string[]): string {
  return files.map((f) => {
    try {
      const st = statSync(f);
      return `${st.size}:${st.mtimeMs}`;
    } catch {
      return 'gone';
    }
  }).join(',');
}

function buildFresh(recipe: DriverRecipe, r: Resolved, opts: BuildOptions): BuiltDriver {
  // Patched sources are written to a folder of their own, gone once the build is.
  const patched = Object.values(opts.replace ?? {}).some(isPatch) ? mkdtempSync(join(tmpdir(), `vmbus-bench-${r.name}-patched-`)) : null;
  try {
    return buildSources(recipe, r, opts, patched);
  } finally {
    if (patched) rmSync(patched, { recursive: true, force: true });
  }
}

const isPatch = (file: string): boolean => file.endsWith('.patch');

function buildSources(recipe: DriverRecipe, r: Resolved, opts: BuildOptions, patchDir: string | null): BuiltDriver {
  const name = r.name;
  const sources: CompiledSource[] = r.sources.map((f) => ({ file: f, dir: dirname(f), name: relative(REPO, f) }));
  for (const [from, to] of Object.entries(opts.replace ?? {})) {
    const i = recipe.sources.indexOf(from);
    if (i < 0) throw new InputError(`${name}: no source ${from} to replace`);
    const x = sources[i]!;
    if (isPatch(to)) {
      x.file = applyPatch(name, from, x.file, resolve(to), join(patchDir!, `${i}-${basename(from)}`));
      x.name = `${x.name} + ${relative(REPO, resolve(to))}`;
    } else {
      x.file = resolve(to);
      x.name = relative(REPO, x.file);
    }
  }
  const defines = (opts.defines ?? []).map((d) => `-D${d}`);
  const flags = [...COMPILE_FLAGS, ...r.cflags, ...defines];
  const versions = [requireTool('clang'), requireTool('wasm-ld')];
  const hash = hashInputs(r, sources, flags, versions);
  const dir = opts.cacheDir ?? defaultCacheDir();
  const out = join(dir, `${name}-${hash}.wasm`);
  if (existsSync(out)) return { name, wasm: readFileSync(out), hash, path: out, cached: true };

  mkdirSync(dir, { recursive: true });
  // A work folder of its own per build: the emulated nightly's worker threads share one
  // pid, and on an empty cache several of them build the same driver at once.
  const work = mkdtempSync(join(dir, `${name}-${hash}.tmp-`));
  try {
    const objects: string[] = [];
    const compile = (src: string, extra: string[]): void => {
      const obj = join(work, `${objects.length}.o`);
      const res = execaSync()('clang', [...flags, ...extra, '-c', src, '-o', obj], { reject: false, cwd: recipe.root });
      if (res.exitCode !== 0) {
        throw new InputError(`does not compile to wasm32:\n${String(res.stderr)}`, { file: shown(src) });
      }
      objects.push(obj);
    };
    for (const s of sources) compile(s.file, [...r.includes, '-iquote', s.dir]);
    for (const s of r.world.shim) compile(join(SHIM_C_DIR, s), [...r.includes, '-I', SHIM_C_DIR]);
    const tmpWasm = join(work, 'out.wasm');
    const link = execaSync()('wasm-ld', [
      '--no-entry', '--allow-undefined', '--export-table', '--growable-table',
      '--export=__heap_base',
      ...r.exports.map((e) => `--export=${e}`),
      '-z', 'stack-size=131072', '--initial-memory=1048576',
      ...objects, '-o', tmpWasm,
    ], { reject: false });
    if (link.exitCode !== 0) throw new InputError(`${name}: wasm-ld failed:\n${String(link.stderr)}`);
    const wasm = readFileSync(tmpWasm);
    // Written whole, then renamed: a concurrent build never reads half a module.
    renameSync(tmpWasm, out);
    return { name, wasm, hash, path: out, cached: false };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Applies `patch`, a unified diff of the one source `from` (the recipe's path: its `+++`
 * line names it, with git's `b/` or not), to `original` as it is now, into `out`, with
 * GNU patch: exactly (no fuzz; a hunk may only have moved), or an InputError naming the
 * patch and what patch said. Returns `out`.
 */
function applyPatch(driver: string, from: string, original: string, patch: string, out: string): string {
  if (!existsSync(patch)) throw new InputError(`${driver}: patch for ${from} not found`, { file: shown(patch) });
  const targets = [...readFileSync(patch, 'utf8').matchAll(/^\+\+\+ (?:b\/)?(\S+)/gm)].map((m) => m[1]!);
  if (targets.length !== 1 || targets[0] !== from) {
    throw new InputError(`${driver}: the patch must change ${from} alone; it changes ${targets.join(', ') || 'nothing'}`, { file: shown(patch) });
  }
  requireTool('patch');
  const res = execaSync()('patch', ['--batch', '--forward', '--fuzz=0', '--no-backup-if-mismatch', '--reject-file=-', '--quiet', '-o', out, original, patch], { reject: false });
  if (res.exitCode !== 0) {
    const said = `${String(res.stdout)}${String(res.stderr)}`.trim();
    throw new InputError(`${driver}: the patch does not apply to ${from} as it is now (the source changed since the patch was made: make it again against the current source)${said ? `:\n${said}` : ''}`, { file: shown(patch) });
  }
  return out;
}
