// blockq's Linux guest driver (devices/blockq/c/guest-linux) builds as a kernel module
// with Kbuild against Debian's kernel headers without a single warning, binds blockq's
// interface type GUID, and keeps the kernel's checkpatch style; the same sources build
// to wasm32 against the stand-in kernel API (the emulator's `devices: c-linux`), with
// the same warnings as errors. Two builds of one source: the stand-in cannot drift from
// the real API unnoticed.
//
// The Kbuild build runs once, in a copy of the folders it reads (devices/blockq/c, the
// trace library and lab/drivers/common's debugfs helper), so the work tree stays clean.

import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INTERFACE_TYPE_GUID } from '../../../devices/blockq/protocol.ts';
import { blockqGuestLinuxRecipe } from '../../../devices/blockq/c/recipe.ts';
import { buildDriver } from '../../../src/devices/wasm/build.ts';
import { findDebianHeaders } from '../../drivers/support/debian-headers.ts';

const repo = fileURLToPath(new URL('../../..', import.meta.url));
const CHECKPATCH = '/var/cache/vmbus-bench/checkpatch/scripts/checkpatch.pl';
const headers = findDebianHeaders();
const make = spawnSync('make', ['--version']).status === 0;
const skipBuild = !headers
  ? 'no /usr/src/linux-headers-*-amd64 (install linux-headers-amd64: scripts/test-deps.d/30-drivers.sh)'
  : !make
    ? 'make is not installed'
    : '';
const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;

let work = '';
let build: { status: number | null; output: string } = { status: null, output: '' };
const module = () => join(work, 'devices/blockq/c/guest-linux');

beforeAll(() => {
  if (skipBuild) return;
  work = mkdtempSync(join(tmpdir(), 'blockq-guest-'));
  for (const dir of ['devices/blockq/c', 'lab/drivers/trace-lib', 'lab/drivers/common']) {
    mkdirSync(join(work, dir, '..'), { recursive: true });
    cpSync(join(repo, dir), join(work, dir), { recursive: true });
  }
  // W=1 adds the kernel's extra warnings; the module must pass those too.
  const r = spawnSync('make', ['-C', headers!, `M=${module()}`, 'W=1', 'modules'], {
    encoding: 'utf8',
    env: { ...process.env, LC_ALL: 'C' },
  });
  build = { status: r.status, output: `${r.stdout}\n${r.stderr}` };
}, 240_000);
afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe.skipIf(skipBuild !== '')(`blockq's Linux guest module against ${headers ?? 'Debian headers'}${skipBuild ? ` (skipped: ${skipBuild})` : ''}`, () => {
  it('builds with Kbuild and W=1 without any warning', () => {
    expect(build.status, build.output).toBe(0);
    const warnings = build.output.split('\n').filter((l) => /warning:|WARNING:|error:/.test(l));
    expect(warnings).toEqual([]);
    expect(existsSync(join(module(), 'vmbus_blockq_guest.ko'))).toBe(true);
  });

  it('binds blockq\'s interface type GUID (not the sample\'s) and depends on hv_vmbus', () => {
    const ko = readFileSync(join(module(), 'vmbus_blockq_guest.ko')).toString('latin1');
    // The vmbus modalias is the GUID's 16 bytes in memory order (Data1..3 little-endian).
    const hex = INTERFACE_TYPE_GUID.replace(/-/g, '');
    const le = (s: string) => s.match(/../g)!.reverse().join('');
    const memoryOrder = le(hex.slice(0, 8)) + le(hex.slice(8, 12)) + le(hex.slice(12, 16)) + hex.slice(16);
    expect(ko).toContain(`alias=vmbus:${memoryOrder}\0`);
    expect(ko).toContain('depends=hv_vmbus\0');
    expect(ko).toContain('name=vmbus_blockq_guest\0');
  });
});

describe.skipIf(!toolchain)('blockq\'s Linux guest module against the stand-in kernel API (wasm32)', () => {
  it('builds with -Wall -Wextra -Werror and exports what the shim calls', () => {
    const b = buildDriver(blockqGuestLinuxRecipe(), { cacheDir: mkdtempSync(join(tmpdir(), 'blockq-wasm-')) });
    const exports = WebAssembly.Module.exports(new WebAssembly.Module(b.wasm)).map((e) => e.name);
    expect(exports).toEqual(expect.arrayContaining(['shim_linux_init', 'shim_linux_exit', 'shim_linux_probe', 'shim_fops_write', 'shim_fops_read', 'shim_param_ring_pages', 'shim_param_trace_kib']));
  });
});

// Messages that are there on purpose, each with its reason.
const ACCEPTED: Array<[RegExp, string]> = [
  // One source builds where .remove returns int (< 6.3) and where it returns void.
  [/bq_guest_main\.c:\d+: WARNING: LINUX_VERSION_CODE should be avoided/, 'remove() signature changed in 6.3'],
];

const checkpatch = existsSync(CHECKPATCH) && spawnSync('perl', ['-v']).status === 0;
describe.skipIf(!checkpatch)(`checkpatch.pl --strict${checkpatch ? '' : ' (skipped: checkpatch.pl not extracted from linux-source-6.1; see scripts/test-deps.d/30-drivers.sh)'}`, () => {
  it('reports nothing on the module\'s own files but the accepted, explained exceptions', () => {
    const files = ['bq_guest_main.c', 'bq_guest_io.c', 'bq_guest_ctl.c', 'bq_guest.h', 'bq_protocol.c', 'bq_command.c', 'bq_guest_debugfs.c', 'Kbuild', 'Makefile'];
    const r = spawnSync('perl', [CHECKPATCH, '--strict', '--no-tree', '--terse', '-f', ...files], {
      cwd: join(repo, 'devices/blockq/c/guest-linux'), encoding: 'utf8',
    });
    const messages = r.stdout.split('\n').filter((l) => /: (ERROR|WARNING|CHECK):/.test(l));
    expect(messages.filter((m) => !ACCEPTED.some(([re]) => re.test(m)))).toEqual([]);
    for (const [re, why] of ACCEPTED) expect(messages.some((m) => re.test(m)), why).toBe(true);
  });
});
