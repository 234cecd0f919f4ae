// The C Windows guest driver runs on the emulator through its own control interface:
// it takes the offer, sends Requests the host completes, holds and completes the host's
// transactions on its timer, and writes its JSON Lines trace.

import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { makeGuestHarness } from './support/guest-harness.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;

describe.skipIf(!toolchain)('the C Windows guest driver on the emulator', () => {
  it('opens the offered channel and sends Requests that the host completes', () => {
    const h = makeGuestHarness();
    h.pump();
    h.guest.run('send 3 64 0 0');
    h.pump();
    const trace = h.guest.readTrace();
    expect(trace.filter((e) => e.ev === 'ch.state').map((e) => e.state)).toEqual(['Enabled', 'Opened', 'Started', 'Active']);
    expect(trace.filter((e) => e.ev === 'pkt.send').map((e) => e.tx)).toEqual([1, 2, 3]);
    expect(trace.filter((e) => e.ev === 'pkt.completion').map((e) => e.tx)).toEqual([1, 2, 3]);
    expect(h.guest.counters()[0]).toMatchObject({ ch: 42, requests_sent: 3, completions: 3, completion_mismatch: 0 });
  });

  it('holds a HostTransaction for its time, then completes it', () => {
    const h = makeGuestHarness();
    h.pump();
    h.hostTransaction(1, 64, 20);
    h.pump();
    // The host's packet awaits its completion until the guest's timer finds it due.
    expect(h.server.awaiting.size).toBe(1);
    h.advance(30);
    expect(h.server.awaiting.size).toBe(0);
    const trace = h.guest.readTrace();
    expect(trace.filter((e) => e.ev === 'pkt.complete').map((e) => e.tx)).toEqual([1]);
  });
});
