// The device control's `begin` lines to the VSP (DeviceControl.begin, `to: 'vsp'`): a lab
// job sends them once its channels are open, before the first step (real-job.ts); the C
// VSP's host face (src/device-api/c-host-channel.ts) sends them at the same point on the
// emulator, once per VSP driver, in the control's own words. The sample's control has no
// VSP line, so a test device (the sample with one more begin line) shows it.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ReofferingCHostChannel } from '../../src/device-api/c-host-channel.ts';
import { InputError } from '../../src/errors.ts';
import { executeScenario } from '../../src/scenario/execute.ts';
import { loadScenarioFile } from '../../src/scenario/loader.ts';
import { PropertyChecker, statusRuleOf } from '../../src/check/properties.ts';
import { MemorySink } from '../../src/trace/sink.ts';
import { DEFAULT_CHOICES } from '../../src/vmbus/choices.ts';
import { Faults } from '../../src/vmbus/faults.ts';
import { CVsp } from '../../devices/sample/c/vsp.ts';
import { SAMPLE_C_HOST } from '../../devices/sample/c/host-vsp.ts';
import { sampleControl } from '../../devices/sample/control.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;

/** A host transaction line the sample VSP takes: two 64-byte HostTransactions on channel 0. */
const TRANSACT = sampleControl.command({ op: 'host-send', channel: 0, count: 2, size: 64, hold: 0 }).line;

/** A scenario of the sample with one more begin line, to the VSP (a device module of the test's own). */
function scenarioWithVspBegin(line: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'vsp-begin-'));
  const at = (p: string) => JSON.stringify(resolve(p));
  writeFileSync(join(dir, 'device.ts'), [
    `import sample from ${at('devices/sample/device.ts')};`,
    `import { sampleControl } from ${at('devices/sample/control.ts')};`,
    `import { SAMPLE_C_HOST } from ${at('devices/sample/c/host-vsp.ts')};`,
    `import { CVsp } from ${at('devices/sample/c/vsp.ts')};`,
    `import { ReofferingCHostChannel } from ${at('src/device-api/c-host-channel.ts')};`,
    `const control = { ...sampleControl, begin: [...sampleControl.begin, { to: 'vsp', line: ${JSON.stringify(line)} }] };`,
    'export default {',
    "  ...sample, name: 'sample-vsp-begin', control,",
    '  emulator: {',
    '    ...sample.emulator,',
    '    cHost(hostName, o) {',
    '      let driver = o.drivers.get(hostName);',
    '      if (!driver) o.drivers.set(hostName, (driver = new CVsp({ choices: o.choices, sink: o.sink, now: o.now, platformFaults: o.faults })));',
    '      return new ReofferingCHostChannel(driver, { ...SAMPLE_C_HOST, control }, { ch: o.ch, ringPages: o.h2gPages, quota: o.quota ?? 0, faults: o.faults });',
    '    },',
    '  },',
    '};',
    '',
  ].join('\n'));
  const file = join(dir, 's.yaml');
  writeFileSync(file, [
    'name: vsp-begin',
    'device: ./device.ts',
    'channels: [{ id: 0 }, { id: 1 }]',
    'steps:',
    '  - { op: guest-send, channel: 1, count: 1, size: 64 }',
    '  - { op: save }',
    '  - { op: restore }',
    '  - { op: settle }',
    '',
  ].join('\n'));
  return file;
}

describe.skipIf(!toolchain)('the control\'s begin lines to a C VSP', () => {
  it('the host face sends the VSP\'s lines once per driver, in the control\'s words, and none of the guest\'s', () => {
    const vsp = new CVsp({ choices: DEFAULT_CHOICES, sink: { emit: () => {} }, now: () => 0 });
    const sent: string[] = [];
    const command = vsp.command.bind(vsp);
    vsp.command = (text: string): number => {
      sent.push(text);
      return command(text);
    };
    const control = { ...sampleControl, begin: [{ to: 'guest' as const, line: 'hold auto' }, { to: 'vsp' as const, line: TRANSACT }] };
    const faces = [0, 1].map((ch) => new ReofferingCHostChannel(vsp, { ...SAMPLE_C_HOST, control }, { ch, ringPages: 4, quota: 0, faults: new Faults([]) }));
    for (const f of faces) f.enable();
    for (const f of faces) f.begin();
    expect(sent.filter((l) => !l.startsWith('open '))).toEqual([TRANSACT]);
    // The VSP took it: channel 0's next transaction is its third.
    expect(vsp.counters().find((c) => c.ch === 0)?.next_tx).toBe(2);
  });

  it('the executor has the C VSP take them once the channels are open, before the first step: the VSP\'s transactions are in the trace, and every property holds', async () => {
    const s = await loadScenarioFile(scenarioWithVspBegin(TRANSACT));
    const sink = new MemorySink('emulator');
    const r = executeScenario(s, { seed: 1, sink, devices: 'c' });
    expect(r.hang).toBeNull();
    const checker = new PropertyChecker({ statusRule: statusRuleOf(s) });
    for (const e of sink.events) checker.onEvent(e);
    expect(checker.finish(r.hang, r.refusedRestores)).toEqual([]);
    const at = (pred: (e: (typeof sink.events)[number]) => boolean) => sink.events.findIndex(pred);
    const hostSends = sink.events.filter((e) => e.side === 'host' && e.ev === 'pkt.send');
    expect(hostSends.map((e) => { const x = e as { ch: number; tx: number }; return `${x.ch}/${x.tx}`; })).toEqual(['0/1', '0/2']);
    // After both channels are open, before the guest's send of the first step.
    const lastActive = sink.events.map((e, i) => (e.side === 'guest' && e.ev === 'ch.state' && (e as { state: string }).state === 'Active' ? i : -1)).filter((i) => i >= 0)[1]!;
    expect(at((e) => e.side === 'host' && e.ev === 'pkt.send')).toBeGreaterThan(lastActive);
    expect(at((e) => e.side === 'host' && e.ev === 'pkt.send')).toBeLessThan(at((e) => e.side === 'guest' && e.ev === 'pkt.send'));
    // The guest received and completed both.
    expect(sink.events.filter((e) => e.side === 'host' && e.ev === 'pkt.completion')).toHaveLength(2);
  });

  it('a begin line the VSP refuses is bad input naming the line (exit 2), not a crash', async () => {
    const s = await loadScenarioFile(scenarioWithVspBegin('frobnicate ch=0'));
    let caught: unknown;
    try {
      executeScenario(s, { seed: 1, sink: new MemorySink('emulator'), devices: 'c' });
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(InputError);
    expect((caught as InputError).message).toMatch(/C VSP refused its device control's begin line 'frobnicate ch=0': status 0x/);
    expect((caught as InputError).exitCode).toBe(2);
  });
});
