// The sample C drivers compile unchanged to wasm32 with Debian's clang and lld, against
// the stand-in headers; builds are cached by the hash of their inputs; an ignored
// _Must_inspect_result_ fails the build; a missing toolchain is an InputError (exit 2)
// that names the Debian package.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { COMPILE_FLAGS, DRIVERS_DIR, buildDriver } from '../../../src/devices/wasm/build.ts';
import { InputError } from '../../../src/errors.ts';

const have = (tool: string) => spawnSync(tool, ['--version']).status === 0;
const toolchain = have('clang') && have('wasm-ld');
const cacheDir = mkdtempSync(join(tmpdir(), 'wasm-build-test-'));
afterAll(() => rmSync(cacheDir, { recursive: true, force: true }));

describe.skipIf(!toolchain)('building the C drivers to WebAssembly', () => {
  it.each(['vsp', 'guest-windows'] as const)('%s builds, imports the kernel API and exports DriverEntry', (name) => {
    const b = buildDriver(name, { cacheDir });
    const m = new WebAssembly.Module(b.wasm);
    const imports = WebAssembly.Module.imports(m).map((i) => `${i.module}.${i.name}`);
    expect(imports).toContain('kmcl.VmbChannelAllocate');
    expect(imports).toContain('env.ExAllocatePool2');
    expect(imports).toContain('wdf.DriverCreate');
    const exports = WebAssembly.Module.exports(m).map((e) => e.name);
    expect(exports).toEqual(expect.arrayContaining(['DriverEntry', 'memory', '__indirect_function_table']));
  });

  it('guest-linux builds against the stand-in kernel API, with Kbuild\'s W=1 warnings as errors', () => {
    const b = buildDriver('guest-linux', { cacheDir });
    const m = new WebAssembly.Module(b.wasm);
    const imports = WebAssembly.Module.imports(m).map((i) => i.name);
    for (const f of ['vmbus_open', 'vmbus_sendpacket', 'hv_pkt_iter_first', 'debugfs_create_file', 'schedule_delayed_work', 'spin_lock_bh', 'kmalloc', 'xa_insert_bh']) {
      expect(imports).toContain(f);
    }
    const exports = WebAssembly.Module.exports(m).map((e) => e.name);
    expect(exports).toEqual(expect.arrayContaining(['shim_linux_init', 'shim_linux_exit', 'shim_linux_probe', 'shim_fops_write', 'shim_param_ring_pages']));
  });

  it('takes an unchanged build from the cache, and a new -D switch makes a new build', () => {
    const first = buildDriver('vsp', { cacheDir });
    const again = buildDriver('vsp', { cacheDir });
    expect(again.cached).toBe(true);
    expect(again.hash).toBe(first.hash);
    const other = buildDriver('vsp', { cacheDir, defines: ['SHIM_BUILD_TEST=1'] });
    expect(other.hash).not.toBe(first.hash);
    expect(other.cached).toBe(false);
  });

  it('refuses a driver that ignores a _Must_inspect_result_ KMCL result', () => {
    const probe = (body: string) =>
      spawnSync('clang', [
        ...COMPILE_FLAGS, '-isystem', join(DRIVERS_DIR, 'wdk-standin', 'km'), '-x', 'c', '-c', '-o', '/dev/null', '-',
      ], { input: `#include <vmbuskernelmodeclientlibapi.h>\n${body}\n`, encoding: 'utf8' });
    const checked = probe('NTSTATUS f(PKMCL_SERVER_INTERFACE_V1 k, VMBCHANNEL c) { return k->VmbChannelSaveBegin(c); }');
    expect(checked.status, checked.stderr).toBe(0);
    for (const call of ['VmbChannelSaveBegin(c)', 'VmbChannelEnable(c)', 'VmbChannelRestoreFromBuffer(c, 0, 0)']) {
      const ignored = probe(`void f(PKMCL_SERVER_INTERFACE_V1 k, VMBCHANNEL c) { k->${call}; }`);
      expect(ignored.status).not.toBe(0);
      expect(ignored.stderr).toMatch(/ignoring return value/);
    }
  });
});

describe('a missing toolchain', () => {
  it('is an InputError naming the Debian package, not a crash', () => {
    const path = process.env.PATH;
    process.env.PATH = mkdtempSync(join(tmpdir(), 'empty-path-'));
    try {
      let err: unknown;
      try {
        buildDriver('vsp', { cacheDir });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(InputError);
      expect((err as InputError).exitCode).toBe(2);
      expect((err as Error).message).toMatch(/clang is not installed/);
      expect((err as Error).message).toMatch(/apt-get install -y clang lld/);
    } finally {
      process.env.PATH = path;
    }
  });
});
