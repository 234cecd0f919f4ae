// A device's C drivers compile unchanged to wasm32 with Debian's clang and lld, against
// the stand-in headers, from the recipe the device gives (the sample's three, and a
// driver in a folder of its own as an author's would be); builds are cached by the hash
// of their inputs; a wrong recipe names what is wrong; an ignored
// _Must_inspect_result_ fails the build; a missing toolchain is an InputError (exit 2)
// that names the Debian package.

import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { COMPILE_FLAGS, DRIVERS_DIR, buildDriver } from '../../../src/devices/wasm/build.ts';
import { InputError } from '../../../src/errors.ts';
import { guestLinuxRecipe, guestWindowsRecipe, vspRecipe } from '../../../devices/sample/c/recipes.ts';

const have = (tool: string) => spawnSync(tool, ['--version']).status === 0;
const toolchain = have('clang') && have('wasm-ld');
const cacheDir = mkdtempSync(join(tmpdir(), 'wasm-build-test-'));
afterAll(() => rmSync(cacheDir, { recursive: true, force: true }));

describe.skipIf(!toolchain)('building the C drivers to WebAssembly', () => {
  it.each([['vsp', vspRecipe], ['guest-windows', guestWindowsRecipe]] as const)('%s builds, imports the kernel API and exports DriverEntry', (_name, recipe) => {
    const b = buildDriver(recipe(), { cacheDir });
    const m = new WebAssembly.Module(b.wasm);
    const imports = WebAssembly.Module.imports(m).map((i) => `${i.module}.${i.name}`);
    expect(imports).toContain('kmcl.VmbChannelAllocate');
    expect(imports).toContain('env.ExAllocatePool2');
    expect(imports).toContain('wdf.DriverCreate');
    const exports = WebAssembly.Module.exports(m).map((e) => e.name);
    expect(exports).toEqual(expect.arrayContaining(['DriverEntry', 'memory', '__indirect_function_table']));
  });

  it('guest-linux builds against the stand-in kernel API, with Kbuild\'s W=1 warnings as errors', () => {
    const b = buildDriver(guestLinuxRecipe(), { cacheDir });
    const m = new WebAssembly.Module(b.wasm);
    const imports = WebAssembly.Module.imports(m).map((i) => i.name);
    for (const f of ['vmbus_open', 'vmbus_sendpacket', 'hv_pkt_iter_first', 'debugfs_create_file', 'schedule_delayed_work', 'spin_lock_bh', 'kmalloc', 'xa_insert_bh']) {
      expect(imports).toContain(f);
    }
    const exports = WebAssembly.Module.exports(m).map((e) => e.name);
    expect(exports).toEqual(expect.arrayContaining(['shim_linux_init', 'shim_linux_exit', 'shim_linux_probe', 'shim_fops_write', 'shim_param_ring_pages']));
  });

  it('takes an unchanged build from the cache, and a new -D switch makes a new build', () => {
    const first = buildDriver(vspRecipe(), { cacheDir });
    const again = buildDriver(vspRecipe(), { cacheDir });
    expect(again.cached).toBe(true);
    expect(again.hash).toBe(first.hash);
    const other = buildDriver(vspRecipe(), { cacheDir, defines: ['SHIM_BUILD_TEST=1'] });
    expect(other.hash).not.toBe(first.hash);
    expect(other.cached).toBe(false);
  });

  it('a recipe that compiles one file less of a folder it hashes is another build, not the cached one with that file in', () => {
    // vsp's recipe compiles common/vsp-save-helper.c, which the hashed folder `common`
    // holds either way: the same bytes, another set of objects.
    const all = vspRecipe();
    const fewer = { ...all, sources: all.sources.filter((f) => f !== 'common/vsp-save-helper.c') };
    expect(fewer.sources.length).toBe(all.sources.length - 1);
    expect(buildDriver(fewer, { cacheDir }).hash).not.toBe(buildDriver(all, { cacheDir }).hash);
  });

  describe('a replacement that is a patch (a test\'s unfixed driver, test/fixtures/drivers-unfixed)', () => {
    const fixture = (f: string) => fileURLToPath(new URL(`../../fixtures/drivers-unfixed/${f}`, import.meta.url));
    const d1 = { 'vsp/vsp-driver.c': fixture('d1-vsp-driver.patch') };

    it('is applied to the source as it is now: another build, cached like any other', () => {
      const fixed = buildDriver(vspRecipe(), { cacheDir });
      const unfixedBuild = buildDriver(vspRecipe(), { cacheDir, replace: d1 });
      expect(unfixedBuild.hash).not.toBe(fixed.hash);
      expect(buildDriver(vspRecipe(), { cacheDir, replace: d1 }).hash).toBe(unfixedBuild.hash);
    });

    it('that no longer applies (the source changed under it) is an InputError naming the patch', () => {
      const dir = mkdtempSync(join(tmpdir(), 'stale-patch-'));
      const stale = join(dir, 'stale.patch');
      // d1's hunk with a context line the source no longer has.
      writeFileSync(stale, readFileSync(d1['vsp/vsp-driver.c'], 'utf8').replace('queueConfig.EvtIoDeviceControl = VspEvtIoDeviceControl;', 'queueConfig.EvtIoDeviceControl = VspOldName;'));
      try {
        const e = (() => {
          try {
            buildDriver(vspRecipe(), { cacheDir, replace: { 'vsp/vsp-driver.c': stale } });
          } catch (x) {
            return x;
          }
          return null;
        })();
        expect(e).toBeInstanceOf(InputError);
        expect((e as InputError).message).toMatch(/the patch does not apply to vsp\/vsp-driver\.c as it is now/);
        expect((e as InputError).location.file).toBe(stale);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('for another source than the one it replaces is refused, naming both', () => {
      expect(() => buildDriver(vspRecipe(), { cacheDir, replace: { 'vsp/vsp-send.c': d1['vsp/vsp-driver.c'] } })).toThrow(/the patch must change vsp\/vsp-send\.c alone; it changes vsp\/vsp-driver\.c/);
    });
  });

  it("builds an author's KMDF driver from its own folder: its include folder and the trace library are found", () => {
    const root = mkdtempSync(join(tmpdir(), 'own-driver-'));
    mkdirSync(join(root, 'inc'));
    writeFileSync(join(root, 'inc', 'own.h'), '#define OWN_TAG 0x6e774f\n');
    writeFileSync(join(root, 'driver.c'), [
      '#include <ntddk.h>', '#include <wdf.h>', '#include <own.h>', '#include <vmbus_bench_trace.h>',
      'DRIVER_INITIALIZE DriverEntry;',
      'static EVT_WDF_DRIVER_DEVICE_ADD OwnAdd;',
      'static NTSTATUS OwnAdd(WDFDRIVER d, PWDFDEVICE_INIT i) { UNREFERENCED_PARAMETER(d); UNREFERENCED_PARAMETER(i); return STATUS_SUCCESS; }',
      'NTSTATUS DriverEntry(PDRIVER_OBJECT o, PUNICODE_STRING p) {',
      '  WDF_DRIVER_CONFIG c; WDF_DRIVER_CONFIG_INIT(&c, OwnAdd);',
      '  if (vbt_channel_number((const vbt_u8 *)"0123456789abcdef") != OWN_TAG) return WdfDriverCreate(o, p, WDF_NO_OBJECT_ATTRIBUTES, &c, WDF_NO_HANDLE);',
      '  return STATUS_UNSUCCESSFUL;',
      '}', '',
    ].join('\n'));
    try {
      const recipe = { name: 'own-driver', world: 'kmdf', root, sources: ['driver.c'], includeDirs: ['inc'] } as const;
      const b = buildDriver(recipe, { cacheDir });
      expect(b.cached).toBe(false);
      expect(b.path).toMatch(/own-driver-[0-9a-f]{32}\.wasm$/);
      const m = new WebAssembly.Module(b.wasm);
      expect(WebAssembly.Module.exports(m).map((e) => e.name)).toContain('DriverEntry');
      expect(WebAssembly.Module.imports(m).map((i) => `${i.module}.${i.name}`)).toContain('wdf.DriverCreate');
      // A header of its own is an input: changing it is a new build.
      writeFileSync(join(root, 'inc', 'own.h'), '#define OWN_TAG 0x6e774e\n');
      expect(buildDriver(recipe, { cacheDir }).hash).not.toBe(b.hash);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('refuses a wrong recipe with an InputError naming what is wrong', () => {
    const fails = (recipe: Parameters<typeof buildDriver>[0]) => {
      try {
        buildDriver(recipe, { cacheDir });
      } catch (e) {
        expect(e).toBeInstanceOf(InputError);
        return (e as Error).message;
      }
      throw new Error('built');
    };
    const root = DRIVERS_DIR;
    expect(fails({ name: 'x', world: 'kmdf', root, sources: ['vsp/no-such-file.c'] })).toMatch(/source not found.*no-such-file\.c|no-such-file\.c.*source not found/s);
    expect(fails({ name: 'a b', world: 'kmdf', root, sources: ['vsp/vsp-driver.c'] })).toMatch(/name 'a b'/);
    expect(fails({ name: 'x', world: 'nt4' as 'kmdf', root, sources: ['vsp/vsp-driver.c'] })).toMatch(/world 'nt4'/);
    expect(fails({ name: 'x', world: 'kmdf', root: 'lab/drivers', sources: ['vsp/vsp-driver.c'] })).toMatch(/not an absolute path/);
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
        buildDriver(vspRecipe(), { cacheDir });
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
