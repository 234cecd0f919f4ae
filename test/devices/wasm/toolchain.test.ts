// The toolchain a C driver's WebAssembly build needs: each missing tool is an input error
// (exit 2) naming the Debian package that provides it, and the cache folder is the
// user's to choose.

import { mkdtempSync, symlinkSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultCacheDir, requireTool } from '../../../src/devices/wasm/toolchain.ts';
import { InputError } from '../../../src/errors.ts';

function withPath<T>(path: string, f: () => T): T {
  const saved = process.env.PATH;
  process.env.PATH = path;
  try {
    return f();
  } finally {
    process.env.PATH = saved;
  }
}

const errorOf = (f: () => unknown): InputError => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(InputError);
    return e as InputError;
  }
  throw new Error('no error');
};

describe('the toolchain', () => {
  it.each([['clang', 'clang'], ['wasm-ld', 'lld']] as const)('a missing %s names the package %s, exit 2', (tool, pkg) => {
    const e = errorOf(() => withPath(mkdtempSync(join(tmpdir(), 'no-tools-')), () => requireTool(tool)));
    expect(e.exitCode).toBe(2);
    expect(e.message).toContain(`${tool} is not installed`);
    expect(e.message).toContain(`'${pkg}'`);
  });

  it.skipIf(spawnSync('clang', ['--version']).status !== 0)('finds a tool on PATH through a symlink and reports its version line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tools-'));
    const real = spawnSync('sh', ['-c', 'command -v clang'], { encoding: 'utf8' }).stdout.trim();
    symlinkSync(real, join(dir, 'clang'));
    expect(withPath(dir, () => requireTool('clang'))).toMatch(/clang version/);
  });

  it('caches builds where VMBUS_BENCH_WASM_CACHE says, else under node_modules/.cache', () => {
    const saved = process.env.VMBUS_BENCH_WASM_CACHE;
    try {
      process.env.VMBUS_BENCH_WASM_CACHE = '/somewhere/else';
      expect(defaultCacheDir()).toBe('/somewhere/else');
      delete process.env.VMBUS_BENCH_WASM_CACHE;
      expect(defaultCacheDir()).toMatch(/node_modules\/\.cache\/vmbus-bench-wasm$/);
    } finally {
      if (saved === undefined) delete process.env.VMBUS_BENCH_WASM_CACHE;
      else process.env.VMBUS_BENCH_WASM_CACHE = saved;
    }
  });
});
