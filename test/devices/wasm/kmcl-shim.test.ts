// The KMCL shim's table of incoming packets in a driver's hands (VMBPACKETCOMPLETION
// handles), seen through the C VSP: the packet being handed to EvtVmbChannelProcessPacket
// is the driver's until it completes it, inside that call or later; once completed its
// handle is not a packet any more, whenever the driver uses it again.

import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CompletionMode } from '../../../devices/sample/protocol.ts';
import { DriverViolation } from '../../../src/devices/wasm/violations.ts';
import { makeHarness, type Harness } from './support/vsp-harness.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;

/** Calls `after(handle)` right after each EvtVmbChannelProcessPacket returns, still inside the shim's delivery. */
function onEachPacket(h: Harness, after: (handle: number) => void): number[] {
  const handles: number[] = [];
  const rt = h.vsp.rt;
  const callback = rt.callback.bind(rt);
  rt.callback = (index, what, level, a, b, c, d, e, g) => {
    const r = callback(index, what, level, a, b, c, d, e, g);
    if (what === 'EvtVmbChannelProcessPacket') {
      handles.push(b as number);
      after(b as number);
    }
    return r;
  };
  return handles;
}

const complete = (h: Harness, handle: number): void => {
  const kmcl = h.vsp.kmcl.imports().kmcl!;
  kmcl.VmbChannelPacketComplete!(handle, 0, 0);
};

const ruleOf = (f: () => void): string => {
  try {
    f();
  } catch (e) {
    if (e instanceof DriverViolation) return e.report.rule;
    throw e;
  }
  return 'none';
};

describe.skipIf(!toolchain)('the KMCL shim\'s incoming packets', () => {
  it('counts a packet as the driver\'s while its ProcessPacket call runs, and not after the driver completed it', () => {
    const h = makeHarness();
    h.open();
    const during: number[] = [];
    const rt = h.vsp.rt;
    const callback = rt.callback.bind(rt);
    rt.callback = (index, what, level, a, b, c, d, e, g) => {
      if (what === 'EvtVmbChannelProcessPacket') during.push(h.vsp.kmcl.outstanding().incoming);
      return callback(index, what, level, a, b, c, d, e, g);
    };
    h.sendRequest(1, 64, CompletionMode.Inline);
    h.pump();
    expect(during).toEqual([1]);
    expect(h.vsp.kmcl.outstanding().incoming).toBe(0);
    expect(h.completions.get(1)).toBeDefined();
  });

  it('names a second completion inside the same ProcessPacket call a bad handle', () => {
    const h = makeHarness();
    h.open();
    const rules: string[] = [];
    onEachPacket(h, (handle) => rules.push(ruleOf(() => complete(h, handle))));
    h.sendRequest(1, 64, CompletionMode.Inline);
    h.pump();
    expect(rules).toEqual(['kmcl.bad-handle']);
  });

  it('keeps a held packet in the driver\'s hands past its call, and its handle is bad once the driver completed it', () => {
    const h = makeHarness();
    h.open();
    const handles = onEachPacket(h, () => {});
    h.sendRequest(7, 64, CompletionMode.Hold, 20);
    h.pump();
    expect(h.vsp.kmcl.outstanding().incoming).toBe(1);
    expect(h.vsp.kmcl.completionOf(handles[0]!)?.transId).toBeDefined();
    h.advance(30);
    expect(h.completions.get(7)).toBeDefined();
    expect(h.vsp.kmcl.outstanding().incoming).toBe(0);
    expect(h.vsp.kmcl.completionOf(handles[0]!)).toBeUndefined();
    expect(ruleOf(() => complete(h, handles[0]!))).toBe('kmcl.bad-handle');
  });

  it('hands a deferred packet back with the same handle and retires it once', () => {
    const h = makeHarness();
    h.open();
    const handles = onEachPacket(h, () => {});
    h.sendRequest(3, 64, CompletionMode.Deferred);
    h.pump();
    expect(handles.length).toBe(2);
    expect(handles[1]).toBe(handles[0]);
    expect(h.completions.get(3)).toBeDefined();
    expect(h.vsp.kmcl.outstanding().incoming).toBe(0);
    expect(ruleOf(() => complete(h, handles[0]!))).toBe('kmcl.bad-handle');
  });
});

describe.skipIf(!toolchain)('the KMCL shim\'s packet objects', () => {
  // The shim answers a packet's handle from the object it found last before its table
  // (KmclShim.packet): whichever handle it found last, a freed packet's handle is a
  // double free and a cleaned-up channel's packet handle is no packet at all.
  it('finds a freed packet freed, and a cleaned-up channel\'s packets gone, right after looking them up', () => {
    const h = makeHarness();
    const kmcl = h.vsp.kmcl.imports().kmcl!;
    const out = h.vsp.rt.pool.alloc(4, 0x74736554, 'shim');
    expect(kmcl.VmbChannelAllocate!(0, 1, out)).toBe(0);
    const ch = h.vsp.rt.mem.u32(out);
    const a = kmcl.VmbPacketAllocate!(ch) as number;
    const b = kmcl.VmbPacketAllocate!(ch) as number;
    kmcl.VmbPacketSetPointer!(a, 0x1234);
    expect(kmcl.VmbPacketGetPointer!(a)).toBe(0x1234);
    kmcl.VmbPacketFree!(a);
    expect(ruleOf(() => kmcl.VmbPacketGetPointer!(a))).toBe('pool.double-free');
    expect(kmcl.VmbPacketGetPointer!(b)).toBe(0);
    expect(ruleOf(() => kmcl.VmbPacketGetPointer!(b + 8))).toBe('kmcl.bad-handle');
    kmcl.VmbPacketFree!(b);
    expect(ruleOf(() => kmcl.VmbPacketFree!(b))).toBe('pool.double-free');
    kmcl.VmbChannelCleanup!(ch);
    expect(ruleOf(() => kmcl.VmbPacketGetPointer!(b))).toBe('kmcl.bad-handle');
    expect(ruleOf(() => kmcl.VmbPacketGetPointer!(a))).toBe('kmcl.bad-handle');
  });

  it('names every packet a channel still holds at its cleanup, and keeps them for the report', () => {
    const h = makeHarness();
    const kmcl = h.vsp.kmcl.imports().kmcl!;
    const out = h.vsp.rt.pool.alloc(4, 0x74736554, 'shim');
    kmcl.VmbChannelAllocate!(0, 1, out);
    const ch = h.vsp.rt.mem.u32(out);
    const kept = [kmcl.VmbPacketAllocate!(ch) as number, kmcl.VmbPacketAllocate!(ch) as number];
    kmcl.VmbPacketFree!(kmcl.VmbPacketAllocate!(ch));
    // (the emulator's channel names the leak first; the driver's runtime reports it as kmcl.packet-leak)
    expect(() => kmcl.VmbChannelCleanup!(ch)).toThrow(/packet-leak/);
    for (const p of kept) expect(h.vsp.kmcl.packetOf(p)?.freed).toBe(false);
  });
});
