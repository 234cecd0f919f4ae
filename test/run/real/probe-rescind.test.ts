// `bench lab probe`'s rescind-order experiment (src/run/real/probe-rescind.ts) end to end:
// real pwsh, the Hyper-V stand-in, and behind its sample-ctl the C VSP and C Windows client
// driver (support/c-loopback-host.ts). Which order the "host" tears a rescinded client down
// in is the stand-in's choice, set by each test: the probe must read either one from what
// the drivers say (the client's closed_outside_removal, the command's refusal, the traces)
// and say whether the removal race cGuestRemovalRace models is possible.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ensureHostDrivers, hostPackages } from '../../../src/lab/deploy-drivers.ts';
import { runNative } from '../../../src/lab/deploy-vsp.ts';
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
// there with .NET: here a local folder (probe.test.ts's command-line test uses the stand-in's D:).
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

// The stand-in's own model of the sample drivers (ControlTools.ps1), which the probe runs on
// when no C drivers are behind sample-ctl (probe.test.ts): it must keep the drivers' rules
// the experiment reads, whatever was done before, not only on the probe's own sequence.
describe.skipIf(!pwsh)(`the stand-in's model of the sample drivers' rescind ${pwshLabel}`, { timeout: 600_000 }, () => {
  let m: StandinHost;
  let hv: HyperV;
  const work = mkdtempSync(join(tmpdir(), 'standin-model-'));
  beforeAll(async () => {
    m = newStandinHost('hv-m');
    hv = new HyperV(m.ctx);
    await m.setup('Initialize-StandinHost', { Name: 'hv-m', Switches: [SWITCH], TestSigning: true, Files: [PARENT, ...pkgs.map((p) => p.sys.replace(/\.sys$/, '.inf'))] });
    for (const [i, p] of pkgs.entries()) await m.setup('Add-StandinFile', { Path: p.sys, Version: '1.0.0.1', Build: String(i + 1) });
    const d = await ensureHostDrivers(hv, pkgs);
    if (!d.ok) throw new Error(d.reason);
  });
  afterAll(async () => disposeHost(m));
  const tool = (args: string[]) => runNative(hv, 'sample-ctl', args);
  const trace = async (args: string[], file: string) => {
    expect((await tool([...args, file])).exitCode).toBe(0);
    return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { seq: number; ev: string; ch: number; state?: string });
  };
  type Op = { op: 'open' | 'rescind' | 'close' | 'send' | 'counters'; ch: number };
  // Both channels are offered first; rescinds and sends weigh more, so that sends meet rescinded clients.
  const ops = fc.array(fc.record({ op: fc.constantFrom<Op['op']>('rescind', 'send', 'send', 'counters', 'close', 'open'), ch: fc.constantFrom(1, 2) }), { minLength: 1, maxLength: 9 })
    .map((rest): Op[] => [{ op: 'open', ch: 1 }, { op: 'open', ch: 2 }, ...rest]);
  // The probe's own sequence, in either order: a send right after the rescind, then reads until the device goes.
  const probeLike: Op[] = [{ op: 'open', ch: 1 }, { op: 'open', ch: 2 }, { op: 'rescind', ch: 2 }, { op: 'send', ch: 2 }, { op: 'counters', ch: 1 }, { op: 'send', ch: 2 }, { op: 'counters', ch: 1 }, { op: 'send', ch: 2 }];

  /**
   * Invariant (the C client driver's, guest-control.c, guest-channel.c, guest-io.c): a `send`
   * exits 3 "cannot open" once no device is left (the control device goes with the last),
   * is refused STATUS_NOT_FOUND (1168) on a channel no device has and
   * STATUS_INVALID_DEVICE_STATE (22) on a device whose client KMCL closed; `guest counters`
   * lists exactly the devices PnP has not removed, each line with closed_outside_removal,
   * which counts the clients closed outside their removal: each rescind of an open client
   * under kmcl-first, never under removal-first. Both traces number their events 1..n, and
   * a client's Closed comes after a Paused of that channel since its Opened.
   */
  it('property: refusals, counters and traces follow the client driver\'s rules for either teardown order, whatever channel operations came before', async () => {
    let run = 0;
    await fc.assert(fc.asyncProperty(fc.constantFrom('removal-first', 'kmcl-first'), ops, async (order, seq) => {
      await m.setup('Set-StandinSampleDrivers', { RescindTeardown: order });
      const etl = join(work, `vsp-${run}.etl`);
      expect((await runNative(hv, 'logman', ['start', `model-${run}`, '-p', 'VmbusSampleVsp', '-o', etl, '-ets'])).exitCode).toBe(0);
      const offered = new Set<number>();
      const dev = new Map<number, { closed: boolean; removalIn?: number }>();
      let outside = 0;
      for (const o of seq) {
        if (o.op === 'open') {
          if (offered.has(o.ch)) continue;
          expect((await tool(['vsp', 'command', sampleControl.channel({ op: 'open', ch: o.ch, instance: sampleControl.channelInstance(o.ch), ringPages: 4, loopback: true })])).exitCode).toBe(0);
          offered.add(o.ch);
          dev.set(o.ch, { closed: false });
        } else if (o.op === 'rescind') {
          const r = await tool(['vsp', 'command', `rescind ch=${o.ch}`]);
          expect(r.exitCode).toBe(offered.has(o.ch) ? 0 : 2);
          const d = dev.get(o.ch);
          if (r.exitCode !== 0 || !d || d.closed) continue;
          if (order === 'kmcl-first') {
            outside++;
            dev.set(o.ch, { closed: true, removalIn: 1 });
          } else dev.delete(o.ch);
        } else if (o.op === 'close') {
          expect((await tool(['vsp', 'command', `close ch=${o.ch}`])).exitCode).toBe(0);
          offered.delete(o.ch);
          dev.delete(o.ch);
        } else if (o.op === 'send') {
          const r = await tool(['guest', 'command', `send 1 64 0 0 ch=${o.ch}`]);
          const text = [...r.stderr, ...r.output].join(' ');
          const d = dev.get(o.ch);
          if (dev.size === 0) expect([r.exitCode, text]).toEqual([3, expect.stringMatching(/cannot open/)]);
          else if (!d) expect([r.exitCode, commandFate(r.exitCode, [text])]).toEqual([3, { kind: 'no-device' }]);
          else if (d.closed) expect([r.exitCode, commandFate(r.exitCode, [text])]).toEqual([3, { kind: 'invalid-state' }]);
          else expect(r.exitCode).toBe(0);
        } else {
          // PnP removes a device KMCL closed before the second counters read after the rescind.
          for (const [ch, d] of dev) {
            if (d.removalIn === undefined) continue;
            if (d.removalIn === 0) dev.delete(ch);
            else d.removalIn--;
          }
          const r = await tool(['guest', 'counters']);
          if (dev.size === 0) {
            expect(r.exitCode).toBe(3);
            continue;
          }
          expect(r.exitCode).toBe(0);
          expect([...sampleControl.counters('guest', r.output).channels.keys()].sort()).toEqual([...dev.keys()].sort());
          for (const l of r.output) expect(closedOutsideRemoval([l])).toBe(outside);
        }
      }
      expect((await runNative(hv, 'logman', ['stop', `model-${run}`, '-ets'])).exitCode).toBe(0);
      const host = await trace(['etl2jsonl', etl], join(work, `vsp-${run}.jsonl`));
      // A keeper device, so that the client's control device is there to read its trace.
      await tool(['vsp', 'command', sampleControl.channel({ op: 'open', ch: 9, instance: sampleControl.channelInstance(9), ringPages: 4, loopback: true })]);
      const client = await trace(['guest', 'trace'], join(work, `client-${run}.jsonl`));
      run++;
      for (const t of [host, client]) expect(t.map((e) => e.seq)).toEqual(t.map((_, i) => i + 1));
      for (const [i, e] of client.entries()) {
        if (e.state !== 'Closed') continue;
        const before = client.slice(0, i).filter((x) => x.ch === e.ch && x.ev === 'ch.state');
        const opened = before.map((x) => x.state).lastIndexOf('Opened');
        expect(before.slice(opened).map((x) => x.state)).toContain('Paused');
      }
      // Each client closed outside its removal left its Closed in the trace.
      expect(client.filter((e) => e.state === 'Closed').length).toBeGreaterThanOrEqual(outside);
    }), { numRuns: 12, examples: [['kmcl-first', probeLike], ['removal-first', probeLike]] });
  });
});
