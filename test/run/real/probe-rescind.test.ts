// `bench lab probe`'s rescind-order experiment (src/run/real/probe-rescind.ts) end to end:
// real pwsh, the Hyper-V stand-in, and behind its sample-ctl the C VSP and C Windows client
// driver (support/c-loopback-host.ts). Which order the "host" tears a rescinded client down
// in is the stand-in's choice, set by each test: the probe must read either one from what
// the drivers say (the client's closed_outside_removal, the command's refusal, the traces)
// and say whether the removal race cGuestRemovalRace models is possible.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hostPackages } from '../../../src/lab/deploy-drivers.ts';
import { loadHostDrivers } from '../../../src/lab/driver-package.ts';
import { HyperV } from '../../../src/lab/hyperv.ts';
import type { LabHost } from '../../../src/lab/inventory.ts';
import { realClock } from '../../../src/run/engine/job-pipeline.ts';
import fc from 'fast-check';
import { closedOutsideRemoval, commandFate, judge, type CommandFate } from '../../../src/run/real/probe-rescind.ts';
import { probeHost, type ProbeReport } from '../../../src/run/real/probe.ts';
import { sampleControl } from '../../../devices/sample/control.ts';
import { pwsh, pwshLabel } from '../../lab/host/find-pwsh.ts';
import { disposeHost, newStandinHost, PARENT, SWITCH, type StandinHost } from '../../lab/host/standin.ts';
import { cLoopbackHost, type CLoopbackHost, type RemovalOrder } from './support/c-loopback-host.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;
const pkgs = hostPackages(loadHostDrivers(), ['loopback']);
// The probe makes its trace folder under vmRoot with New-Item, and the tool writes the traces
// there with .NET: a local folder (the stand-in has no D: drive).
const labHost: LabHost = { name: 'hv-a', transport: { kind: 'local' }, shell: 'pwsh', vmRoot: mkdtempSync(join(tmpdir(), 'probe-rescind-')), switchName: SWITCH, migrationPartner: undefined, capacity: { vmSlots: 2, memoryMB: 8192 }, build: '26100', attach: ['loopback'], source: { file: 'lab.yaml', line: 1 } };
const finding = (r: ProbeReport, id: string) => r.findings.find((f) => f.id === id)!;

describe('reading the rescind experiment\'s evidence', () => {
  it('names the refusal from sample-ctl\'s Win32 error, and reads the driver-wide counter from any line', () => {
    expect(commandFate(0, [])).toEqual({ kind: 'taken' });
    expect(commandFate(3, ['sample-ctl: the driver refused "send 1 64 inline 0 ch=3" (error 22)'])).toEqual({ kind: 'invalid-state' });
    expect(commandFate(3, ['sample-ctl: the driver refused "send 1 64 inline 0 ch=3" (error 1168)'])).toEqual({ kind: 'no-device' });
    // error 220 is not error 22
    expect(commandFate(3, ['sample-ctl: the driver refused "x" (error 220)'])).toMatchObject({ kind: 'refused' });
    // Only the two errors are named; any other number is a plain refusal, and exit 0 is taken whatever was printed.
    fc.assert(fc.property(fc.integer({ min: 1, max: 255 }), fc.nat(100_000).filter((n) => n !== 22 && n !== 1168), fc.string(), (exit, n, noise) => {
      expect(commandFate(exit, [`sample-ctl: the driver refused "send" (error ${n})`]).kind).toBe('refused');
      expect(commandFate(0, [noise, '(error 22)']).kind).toBe('taken');
    }));
    expect(closedOutsideRemoval(['ch=1 requests_sent=4 closed_outside_removal=2', 'ch=2 closed_outside_removal=2'])).toBe(2);
    expect(closedOutsideRemoval(['ch=1 requests_sent=4 xclosed_outside_removal=2'])).toBeUndefined();
  });
});

describe('deciding the order', () => {
  const fate: fc.Arbitrary<CommandFate> = fc.oneof(
    fc.constant({ kind: 'taken' as const }), fc.constant({ kind: 'invalid-state' as const }), fc.constant({ kind: 'no-device' as const }),
    fc.string().map((why) => ({ kind: 'refused' as const, why })),
  );
  const count = fc.option(fc.nat(5), { nil: undefined });
  const fail = (detail: string) => ({ status: 'fail' as const, detail, meaning: 'broken' });

  it('calls the race possible exactly when the counter rose or the command met a suspended client, and not seen only on a read counter that stayed', () => {
    fc.assert(fc.property(fate, count, fc.nat(3), fc.option(fc.nat(8), { nil: undefined }), (f, before, rise, listedSeq) => {
      const after = before === undefined ? undefined : before + rise;
      const r = judge({
        rc: 7, line: 'send 1 64 0 0 ch=7', fate: f, before, after, listedSeq,
        client: [{ ev: 'ch.state', ch: 7, state: 'Paused', seq: 3 }, { ev: 'ch.state', ch: 7, state: 'Closed', seq: 4 }],
        host: [{ ev: 'ch.state', ch: 7, state: 'Closed', seq: 9 }],
      }, fail);
      // Closed is seq 4: a listing at 4 or later was taken after the close.
      const possible = f.kind === 'invalid-state' || (before !== undefined && rise > 0) || (listedSeq !== undefined && listedSeq >= 4);
      const notSeen = !possible && before !== undefined && rise === 0;
      expect(r.status).toBe(possible || notSeen ? 'pass' : 'unsupported');
      expect(/is possible here/.test(r.meaning)).toBe(possible);
      expect(/was not seen here/.test(r.meaning)).toBe(notSeen);
    }));
  });

  it('fails, whatever the counter and command say, when a trace does not end the channel', () => {
    fc.assert(fc.property(fate, count, (f, before) => {
      const seen = { rc: 7, line: 'x', fate: f, before, after: before, listedSeq: 9, client: [{ ev: 'ch.state', ch: 7, state: 'Closed', seq: 4 }], host: [{ ev: 'ch.state', ch: 7, state: 'Closed', seq: 9 }] };
      expect(judge({ ...seen, host: [{ ev: 'ch.state', ch: 7, state: 'Active', seq: 2 }] }, fail).status).toBe('fail');
      expect(judge({ ...seen, client: [{ ev: 'ch.state', ch: 7, state: 'Paused', seq: 3 }] }, fail).status).toBe('fail');
    }));
  });
});

describe.skipIf(!pwsh || !toolchain)(`bench lab probe's rescind-order on the stand-in ${pwshLabel}, the C drivers behind sample-ctl`, { timeout: 180_000 }, () => {
  let a: StandinHost;
  let hv: HyperV;
  let host: CLoopbackHost | undefined;
  beforeAll(() => {
    a = newStandinHost('hv-a');
    hv = new HyperV(a.ctx);
  });
  afterEach(() => {
    host?.server.close();
    host = undefined;
  });
  afterAll(async () => disposeHost(a));

  async function probeWith(order: RemovalOrder): Promise<ProbeReport> {
    host = await cLoopbackHost(order);
    await a.setup('Initialize-StandinHost', { Name: 'hv-a', Switches: [SWITCH], TestSigning: true, Files: [PARENT, ...pkgs.map((p) => p.sys.replace(/\.sys$/, '.inf'))] });
    for (const [i, p] of pkgs.entries()) await a.setup('Add-StandinFile', { Path: p.sys, Version: '1.0.0.1', Build: String(i + 1) });
    await a.setup('Set-StandinSampleDrivers', { Bridge: host.url });
    return probeHost({ hv, host: labHost, control: sampleControl, program: 'sample-ctl', clock: realClock, scenarios: [], waitMs: 2000 });
  }

  it('stand-in choice kmcl-first: the command reaches the suspended client and is refused, and the probe says the race is possible', async () => {
    const r = await probeWith('kmcl-first');
    // The experiments before it ran on the same C drivers, and each passed.
    for (const id of ['client-binds', 'traffic', 'save-continue', 'restore-open', 'force-new-channel']) expect(finding(r, id).status, finding(r, id).detail).toBe('pass');
    const f = finding(r, 'rescind-order');
    expect(f.status, f.detail).toBe('pass');
    expect(f.detail).toMatch(/KMCL closed the client before PnP removed its device \(closed_outside_removal 0 -> 1\)/);
    expect(f.detail).toMatch(/"send 1 64 0 0 ch=32259" sent right after the rescind was refused with STATUS_INVALID_DEVICE_STATE/);
    expect(f.detail).toMatch(/the client traced Paused \(seq \d+\), Closed \(seq \d+\)/);
    // The stand-in's PnP removed the device at the second read: the first still listed it, after the close.
    expect(f.detail).toMatch(/its device was last listed at trace seq \d+, after its Closed/);
    expect(f.meaning).toMatch(/^the removal race modelled by cGuestRemovalRace is possible here/);
    // The experiment's calls, as the tool got them: rescind, then the command at once, then counters.
    const calls = host!.calls.map((c) => c.join(' '));
    const at = calls.indexOf('vsp command rescind ch=32259');
    expect(calls.slice(at, at + 4)).toEqual(['vsp command rescind ch=32259', 'guest command send 1 64 0 0 ch=32259', 'guest counters', 'guest counters']);
    expect(host!.removals.filter((x) => x.ch === 32259)).toEqual([{ ch: 32259, order: 'kmcl-first' }]);
    // Both channels given back, and the traces read through the tool.
    expect(calls).toContain('vsp command close ch=32258');
    expect(calls.some((c) => c.startsWith('guest trace ') && c.includes('probe-rescind-order'))).toBe(true);
    expect(calls.some((c) => c.startsWith('etl2jsonl '))).toBe(true);
  });

  it('stand-in choice removal-first: the device is gone before the command, and the probe says the race was not seen', async () => {
    const r = await probeWith('removal-first');
    const f = finding(r, 'rescind-order');
    expect(f.status, f.detail).toBe('pass');
    expect(f.detail).toMatch(/the client was closed inside its device's removal \(closed_outside_removal stayed 0\); no counters read after the rescind listed its device/);
    expect(f.detail).toMatch(/was refused with STATUS_NOT_FOUND: the device was gone already/);
    expect(f.meaning).toMatch(/^the removal race modelled by cGuestRemovalRace was not seen here/);
    expect(host!.removals.filter((x) => x.ch === 32259)).toEqual([{ ch: 32259, order: 'removal-first' }]);
  });
});
