// A VM saved by each format version of the bench from 2 on (test/fixtures/saved/vm-vN.bin,
// written by make-vm-golden.ts there, with the rest of its migration hand-off in
// vm-vN.json) must keep restoring: a migration's destination built by any later version
// finishes the run from it, and every transaction that was in flight finishes exactly once.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { resumeScenario, type MigrationHandoff } from '../../src/scenario/execute.ts';
import { RestoreError, SAVED_VM_VERSION, decodeSavedVm } from '../../src/vmbus/saved-state.ts';
import { fromGuestImage } from '../../devices/sample/guest-image.ts';
import { fifoLength } from '../../src/vmbus/fifo.ts';
import { MemorySink } from '../../src/trace/sink.ts';
import { GOLDEN_SCENARIO } from '../fixtures/saved/golden-scenario.ts';

const VERSIONS = [2, 3];

it('has golden files for the format version this bench writes (make-vm-golden.ts writes them)', () => {
  expect(VERSIONS).toContain(SAVED_VM_VERSION);
});

describe.each(VERSIONS)('golden blob test/fixtures/saved/vm-v%i.bin', (version) => {
  const blob = new Uint8Array(readFileSync(new URL(`../fixtures/saved/vm-v${version}.bin`, import.meta.url)));
  const rest = JSON.parse(readFileSync(new URL(`../fixtures/saved/vm-v${version}.json`, import.meta.url), 'utf8')) as Omit<MigrationHandoff, 'blob'>;

  it('decodes, with the guest image in columns holding queued writes, held and awaited transactions', () => {
    const vm = decodeSavedVm(blob);
    expect(new DataView(blob.buffer).getUint32(8, true)).toBe(version);
    // The guest image's version went up with the format's (guest-image.ts).
    expect((vm.guest as { image: number }).image).toBe(version);
    const g = fromGuestImage(vm.guest, rest.clock).channels[0]!;
    expect(fifoLength(g.queue)).toBeGreaterThan(0);
    expect(fifoLength(g.held)).toBeGreaterThan(0);
    expect(g.awaiting.size).toBeGreaterThan(0);
  });

  it('restores on a migration destination, which finishes the run with every transaction done once', () => {
    const sink = new MemorySink();
    const seg = resumeScenario(GOLDEN_SCENARIO, { seed: 7, sink }, { ...rest, blob });
    expect(seg.kind).toBe('done');
    if (seg.kind !== 'done') return;
    expect(seg.result.hang).toBeNull();
    expect(seg.result.pendingAtEnd).toBe(0);
    const restored = sink.events.filter((e) => e.ev === 'pkt.restore').map((e) => (e as { tx: number }).tx);
    expect(restored.length).toBeGreaterThan(0);
    // Each host transaction that was saved awaiting its completion gets it once, after the restore.
    const completions = sink.events.filter((e) => e.ev === 'pkt.completion' && e.side === 'host').map((e) => (e as { tx: number }).tx);
    for (const tx of restored) expect(completions.filter((t) => t === tx)).toHaveLength(1);
    expect(new Set(completions).size).toBe(completions.length);
  });

  it('refuses a hand-off whose blob was damaged on the way: a blob from elsewhere has its checksum checked', () => {
    const damaged = blob.slice();
    damaged[damaged.length - 100] = damaged[damaged.length - 100]! ^ 0x04;
    expect(() => resumeScenario(GOLDEN_SCENARIO, { seed: 7, sink: new MemorySink() }, { ...rest, blob: damaged })).toThrow(
      expect.objectContaining({ name: 'RestoreError', code: 'bad-checksum' }) as RestoreError,
    );
  });
});
