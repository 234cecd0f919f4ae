// Guest driver deployment over a real sshd on loopback. insmod/rmmod are never run on
// this machine: the layout points at fake tools in a temp dir that behave like them
// (create/remove the module's sysfs and debugfs entries, fail on a bad module), so what
// is tested is our side: what is uploaded where, how tools are invoked and quoted, and
// how each failure is reported. The in-guest build uses the real make and Kbuild
// against Debian's kernel headers when scripts/test-deps.d/30-drivers.sh installed them.
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InfraError, InputError } from '../../../src/errors.ts';
import {
  boundDevices, deployGuestDriver, isLoaded, readGuestTrace, readTraceCounters, guestDriverLayout,
  sendControl, unloadModule, type GuestDriverLayout,
} from '../../../src/lab/deploy-guest.ts';
import { shQuote } from '../../../src/lab/guest/posix-quote.ts';
import { GuestSsh } from '../../../src/lab/guest-ssh.ts';
import { sshdUnavailable, startSshd, type Sshd } from '../support/sshd.ts';

const reason = sshdUnavailable();
const DEVICE = '8d2f5c3a-71b4-4e0e-9a6d-2c1f0b7e5a91';
const TRACE = '{"v":1,"seq":1,"src":"hyperv","side":"guest","ev":"ch.state","ch":1,"state":"open"}\n';
const headers = existsSync('/usr/src') ? readdirSync('/usr/src').find((d) => /^linux-headers-.*-amd64$/.test(d)) : undefined;

describe.skipIf(reason)(`deploying the guest driver over real sshd${reason ? ` (skipped: ${reason})` : ''}`, () => {
  let sshd: Sshd;
  let guest: GuestSsh;
  let root: string;
  let layout: GuestDriverLayout;

  /** Fake insmod/rmmod acting on the fake sysfs/debugfs under `root`. */
  function fakeTools(): GuestDriverLayout['tools'] {
    const q = shQuote;
    const insmod = join(root, 'bin', 'fake insmod');
    const rmmod = join(root, 'bin', 'fake-rmmod');
    mkdirSync(join(root, 'bin'), { recursive: true });
    writeFileSync(insmod, `#!/bin/sh
printf '%s\\0' "$@" > ${q(join(root, 'insmod.args'))}
[ -f "$1" ] || { echo "insmod: ERROR: could not load module $1: No such file or directory" >&2; exit 1; }
if [ "$(head -c 3 "$1")" = BAD ]; then echo "insmod: ERROR: could not insert module $1: Invalid module format" >&2; exit 1; fi
mkdir -p ${q(layout.sysModuleDir)} ${q(layout.debugfsDir)} ${q(layout.sysDriverDir)}
[ -f ${q(join(root, 'no-channel'))} ] || mkdir -p ${q(join(layout.sysDriverDir, DEVICE))}
: > ${q(join(layout.sysDriverDir, 'bind'))}
printf '%s' ${q(TRACE)} > ${q(join(layout.debugfsDir, 'trace'))}
printf 'trace_seq=1 trace_dropped=0\\nch=1 sent=0\\n' > ${q(join(layout.debugfsDir, 'counters'))}
`);
    writeFileSync(rmmod, `#!/bin/sh
[ -d ${q(layout.sysModuleDir)} ] || { echo "rmmod: ERROR: Module $1 is not currently loaded" >&2; exit 1; }
echo "$1" >> ${q(join(root, 'rmmod.log'))}
rm -rf ${q(layout.sysModuleDir)} ${q(layout.sysDriverDir)} ${q(layout.debugfsDir)}
`);
    chmodSync(insmod, 0o755);
    chmodSync(rmmod, 0o755);
    return { insmod, rmmod, make: 'make' };
  }

  beforeAll(async () => {
    sshd = await startSshd();
    root = join(sshd.dir, "guest root with 'quotes'");
    layout = guestDriverLayout('vmbus_sample_guest', {
      remoteDir: join(root, 'var', 'bench driver'),
      sysDriverDir: join(root, 'sys/bus/vmbus/drivers/vmbus_sample_guest'),
      sysModuleDir: join(root, 'sys/module/vmbus_sample_guest'),
      debugfsDir: join(root, 'sys/kernel/debug/vmbus_sample_guest'),
      privilege: 'root',
    });
    layout.tools = fakeTools();
    guest = await GuestSsh.connect({
      name: 'deploy-guest', host: sshd.host, port: sshd.port, user: sshd.user,
      credential: { kind: 'key', key: { kind: 'file', path: sshd.clientKeyPath } },
      hostKey: { kind: 'fingerprint', sha256: sshd.hostKeyFingerprint },
    });
  });
  afterAll(async () => {
    guest?.close();
    await sshd?.stop();
  });

  it('uploads a prebuilt module, loads it with quoted parameters and waits for the channel to bind', async () => {
    const ko = join(sshd.dir, 'local.ko');
    writeFileSync(ko, 'ELF fake module');
    const deployed = await deployGuestDriver(guest, { layout, source: { kind: 'prebuilt', koFile: ko }, params: { ring_pages: 8, trace_kib: '1024' } });
    expect(deployed.boundDevices).toEqual([DEVICE]);
    expect(deployed.koPath).toBe(join(layout.remoteDir, 'vmbus_sample_guest.ko'));
    expect(readFileSync(deployed.koPath, 'utf8')).toBe('ELF fake module');
    const args = readFileSync(join(root, 'insmod.args'), 'utf8').split('\0').slice(0, -1);
    expect(args).toEqual([deployed.koPath, 'ring_pages=8', 'trace_kib=1024']);
    expect(await isLoaded(guest, layout)).toBe(true);
  });

  it('reads the trace and the counters from the debugfs directory', async () => {
    expect(await readGuestTrace(guest, layout)).toBe(TRACE);
    expect(await readTraceCounters(guest, layout)).toEqual({ traceSeq: 1, traceDropped: 0 });
    await expect(readGuestTrace(guest, layout, 10)).rejects.toThrow(/holds \d+ bytes, more than the 10-byte limit/);
  });

  it('writes control commands as one literal write', async () => {
    await sendControl(guest, layout, "send 4 64 2 100; touch 'pwned'");
    expect(readFileSync(join(layout.debugfsDir, 'control'), 'utf8')).toBe("send 4 64 2 100; touch 'pwned'");
    expect(existsSync('pwned')).toBe(false);
  });

  it('unloads a loaded copy before loading again, and unloads on request', async () => {
    const ko = join(sshd.dir, 'local.ko');
    await deployGuestDriver(guest, { layout, source: { kind: 'prebuilt', koFile: ko } });
    expect(readFileSync(join(root, 'rmmod.log'), 'utf8')).toBe('vmbus_sample_guest\n');
    await unloadModule(guest, layout);
    expect(await isLoaded(guest, layout)).toBe(false);
    expect(await boundDevices(guest, layout)).toEqual([]);
  });

  it('reports a refused module with insmod\'s own message', async () => {
    const bad = join(sshd.dir, 'bad.ko');
    writeFileSync(bad, 'BAD module');
    const e = await deployGuestDriver(guest, { layout, source: { kind: 'prebuilt', koFile: bad } }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(InfraError);
    expect((e as Error).message).toMatch(/could not load vmbus_sample_guest on deploy-guest \(exit 1\)[\s\S]*Invalid module format/);
  });

  it('times out with a clear error when the driver never binds a channel', async () => {
    writeFileSync(join(root, 'no-channel'), '');
    const ko = join(sshd.dir, 'local.ko');
    const e = await deployGuestDriver(guest, { layout, source: { kind: 'prebuilt', koFile: ko }, bindTimeoutMs: 700 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(InfraError);
    expect((e as InfraError).timedOut).toBe(true);
    expect((e as Error).message).toContain(`bound no channel within 700 ms (nothing under ${layout.sysDriverDir})`);
    await unloadModule(guest, layout);
  });

  it.skipIf(!headers)(`builds the real module in the guest with make and Kbuild${headers ? '' : ' (skipped: no Debian linux-headers-*-amd64 in /usr/src)'}`, async () => {
    const noChannel = join(root, 'no-channel');
    if (existsSync(noChannel)) (await import('node:fs')).rmSync(noChannel);
    const buildLayout = { ...layout, remoteDir: join(sshd.dir, 'kbuild') };
    const deployed = await deployGuestDriver(guest, {
      layout: buildLayout,
      source: {
        kind: 'build',
        dirs: { 'guest-linux': 'lab/drivers/guest-linux', common: 'lab/drivers/common', 'trace-lib': 'lab/drivers/trace-lib' },
        buildDir: 'guest-linux',
        makeArgs: { KDIR: `/usr/src/${headers}` },
      },
    });
    expect(deployed.koPath).toBe(join(buildLayout.remoteDir, 'guest-linux', 'vmbus_sample_guest.ko'));
    // A real ELF kernel module came out of the guest-side build.
    expect(readFileSync(deployed.koPath).subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    expect(readFileSync(join(root, 'insmod.args'), 'utf8').split('\0')[0]).toBe(deployed.koPath);
    expect(deployed.boundDevices).toEqual([DEVICE]);
  }, 240_000);

  it('refuses to build in a directory Kbuild cannot handle (spaces, quotes), before uploading', async () => {
    const e = await deployGuestDriver(guest, { layout, source: { kind: 'build', dirs: {}, buildDir: 'guest-linux' } }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(InputError);
    expect((e as Error).message).toMatch(/Kbuild needs a build directory without spaces/);
  });

  it('reports a failed build with the compiler output', async () => {
    layout = { ...layout, remoteDir: join(sshd.dir, 'kbuild-broken') };
    const src = join(sshd.dir, 'broken-src');
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, 'Makefile'), 'all:\n\t@echo "sample.c:3: error: expected ; before }" >&2; exit 2\n');
    const e = await deployGuestDriver(guest, { layout, source: { kind: 'build', dirs: { broken: src }, buildDir: 'broken' } }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(InfraError);
    expect((e as Error).message).toMatch(/building vmbus_sample_guest in the guest failed on deploy-guest \(exit 2\)[\s\S]*expected ; before }/);
  });
});
