// The C Linux guest driver runs on the emulator against the C VSP: the VMBus core
// probes it for the VSP's offer, the bench drives it through its debugfs control file
// and reads its debugfs trace and counters, as the lab does over SSH.

import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CHOICES } from '../../../src/vmbus/choices.ts';
import { CVsp } from '../../../devices/sample/c/vsp.ts';
import { guestLinuxRecipe } from '../../../devices/sample/c/recipes.ts';
import { cLinuxPair } from './support/c-linux-pair.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;
const CH = 42;
const INSTANCE = '8d2f5c3a-71b4-4e0e-9a6d-2c1f0000002a';

const pair = () => cLinuxPair({
  vsp: (sink, now) => new CVsp({ choices: DEFAULT_CHOICES, sink, now }),
  recipe: guestLinuxRecipe(),
  ch: CH,
  instance: INSTANCE,
  open: `open ${CH} ${INSTANCE} loopback ring-pages=4`,
});

describe.skipIf(!toolchain)('the C Linux guest driver on the emulator, against the C VSP', () => {
  it('is probed for the offer, sends Requests the VSP completes, and traces them', () => {
    const p = pair();
    expect(p.guest.control('send 3 64 0 0')).toBe('send 3 64 0 0'.length);
    p.pump();
    const trace = p.guest.trace();
    expect(trace.filter((e) => e.ev === 'ch.state').map((e) => e.state)).toEqual(['Opened', 'Active']);
    expect(trace.filter((e) => e.ev === 'pkt.send').map((e) => e.tx)).toEqual([1, 2, 3]);
    expect(trace.filter((e) => e.ev === 'pkt.completion').map((e) => e.tx)).toEqual([1, 2, 3]);
    expect(p.sink.events.filter((e) => e.ev === 'pkt.complete').map((e) => (e as { tx: number }).tx)).toEqual([1, 2, 3]);
    expect(p.guest.read('counters')).toMatch(/ch=42 requests_sent=3 .*completions=3 completion_mismatch=0/);
  });

  it('holds the VSP\'s HostTransactions for their time on delayed work, then completes them', () => {
    const p = pair();
    p.vsp.run('transact 2 64 10 ch=42');
    p.pump();
    expect(p.sink.events.filter((e) => e.ev === 'pkt.completion')).toHaveLength(0);
    p.advance(20);
    expect(p.sink.events.filter((e) => e.ev === 'pkt.completion').map((e) => (e as { tx: number }).tx)).toEqual([1, 2]);
    expect(p.guest.trace().filter((e) => e.ev === 'pkt.complete').map((e) => e.tx)).toEqual([1, 2]);
  });

  it('refuses a malformed command and a VSP command with the errno the README lists', () => {
    const p = pair();
    expect(p.guest.control('send lots')).toBe(-22); // EINVAL
    expect(p.guest.control('transact 1 64 0 ch=42')).toBe(-95); // EOPNOTSUPP
  });

  it('unloads (remove, then module exit) with nothing leaked', () => {
    const p = pair();
    p.guest.control('send 2 64 0 0');
    p.pump();
    p.guest.unload();
  });
});
