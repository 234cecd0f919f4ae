// The real side of a job against fakes: which commands reach the drivers and Hyper-V, in
// what order; the bench events and their marks; a VM operation past its deadline is a
// hang with the VM turned off; a failure before the scenario starts may be retried, one
// after may not. And the trace contract: an emulator run split into the bench's, the
// host's and the guest's files the way a lab run writes them merges back into a trace
// the checker passes.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TraceEvent } from '../../../src/trace/schema.ts';
import { emulate, emulatorBackedLab, recordingOps } from './support/emulator-lab.ts';
import { checkTraces } from '../../../src/run/commands/check-trace.ts';
import { runRealJob, type GuestDevices, type GuestDeviceState, type JobLab, type VmOps } from '../../../src/run/real/real-job.ts';
import { sampleControl } from '../../../devices/sample/control.ts';
import { SimClock } from '../../../src/run/sim/sim-clock.ts';
import { ControlWriteAgain } from '../../../src/lab/guest/control-write.ts';

const dir = () => mkdtempSync(join(tmpdir(), 'real-job-'));

/** The emulator-backed lab with recorded Hyper-V operations on hv-a and hv-b. */
function emulatorLab(events: TraceEvent[], clock: SimClock, log: string[]): JobLab {
  return emulatorBackedLab(events, {
    vmId: 'vm-1', hosts: { 'hv-a': recordingOps('hv-a', log), 'hv-b': recordingOps('hv-b', log) }, clock, log,
    migrate: async (from, to, id) => { log.push(`move ${id} ${from.host}->${to.host}`); },
  });
}

describe('runRealJob', () => {
  for (const file of ['02-inflight-host-transactions', '04-repeated-save-restore', '05-migrate-and-back', '06-checkpoint-apply', '07-pause-resume']) {
    it(`merges the bench, host and guest traces of ${file} into one the checker passes`, async () => {
      const { scenario, events } = await emulate(`bench/scenarios/${file}.yaml`);
      const clock = new SimClock();
      const d = dir();
      const out = await clock.drive(runRealJob({ scenario, seed: 1, hostMap: { 'host-a': 'hv-a', 'host-b': 'hv-b' } }, emulatorLab(events, clock, []), d, new AbortController().signal));
      expect(out.kind).toBe('ran');
      if (out.kind !== 'ran') return;
      const report = await checkTraces(scenario, out.traces, { minimise: false });
      expect(report.result).toMatchObject({ verdict: 'pass' });
    });
  }

  it('drives the drivers and Hyper-V in the scenario\'s order, reconnecting after each VM move', async () => {
    const { scenario, events } = await emulate('bench/scenarios/05-migrate-and-back.yaml');
    const log: string[] = [];
    const clock = new SimClock();
    await clock.drive(runRealJob({ scenario, seed: 1, hostMap: { 'host-a': 'hv-a', 'host-b': 'hv-b' } }, emulatorLab(events, clock, log), dir(), new AbortController().signal));
    expect(log).toEqual([
      'prepare 1 channel(s)', 'guest: hold auto',
      'vsp: transact 30 300 10 ch=0', 'guest: send 10 80 2 6 ch=0',
      'move vm-1 hv-a->hv-b', 'guest reconnect',
      'vsp: transact 10 300 10 ch=0',
      'move vm-1 hv-b->hv-a', 'guest reconnect',
    ]);
  });

  it('writes bench events with the scenario\'s host names and each driver\'s mark', async () => {
    const { scenario, events } = await emulate('bench/scenarios/05-migrate-and-back.yaml');
    const clock = new SimClock();
    const d = dir();
    await clock.drive(runRealJob({ scenario, seed: 1, hostMap: { 'host-a': 'hv-a', 'host-b': 'hv-b' } }, emulatorLab(events, clock, []), d, new AbortController().signal));
    const bench = readFileSync(join(d, 'bench.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(bench.map((b) => b.ev)).toEqual(['scenario.begin', 'vm.migrate.begin', 'vm.migrate.end', 'vm.migrate.begin', 'vm.migrate.end', 'scenario.end']);
    expect(bench[1]).toMatchObject({ from: 'host-a', to: 'host-b', side: 'bench', at: { host: expect.any(Number), guest: expect.any(Number) } });
    expect(bench.map((b) => b.seq)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('the scenario\'s last settle waits, past quiet, until neither driver says it waits on anything; one that never gets there is a hang naming what', async () => {
    const { scenario, events } = await emulate('bench/scenarios/05-migrate-and-back.yaml');
    const options = { opTimeoutMs: 60_000, settleQuietMs: 100, settleTimeoutMs: 30_000 };
    // Without `outstanding` the job ends on quiet, well before 20 s.
    const plain = new SimClock();
    expect(await plain.drive(runRealJob({ scenario, seed: 1, hostMap: { 'host-a': 'hv-a', 'host-b': 'hv-b' } }, emulatorLab(events, plain, []), dir(), new AbortController().signal, options))).toMatchObject({ kind: 'ran' });
    expect(plain.now()).toBeLessThan(20_000);
    // The VSP says it has a transaction without a completion until 20 s in (a request it
    // holds that long); the drivers write nothing meanwhile.
    const clock = new SimClock();
    const lab = emulatorLab(events, clock, []);
    const asked: number[] = [];
    lab.vsp.outstanding = async () => {
      asked.push(clock.now());
      return clock.now() < 20_000 ? ['ch=0: 1 of 40 transaction(s) sent without a completion'] : [];
    };
    const out = await clock.drive(runRealJob({ scenario, seed: 1, hostMap: { 'host-a': 'hv-a', 'host-b': 'hv-b' } }, lab, dir(), new AbortController().signal, options));
    expect(out.kind).toBe('ran');
    expect(clock.now()).toBeGreaterThanOrEqual(20_000);
    expect(asked.at(-1)).toBeGreaterThanOrEqual(20_000);
    // Never: a hang within settleTimeoutMs, naming the side and its line.
    const stuck = new SimClock();
    const lab2 = emulatorLab(events, stuck, []);
    lab2.guest.outstanding = async () => ['ch=0: 2 of 10 transaction(s) sent without a completion'];
    const hung = await stuck.drive(runRealJob({ scenario, seed: 1, hostMap: { 'host-a': 'hv-a', 'host-b': 'hv-b' } }, lab2, dir(), new AbortController().signal, options));
    expect(hung).toMatchObject({ kind: 'hang', message: expect.stringMatching(/still had work outstanding 30000 ms into the scenario's last settle: guest ch=0: 2 of 10 transaction\(s\) sent without a completion/) });
    expect(stuck.now()).toBeLessThan(31_000);
  });

  it('turns a VM whose save never finishes off, and calls the job a hang', async () => {
    const { scenario, events } = await emulate('bench/scenarios/01-idle-save-restore.yaml');
    const log: string[] = [];
    const clock = new SimClock();
    const lab = emulatorLab(events, clock, log);
    (lab.hosts['hv-a'] as { save: VmOps['save'] }).save = () => new Promise(() => {});
    const out = await clock.drive(runRealJob({ scenario, seed: 1, hostMap: { 'host-a': 'hv-a' } }, lab, dir(), new AbortController().signal, { opTimeoutMs: 60_000, settleQuietMs: 100, settleTimeoutMs: 1000 }));
    expect(out).toMatchObject({ kind: 'hang', message: expect.stringMatching(/Save-VM on hv-a did not finish within 60 s; the VM was turned off/) });
    expect(log).toContain('hv-a turn-off vm-1');
    expect(clock.now()).toBeGreaterThanOrEqual(60_000);
    expect(clock.now()).toBeLessThan(61_000);
  });

  it('may retry a failure before the scenario began, never one after', async () => {
    const { scenario, events } = await emulate('bench/scenarios/01-idle-save-restore.yaml');
    const clock = new SimClock();
    const early = emulatorLab(events, clock, []);
    early.guest.command = async () => { throw new Error('ssh: connection reset'); };
    expect(await clock.drive(runRealJob({ scenario, seed: 1, hostMap: { 'host-a': 'hv-a' } }, early, dir(), new AbortController().signal))).toMatchObject({ kind: 'infra', started: false, message: 'ssh: connection reset' });
    const late = emulatorLab(events, clock, []);
    (late.hosts['hv-a'] as { start: VmOps['start'] }).start = async () => { throw new Error('WMI job failed'); };
    expect(await clock.drive(runRealJob({ scenario, seed: 1, hostMap: { 'host-a': 'hv-a' } }, late, dir(), new AbortController().signal))).toMatchObject({ kind: 'infra', started: true, host: 'hv-a' });
  });

  describe('rescind and guest close/open (channel-steps.ts)', () => {
    const scenarioFile = (steps: string[]) => {
      const f = join(dir(), 's.yaml');
      writeFileSync(f, ['name: channel-steps', 'channels: [{ id: 0 }, { id: 1 }]', 'steps:', ...steps.map((x) => `  - ${x}`), ''].join('\n'));
      return f;
    };
    const inst1 = sampleControl.channelInstance(1);
    /** A guest OS whose devices do what they are told at once; `stuck`: a device that never leaves its state. */
    const fakeDevices = (log: string[], stuck = false): GuestDevices => {
      const state = new Map<string, GuestDeviceState>([[sampleControl.channelInstance(0), 'bound'], [inst1, 'bound']]);
      let auto = true;
      return {
        state: async (i) => state.get(i) ?? 'absent',
        unbind: async (i) => { log.push(`unbind ${i}`); if (!stuck) state.set(i, 'unbound'); },
        bind: async (i) => { log.push(`bind ${i}`); if (!stuck) state.set(i, 'bound'); },
        autoBind: async (on) => { log.push(`autoprobe ${on}`); auto = on; },
        // (The lab's offer and the VSP's rescind move the device through the fake's map.)
        ...{ rescinded: (i: string) => { if (!stuck) state.delete(i); }, offered: (i: string) => state.set(i, auto ? 'bound' : 'unbound') },
      } as GuestDevices;
    };

    it('rescinds, offers the same instance again with the lab\'s offer, holds it unbound for reopen false, and closes and opens a channel through the guest OS, in that order', async () => {
      const { scenario, events } = await emulate(scenarioFile(['{ op: rescind, channel: 1 }', '{ op: rescind, channel: 1, reopen: false }', '{ op: guest-open, channel: 1 }', '{ op: guest-close, channel: 1 }', '{ op: guest-open, channel: 1 }']));
      const log: string[] = [];
      const clock = new SimClock();
      const lab = emulatorLab(events, clock, log);
      const devices = fakeDevices(log) as GuestDevices & { rescinded(i: string): void; offered(i: string): void };
      lab.guest.devices = devices;
      const vspCommand = lab.vsp.command;
      lab.vsp.command = async (t) => { await vspCommand(t); if (t === 'rescind ch=1') devices.rescinded(inst1); };
      lab.offer = async (c) => { log.push(`offer ${c.id}`); devices.offered(sampleControl.channelInstance(c.id)); };
      const out = await clock.drive(runRealJob({ scenario, seed: 1, hostMap: { 'host-a': 'hv-a' } }, lab, dir(), new AbortController().signal));
      expect(out, JSON.stringify(out)).toMatchObject({ kind: 'ran' });
      expect(log.filter((l) => !l.startsWith('prepare') && l !== 'guest: hold auto')).toEqual([
        'vsp: rescind ch=1', 'offer 1',
        'vsp: rescind ch=1', 'autoprobe false', 'offer 1', `bind ${inst1}`, 'autoprobe true',
        `unbind ${inst1}`, `bind ${inst1}`,
      ]);
    });

    it('a guest that never lets the device go makes the job a hang, with the VM turned off', async () => {
      const { scenario, events } = await emulate(scenarioFile(['{ op: guest-close, channel: 1 }', '{ op: guest-open, channel: 1 }']));
      const log: string[] = [];
      const clock = new SimClock();
      const lab = emulatorLab(events, clock, log);
      lab.guest.devices = fakeDevices(log, true);
      const out = await clock.drive(runRealJob({ scenario, seed: 1, hostMap: { 'host-a': 'hv-a' } }, lab, dir(), new AbortController().signal, { opTimeoutMs: 60_000, settleQuietMs: 100, settleTimeoutMs: 1000 }));
      expect(out).toMatchObject({ kind: 'hang', message: expect.stringMatching(/waited 60 s for the guest to close channel 1; its device is bound/) });
      expect(log).toContain('hv-a turn-off vm-1');
    });

    it('a lab whose guest has no devices, or that cannot offer a new instance, refuses the step by name', async () => {
      const close = await emulate(scenarioFile(['{ op: guest-close, channel: 1 }', '{ op: guest-open, channel: 1 }']));
      const clock = new SimClock();
      expect(await clock.drive(runRealJob({ scenario: close.scenario, seed: 1, hostMap: { 'host-a': 'hv-a' } }, emulatorLab(close.events, clock, []), dir(), new AbortController().signal)))
        .toMatchObject({ kind: 'infra', message: expect.stringMatching(/"guest-close" of channel 1: this job's guest cannot close, open or wait for a channel's device/) });
      const rescind = await emulate(scenarioFile(['{ op: rescind, channel: 1 }']));
      const lab = emulatorLab(rescind.events, clock, []);
      lab.guest.devices = fakeDevices([]);
      expect(await clock.drive(runRealJob({ scenario: rescind.scenario, seed: 1, hostMap: { 'host-a': 'hv-a' } }, lab, dir(), new AbortController().signal)))
        .toMatchObject({ kind: 'infra', message: expect.stringMatching(/"rescind" of channel 1: this lab cannot offer a channel's new instance/) });
    });
  });

  describe('a guest control write refused with EAGAIN (src/lab/guest/control-write.ts)', () => {
    /** The lab whose guest refuses each line `refuse` picks with EAGAIN, the rest as it would. */
    const refusing = (events: TraceEvent[], clock: SimClock, log: string[], refuse: (line: string) => boolean): JobLab => {
      const lab = emulatorLab(events, clock, log);
      const inner = lab.guest.command.bind(lab.guest);
      lab.guest.command = async (line) => {
        if (refuse(line)) {
          log.push(`guest refused: ${line}`);
          throw new ControlWriteAgain(`the driver refused "${line}" with EAGAIN`, {});
        }
        return inner(line);
      };
      return lab;
    };

    it('on a guest send line ends that step as a give-up: the job goes on to its next steps and runs', async () => {
      const { scenario, events } = await emulate('bench/scenarios/05-migrate-and-back.yaml');
      const log: string[] = [];
      const clock = new SimClock();
      const out = await clock.drive(runRealJob({ scenario, seed: 1, hostMap: { 'host-a': 'hv-a', 'host-b': 'hv-b' } }, refusing(events, clock, log, (l) => l.startsWith('send ')), dir(), new AbortController().signal));
      expect(out.kind).toBe('ran');
      expect(log).toContain('guest refused: send 10 80 2 6 ch=0');
      expect(log.slice(log.indexOf('guest refused: send 10 80 2 6 ch=0'))).toContain('move vm-1 hv-a->hv-b');
    });

    it('on a line that is no send step (the device\'s begin line) is an infrastructure error naming it', async () => {
      const { scenario, events } = await emulate('bench/scenarios/05-migrate-and-back.yaml');
      const clock = new SimClock();
      const out = await clock.drive(runRealJob({ scenario, seed: 1, hostMap: { 'host-a': 'hv-a', 'host-b': 'hv-b' } }, refusing(events, clock, [], (l) => l === 'hold auto'), dir(), new AbortController().signal));
      expect(out).toMatchObject({ kind: 'infra', message: expect.stringContaining('refused "hold auto" with EAGAIN') });
    });
  });
});
