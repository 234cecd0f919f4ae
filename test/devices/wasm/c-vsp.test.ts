// The C VSP runs on the emulator through its own control interface: it offers a channel,
// sends HostTransactions a TypeScript guest completes, answers the guest's Requests in
// every completion mode, saves and restores its in-flight packets, and unloads with
// nothing leaked; its TraceLogging events land in the run's trace.

import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CompletionMode } from '../../../devices/sample/protocol.ts';
import { makeHarness } from './support/vsp-harness.ts';

/** Channel 42's line of the VSP's counters (the first line is the trace's seq). */
const ch42 = (h: { vsp: { counters(): Array<Record<string, number>> } }) => h.vsp.counters().find((c) => c.ch === 42)!;

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;

describe.skipIf(!toolchain)('the C VSP on the emulator', () => {
  it('offers a channel and traces its state changes', () => {
    const h = makeHarness();
    h.open();
    expect(h.events('ch.state').map((e) => e.state)).toEqual(['Enabled', 'Opened', 'Started', 'Active']);
    expect(h.events('ch.state').every((e) => e.ch === 42 && e.side === 'host')).toBe(true);
  });

  it('sends HostTransactions and traces each completion with the guest\'s status', () => {
    const h = makeHarness();
    h.open();
    h.vsp.run('transact 5 128 0 ch=42');
    h.pump();
    const sends = h.events('pkt.send');
    expect(sends.map((e) => e.tx)).toEqual([1, 2, 3, 4, 5]);
    expect(sends[0]).toMatchObject({ dir: 'h2g', len: 128, wantCompletion: true });
    expect(h.events('pkt.completion').map((e) => e.tx)).toEqual([1, 2, 3, 4, 5]);
    const c = h.vsp.counters().find((x) => x.ch === 42)!;
    expect(c).toMatchObject({ ch: 42, transactions_sent: 5, completions: 5, completion_mismatch: 0, in_flight: 0 });
  });

  it('completes the guest\'s Requests inline, after a deferral, and after a hold on its timer', () => {
    const h = makeHarness();
    h.open();
    h.sendRequest(1, 64, CompletionMode.Inline);
    h.sendRequest(2, 64, CompletionMode.Deferred);
    h.sendRequest(3, 64, CompletionMode.Hold, 20);
    h.pump();
    expect([...h.completions.keys()].sort()).toEqual([1, 2]);
    h.advance(30);
    expect([...h.completions.keys()].sort()).toEqual([1, 2, 3]);
    expect(h.events('pkt.recv').map((e) => e.tx)).toEqual([1, 2, 3]);
    expect(h.events('pkt.complete').map((e) => e.tx)).toEqual([1, 2, 3]);
  });

  it('saves packets in flight, restores them on a new channel object, and they complete there', () => {
    const h = makeHarness();
    h.open();
    h.vsp.run('transact 3 64 0 ch=42');
    // The guest has not run: all three await their completion when the VSP saves.
    h.vsp.run('save ch=42');
    expect(h.events('pkt.save').map((e) => e.tx)).toEqual([1, 2, 3]);
    const enabled = () => h.events('ch.state').filter((e) => e.state === 'Enabled').length;
    // The saved object is given up first (its client sees it closed), then a new one restored.
    h.vsp.run('detach ch=42');
    h.vsp.run('restore ch=42');
    expect(h.events('pkt.restore').map((e) => e.tx)).toEqual([1, 2, 3]);
    // Restored, not offered: `resume` offers it (a host restores every channel first).
    expect(enabled()).toBe(1);
    h.vsp.run('resume ch=42');
    expect(enabled()).toBe(2);
    h.connect();
    h.pump();
    expect(h.events('pkt.completion').map((e) => e.tx)).toEqual([1, 2, 3]);
    h.vsp.run('close ch=42');
    h.vsp.unload();
  });

  it('exports a channel\'s saved state and imports it again: a checkpoint applied later restores its packets and numbering', () => {
    const h = makeHarness();
    h.open();
    h.vsp.run('transact 2 64 0 ch=42');
    h.vsp.run('save ch=42');
    const checkpoint = h.vsp.exportState(42);
    // The record of sample-control.h: magic "VSPS", version 1, ch 42, next_tx 2.
    const dv = new DataView(checkpoint.buffer, checkpoint.byteOffset);
    expect([dv.getUint32(0, true), dv.getUint32(4, true), dv.getUint32(8, true), Number(dv.getBigUint64(16, true))]).toEqual([0x53505356, 1, 42, 2]);
    expect(checkpoint.length).toBe(48 + ch42(h).save_blob_bytes!);
    h.vsp.run('resume ch=42');
    h.pump();
    expect(h.events('pkt.completion').map((e) => e.tx)).toEqual([1, 2]);
    h.vsp.run('transact 1 64 0 ch=42');
    h.pump();
    // The VM goes back to the checkpoint: the running object is discarded, the state imported.
    const before = h.events().length;
    h.vsp.run('discard ch=42');
    expect(h.events().length).toBe(before);
    expect(h.vsp.importState(checkpoint)).toBe(0);
    h.vsp.run('restore ch=42');
    h.vsp.run('resume ch=42');
    expect(h.events('pkt.restore').map((e) => e.tx)).toEqual([1, 2]);
    expect(ch42(h)).toMatchObject({ next_tx: 2, in_flight: 2 });
    // The checkpoint's future is gone: the next transaction is 3 again.
    h.connect();
    h.vsp.run('transact 1 64 0 ch=42');
    expect(h.events('pkt.send').map((e) => e.tx)).toEqual([1, 2, 3, 3]);
    h.vsp.run('close ch=42');
    h.vsp.unload();
  });

  it('another VSP (another host) imports a channel it never had and offers it restored; it unloads with nothing leaked', () => {
    const a = makeHarness();
    a.open();
    a.vsp.run('transact 3 64 0 ch=42');
    a.vsp.run('save ch=42');
    const state = a.vsp.exportState(42);
    a.vsp.run('detach ch=42');
    const b = makeHarness();
    expect(b.vsp.counters().filter((c) => 'ch' in c)).toEqual([]);
    expect(b.vsp.importState(state)).toBe(0);
    expect(b.vsp.offered(42)).toBeNull();
    b.vsp.run('restore ch=42');
    b.vsp.run('resume ch=42');
    expect(b.events('pkt.restore').map((e) => e.tx)).toEqual([1, 2, 3]);
    expect(b.events('ch.state').map((e) => e.state)).toEqual(['Enabled']); // no guest has opened it yet
    expect(ch42(b)).toMatchObject({ ch: 42, in_flight: 3, next_tx: 3 });
    b.vsp.run('close ch=42');
    b.vsp.unload();
    a.vsp.run('close ch=42');
    a.vsp.unload();
  });

  it('refuses an import it did not write, or over a live channel object, and changes nothing', () => {
    const h = makeHarness();
    h.open();
    h.vsp.run('save ch=42');
    const state = h.vsp.exportState(42);
    const INVALID_PARAMETER = 0xc000000d;
    const INVALID_DEVICE_STATE = 0xc0000184;
    expect(h.vsp.importState(state) >>> 0).toBe(INVALID_DEVICE_STATE); // the object is live
    h.vsp.run('detach ch=42');
    const damaged = state.slice();
    damaged[0] = damaged[0]! ^ 1;
    expect(h.vsp.importState(damaged) >>> 0).toBe(INVALID_PARAMETER);
    expect(h.vsp.importState(state.subarray(0, state.length - 1)) >>> 0).toBe(INVALID_PARAMETER);
    const other = state.slice();
    other[24] = other[24]! ^ 1; // another instance GUID for channel 42
    expect(h.vsp.importState(other) >>> 0).toBe(INVALID_DEVICE_STATE);
    // The saved state is still the VSP's own: restore works.
    h.vsp.run('restore ch=42');
    h.vsp.run('resume ch=42');
    h.vsp.run('close ch=42');
    h.vsp.unload();
  });

  it('discard gives up a live channel untraced: a held Request is completed to nobody', () => {
    const h = makeHarness();
    h.open();
    h.sendRequest(1, 64, CompletionMode.Hold, 1000);
    h.pump();
    expect(ch42(h).held).toBe(1);
    const before = h.events().length;
    h.vsp.run('discard ch=42');
    expect(h.events().length).toBe(before);
    expect(ch42(h)).toMatchObject({ held: 0, requests_completed: 1 });
    expect(h.vsp.offered(42)).toBeNull();
    h.vsp.run('close ch=42');
    h.vsp.unload();
  });

  it('refuses a malformed command with STATUS_INVALID_PARAMETER and does nothing', () => {
    const h = makeHarness();
    expect(h.vsp.command('transact lots')).toBe(0xc000000d);
    expect(h.vsp.counters()).toEqual([{ trace_seq: 0 }]);
  });

  it('reports the seq of its last trace event first in its counters, as the bench\'s marks need', () => {
    const h = makeHarness();
    h.open();
    h.vsp.run('transact 2 64 0 ch=42');
    h.pump();
    const seqs = h.sink.events.filter((e) => e.side === 'host').map((e) => e.seq);
    const [first, ...channels] = h.vsp.counters();
    expect(first).toEqual({ trace_seq: seqs.length });
    expect(channels.map((c) => c.ch)).toEqual([42]);
  });

  it('pauses a channel without saving it (pause ch=N), and resume ch=N starts it again', () => {
    const h = makeHarness();
    h.open();
    h.vsp.run('pause ch=42');
    // Paused: a HostTransaction cannot be sent, and nothing was saved.
    expect(h.vsp.command('transact 1 64 0 ch=42')).not.toBe(0);
    expect(h.events('pkt.save')).toEqual([]);
    expect(h.vsp.counters().find((c) => c.ch === 42)).toMatchObject({ saved: 0, transactions_sent: 0 });
    h.vsp.run('resume ch=42');
    h.vsp.run('transact 1 64 0 ch=42');
    h.pump();
    expect(h.events('pkt.completion').map((e) => e.tx)).toEqual([1]);
    expect(h.vsp.command('pause')).toBe(0xc000000d); // the channel must be named
  });

  it('offers with KMCL\'s FORCE_NEW_CHANNEL flag when open says force-new-channel, on restore too', () => {
    const h = makeHarness();
    h.vsp.run(`open 42 8d2f5c3a-71b4-4e0e-9a6d-2c1f0000002a loopback ring-pages=4 force-new-channel`);
    expect(h.vsp.offered(42)!.config.serverFlags).toBe(0x1 | 0x8);
    h.vsp.run('save ch=42');
    h.vsp.run('detach ch=42');
    h.vsp.run('restore ch=42');
    h.vsp.run('resume ch=42'); // restore makes the object; resume offers it
    expect(h.vsp.offered(42)!.config.serverFlags).toBe(0x1 | 0x8);
    const plain = makeHarness();
    plain.open();
    expect(plain.vsp.offered(42)!.config.serverFlags).toBe(0x1);
  });
});
