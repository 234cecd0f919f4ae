// The C Linux guest driver runs on the emulator against the C VSP: the VMBus core
// probes it for the VSP's offer, the bench drives it through its debugfs control file
// and reads its debugfs trace and counters, as the lab does over SSH.

import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CHOICES } from '../../../src/vmbus/choices.ts';
import { GuestMemory } from '../../../src/vmbus/partition.ts';
import { MemorySink } from '../../../src/trace/sink.ts';
import { CVsp } from '../../../devices/sample/c/vsp.ts';
import { CGuestLinux } from '../../../src/devices/wasm/c-guest-linux.ts';
import { guestLinuxRecipe } from '../../../devices/sample/c/recipes.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;
const CH = 42;
const INSTANCE = '8d2f5c3a-71b4-4e0e-9a6d-2c1f0000002a';

function pair() {
  const clock = { now: 0 };
  const sink = new MemorySink();
  const vsp = new CVsp({ choices: DEFAULT_CHOICES, sink, now: () => clock.now });
  const guest = new CGuestLinux({ recipe: guestLinuxRecipe(), now: () => clock.now, ringPages: 4 });
  const mem = new GuestMemory([{ ch: CH, g2hPages: 4, h2gPages: 4 }]);
  vsp.run(`open ${CH} ${INSTANCE} loopback ring-pages=4`);
  const server = vsp.offered(CH)!;
  server.signalPeer = (w) => {
    if (w === 'interrupt') guest.signal(CH);
  };
  const pump = (): void => {
    for (let n = 0; n < 100_000; n++) {
      if (server.canDeliver()) server.deliverOne();
      else if (server.canFlush()) server.flushOne();
      else if (!guest.runInterrupt()) return;
    }
    throw new Error('pump did not settle');
  };
  guest.linux.onSleep = () => pump(); // while the guest's thread sleeps, the host runs
  expect(guest.offer(CH, INSTANCE, mem.guestRings(CH), (w) => (w === 'interrupt' ? (server.interrupt = true) : (server.writable = true)))).toBe(0);
  const hr = mem.hostRings(CH);
  server.connectionOpened(hr.out, hr.in, { restored: false });
  const advance = (ms: number): void => {
    const end = clock.now + ms;
    for (;;) {
      const due = [vsp.nextTimerDue(), guest.nextWorkDue()].filter((d): d is number => d !== null && d <= end).sort((a, b) => a - b)[0];
      if (due === undefined) break;
      clock.now = Math.max(clock.now, due);
      vsp.runTimers(clock.now);
      guest.runWork(clock.now);
      pump();
    }
    clock.now = end;
    pump();
  };
  return { vsp, guest, sink, pump, advance };
}

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
