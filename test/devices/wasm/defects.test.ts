// The review's defects D1-D8 in the sample C drivers (lab/drivers), each shown caught by
// a Driver-Verifier-style check of the kernel shim while the driver's own C code runs
// on the emulator.

import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { makeHarness } from './support/vsp-harness.ts';
import { makeGuestHarness } from './support/guest-harness.ts';
import { violationOf } from './support/violation.ts';
import { executeScenario } from '../../../src/scenario/execute.ts';
import { ScenarioSchema, toScenario } from '../../../src/scenario/model.ts';
import { PropertyChecker, statusRuleOf } from '../../../src/check/properties.ts';
import { MemorySink } from '../../../src/trace/sink.ts';

const unfixed = (file: string) => fileURLToPath(new URL(`../../fixtures/drivers-unfixed/${file}`, import.meta.url));

const toolchain = spawnSync('clang', ['--version']).status === 0 && spawnSync('wasm-ld', ['--version']).status === 0;

describe.skipIf(!toolchain)('D1: PASSIVE-only calls from an I/O queue that may run at DISPATCH_LEVEL', () => {
  it('the unfixed VSP\'s control queue calls VmbChannelAllocate at DISPATCH_LEVEL', () => {
    const h = makeHarness({ replace: { 'vsp/vsp-driver.c': unfixed('d1-vsp-driver.patch') } });
    const v = violationOf(() => h.open());
    expect(v.report.rule).toBe('irql.passive-only');
    expect(v.report.call).toBe('VmbChannelAllocate');
    expect(v.report.site).toContain('VspEvtIoDeviceControl');
  });

  it('fixed (a PASSIVE execution level for the queue): every control command runs clean', () => {
    const h = makeHarness();
    h.open();
    h.vsp.run('transact 3 64 0 ch=42');
    h.pump();
    h.vsp.run('close ch=42');
    h.vsp.unload();
    expect(h.events('pkt.completion')).toHaveLength(3);
  });
});

describe.skipIf(!toolchain)('D2: sends after Suspend (VSP)', () => {
  it('the unfixed VSP sends a HostTransaction on a channel it paused for a save', () => {
    const h = makeHarness({ replace: { 'vsp/vsp-send.c': unfixed('d2-vsp-send.patch') } });
    h.open();
    h.vsp.run('save ch=42');
    const v = violationOf(() => h.vsp.command('transact 1 64 0 ch=42'));
    expect(v.report.rule).toBe('kmcl.send-after-suspend');
    expect(v.report.call).toBe('VmbPacketSend');
    expect(v.report.site).toContain('VspSendMany');
  });

  it('fixed: the VSP refuses to send while suspended, and sends again once resumed', () => {
    const h = makeHarness();
    h.open();
    h.vsp.run('save ch=42');
    expect(h.vsp.command('transact 1 64 0 ch=42')).toBe(0xc0000184); // STATUS_INVALID_DEVICE_STATE
    h.vsp.run('resume ch=42');
    h.vsp.run('transact 1 64 0 ch=42');
    h.pump();
    expect(h.events('pkt.completion').map((e) => e.tx)).toEqual([1]);
  });
});

describe.skipIf(!toolchain)('D3: leaks on a failed restore', () => {
  it('the unfixed VSP cleans up the channel with the packets it already restored still allocated', () => {
    const h = makeHarness({ faults: ['second-packet-restore-fails'], replace: { 'vsp/vsp-save.c': unfixed('d3-vsp-save.patch') } });
    h.open();
    h.vsp.run('transact 2 64 0 ch=42');
    h.vsp.run('save ch=42');
    h.vsp.run('detach ch=42');
    const v = violationOf(() => h.vsp.command('restore ch=42'));
    expect(v.report.rule).toBe('kmcl.packet-leak');
    expect(v.report.call).toBe('VmbChannelCleanup');
    expect(v.report.site).toContain('VspChannelRestore');
  });

  it('fixed: the failed restore frees what it restored, and the driver unloads with nothing leaked', () => {
    const h = makeHarness({ faults: ['second-packet-restore-fails'] });
    h.open();
    h.vsp.run('transact 2 64 0 ch=42');
    h.vsp.run('save ch=42');
    h.vsp.run('detach ch=42');
    expect(h.vsp.command('restore ch=42')).toBe(0xc000009a); // the injected STATUS_INSUFFICIENT_RESOURCES
    expect(h.vsp.counters().find((c) => c.ch !== undefined)).toMatchObject({ in_flight: 0, in_flight_bytes: 0 });
    h.vsp.run('close ch=42');
    h.vsp.unload();
  });
});

describe.skipIf(!toolchain)('D8: a save loop that can spin for ever', () => {
  it('the unfixed VSP calls SaveContinue again and again when STATUS_BUFFER_OVERFLOW comes back with nothing written', () => {
    // The loop is the save helper's (lab/drivers/common/vsp-save-helper.c), shared with blockq's VSP.
    const h = makeHarness({ faults: ['save-continue-no-progress'], hangCalls: 20_000, replace: { 'common/vsp-save-helper.c': unfixed('d8-vsp-save-helper.patch') } });
    h.open();
    h.vsp.run('transact 1 64 0 ch=42');
    const v = violationOf(() => h.vsp.command('save ch=42'));
    expect(v.report.rule).toBe('hang');
    expect(v.report.call).toBe('VmbChannelSaveContinue');
    expect(v.report.site).toContain('VspChannelSave');
  });

  it('fixed: the save fails instead, and the channel carries on', () => {
    const h = makeHarness({ faults: ['save-continue-no-progress'], hangCalls: 20_000 });
    h.open();
    h.vsp.run('transact 1 64 0 ch=42');
    expect(h.vsp.command('save ch=42')).toBe(0xc0000001); // STATUS_UNSUCCESSFUL
    expect(h.vsp.offered(42)!.isActive).toBe(true);
    h.pump();
    expect(h.events('pkt.completion').map((e) => e.tx)).toEqual([1]);
  });

  // The second half of D8 breaks no KMCL rule the shim could name: the channel's state shows it.
  it('a failed SaveBegin leaves the unfixed VSP\'s channel paused; the fixed one starts it again', () => {
    const before = makeHarness({ faults: ['save-begin-fails'], replace: { 'vsp/vsp-save.c': unfixed('d8-vsp-save.patch') } });
    before.open();
    expect(before.vsp.command('save ch=42')).toBe(0xc000009a);
    expect(before.vsp.offered(42)!.isActive).toBe(false);
    const after = makeHarness({ faults: ['save-begin-fails'] });
    after.open();
    expect(after.vsp.command('save ch=42')).toBe(0xc000009a);
    expect(after.vsp.offered(42)!.isActive).toBe(true);
  });
});

describe.skipIf(!toolchain)('D5: use after free in the Windows guest\'s completion path', () => {
  it('the unfixed guest\'s completion routine frees the request before VmbPacketSend returns, and the sender writes into it', () => {
    const h = makeGuestHarness({ faults: ['cancel-in-send'], replace: { 'guest-windows/guest-io.c': unfixed('d5-d7-guest-io.patch') } });
    h.pump();
    const v = violationOf(() => {
      h.guest.command('send 1 64 0 0');
      h.guest.unload();
    });
    // It writes SendTraced into the freed block, reads back the poison as "completion
    // parked" and frees the block a second time: the pool stops it there.
    expect(v.report.rule).toBe('pool.double-free');
    expect(v.report.object).toMatch(/tag 'VmSg'/);
    expect(v.report.site[0]).toBe('GuestSendOne');
  });

  it('fixed: the sender finishes a request cancelled under it; nothing is used after free or leaked', () => {
    const h = makeGuestHarness({ faults: ['cancel-in-send'] });
    h.pump();
    h.guest.run('send 2 64 0 0');
    expect(h.guest.counters()[0]).toMatchObject({ requests_sent: 2, cancelled: 2, completions: 0 });
    h.guest.unload();
  });
});

describe.skipIf(!toolchain)('D7: VmbChannelPacketFail from a client', () => {
  it('the unfixed guest fails a packet it cannot decode with a server-only call', () => {
    const h = makeGuestHarness({ replace: { 'guest-windows/guest-io.c': unfixed('d5-d7-guest-io.patch') } });
    h.pump();
    h.hostSend(new Uint8Array(8), true);
    const v = violationOf(() => h.pump());
    expect(v.report.rule).toBe('kmcl.server-only');
    expect(v.report.call).toBe('VmbChannelPacketFail');
    expect(v.report.site).toContain('GuestEvtProcessPacket');
  });

  it('fixed: the guest completes the packet it cannot use, and traces pkt.fail', () => {
    const h = makeGuestHarness();
    h.pump();
    h.hostSend(new Uint8Array(8), true);
    h.pump();
    expect(h.server.awaiting.size).toBe(0);
    expect(h.guest.readTrace().filter((e) => e.ev === 'pkt.fail')).toHaveLength(1);
    expect(h.guest.counters()[0]).toMatchObject({ failed: 1 });
    h.guest.unload();
  });
});

describe.skipIf(!toolchain)('D5 with the Windows guest as a VM\'s guest (devices: c-windows)', () => {
  // The guest's KMCL cancels each request inside VmbPacketSend, as a Driver-Verifier-style run may.
  const s = toScenario(ScenarioSchema.parse({ name: 'd5-vm', steps: [{ op: 'guest-send', count: 2, size: 64 }, { op: 'settle' }] }));
  const run = (guest?: Record<string, string>) => {
    const sink = new MemorySink();
    const r = executeScenario(s, { seed: 1, sink, devices: 'c-windows', cGuestKmclFaults: ['cancel-in-send'], ...(guest ? { cGuestReplace: guest } : {}) });
    return { r, events: sink.events as unknown as Array<Record<string, unknown>> };
  };

  it('the unfixed guest\'s sender writes into the request its completion routine freed: the pool stops it, a kmcl-misuse finding', () => {
    const { r, events } = run({ 'guest-windows/guest-io.c': unfixed('d5-d7-guest-io.patch') });
    expect(r.driverViolation).toMatch(/pool\.double-free/);
    const v = events.find((e) => e.ev === 'kmcl.violation')!;
    expect(v).toMatchObject({ rule: 'pool.double-free' });
    expect(String(v.message)).toMatch(/at GuestSendOne/);
  });

  it('fixed: the sender finishes each request cancelled under it, traced pkt.cancel after its pkt.send; the run goes on', () => {
    const { r, events } = run();
    expect(r.driverViolation).toBeUndefined();
    const guest = events.filter((e) => e.side === 'guest' && (e.ev === 'pkt.send' || e.ev === 'pkt.cancel')).map((e) => `${String(e.ev)} ${String(e.tx)}`);
    expect(guest).toEqual(['pkt.send 1', 'pkt.cancel 1', 'pkt.send 2', 'pkt.cancel 2']);
  });
});

describe.skipIf(!toolchain)('D7 with the Windows guest as a VM\'s guest (devices: c-windows)', () => {
  // A host whose VSP sends each HostTransaction as 8 bytes, no message (a test build of the C VSP).
  const noMessage = { 'vsp/vsp-send.c': fileURLToPath(new URL('../../fixtures/drivers-test/vsp-send-no-message.patch', import.meta.url)) };
  const s = toScenario(ScenarioSchema.parse({ name: 'd7-vm', steps: [{ op: 'guest-send', count: 2, size: 64 }, { op: 'host-send', count: 1, size: 64 }, { op: 'settle' }] }));
  const run = (guest?: Record<string, string>) => {
    const sink = new MemorySink();
    const r = executeScenario(s, { seed: 1, sink, devices: 'c-windows', cVspReplace: noMessage, ...(guest ? { cGuestReplace: guest } : {}) });
    return { r, events: sink.events as unknown as Array<Record<string, unknown>> };
  };

  it('the unfixed guest fails the packet with a server-only call: the run ends on it, a kmcl-misuse finding', () => {
    const { r, events } = run({ 'guest-windows/guest-io.c': unfixed('d5-d7-guest-io.patch') });
    expect(r.driverViolation).toMatch(/kmcl\.server-only/);
    expect(events.filter((e) => e.ev === 'kmcl.violation')).toMatchObject([{ rule: 'kmcl.server-only', call: 'VmbChannelPacketFail' }]);
    expect(String(events.find((e) => e.ev === 'kmcl.violation')!.message)).toContain('GuestEvtProcessPacket');
  });

  it('fixed: the guest completes it with no data and traces pkt.fail; the run goes on', () => {
    const { r, events } = run();
    expect(r.driverViolation).toBeUndefined();
    expect(events.filter((e) => e.side === 'guest' && e.ev === 'pkt.fail')).toHaveLength(1);
    expect(events.filter((e) => e.side === 'guest' && e.ev === 'pkt.completion').map((e) => e.tx)).toEqual([1, 2]);
  });
});

describe.skipIf(!toolchain)('D2: sends after Suspend (Windows guest)', () => {
  /** The host rescinds the offer: the client's channel is suspended, then closed (KMCL's peer close). */
  const rescind = (h: ReturnType<typeof makeGuestHarness>) => {
    const client = [...h.guest.kmcl.channels.values()].map((r) => r.ch).find((c) => !c.isServer)!;
    client.peerClosed();
  };

  it('the unfixed client sends a Request on the channel KMCL suspended for the host\'s rescind', () => {
    const h = makeGuestHarness({ replace: { 'guest-windows/guest-io.c': unfixed('d2-guest-io.patch') } });
    h.pump();
    rescind(h);
    const v = violationOf(() => h.guest.command('send 1 64 0 0'));
    expect(v.report.rule).toBe('kmcl.send-after-suspend');
    expect(v.report.call).toBe('VmbPacketSend');
    expect(v.report.site).toContain('GuestSendOne');
  });

  it('fixed: the client refuses to send while suspended: the command fails as the VSP\'s does, and nothing is sent', () => {
    const h = makeGuestHarness();
    h.pump();
    h.guest.run('send 1 64 0 0');
    h.pump();
    rescind(h);
    expect(h.guest.command('send 1 64 0 0') >>> 0).toBe(0xc0000184); // STATUS_INVALID_DEVICE_STATE, as the VSP
    const trace = h.guest.readTrace();
    expect(trace.filter((e) => e.ev === 'pkt.send').map((e) => e.tx)).toEqual([1]);
    expect(trace.filter((e) => e.ev === 'ch.state').map((e) => e.state)).toEqual(['Enabled', 'Opened', 'Started', 'Active', 'Paused', 'Closed']);
  });
});

describe.skipIf(!toolchain)('D2 with the Windows guest as a VM\'s guest (devices: c-windows)', () => {
  // The host rescinds channel 0 with Requests done and one more to send after the new instance
  // opens. The test's removal race: KMCL suspends and closes the rescinded client, then the
  // control tool's `send` reaches its device, then PnP removes the device (as a real guest's
  // separate threads may order them).
  const s = toScenario(ScenarioSchema.parse({
    name: 'd2-vm',
    steps: [{ op: 'guest-send', count: 2, size: 64 }, { op: 'settle' }, { op: 'rescind', channel: 0 }, { op: 'guest-send', count: 1, size: 64 }, { op: 'settle' }],
  }));
  const run = (race: boolean, guest?: Record<string, string>) => {
    const sink = new MemorySink();
    const answers: Array<{ ch: number; line: string; status: number }> = [];
    const r = executeScenario(s, {
      seed: 1, sink, devices: 'c-windows', ...(guest ? { cGuestReplace: guest } : {}),
      ...(race ? { cGuestRemovalRace: { count: 1, size: 64, answered: (ch, line, status) => answers.push({ ch, line, status }) } } : {}),
    });
    const checker = new PropertyChecker({ statusRule: statusRuleOf({}) });
    for (const e of sink.events) checker.onEvent(e);
    return { r, answers, events: sink.events as unknown as Array<Record<string, unknown>>, violations: r.driverViolation ? [] : checker.finish(r.hang, r.refusedRestores) };
  };

  it('the unfixed guest sends on the client KMCL suspended for the rescind: the run ends on it, a kmcl-misuse finding', () => {
    const { r, events } = run(true, { 'guest-windows/guest-io.c': unfixed('d2-guest-io.patch') });
    expect(r.driverViolation).toMatch(/kmcl\.send-after-suspend/);
    const v = events.filter((e) => e.ev === 'kmcl.violation');
    expect(v).toMatchObject([{ rule: 'kmcl.send-after-suspend', call: 'VmbPacketSend', ch: 0 }]);
    expect(String(v[0]!.message)).toContain('GuestSendOne');
    // It came after KMCL's Suspend and Closed of the rescinded client, before the new instance.
    const states = events.filter((e) => e.side === 'guest' && e.ev === 'ch.state').map((e) => e.state);
    expect(states.slice(-2)).toEqual(['Paused', 'Closed']);
  });

  it('the unfixed guest runs clean without the race: the removal as one step never lets the command in', () => {
    const { r, violations } = run(false, { 'guest-windows/guest-io.c': unfixed('d2-guest-io.patch') });
    expect(r.driverViolation).toBeUndefined();
    expect(violations).toEqual([]);
  });

  it('fixed: the device refuses the command (STATUS_INVALID_DEVICE_STATE), nothing is sent, and each side does what it does without the race', () => {
    const raced = run(true);
    expect(raced.r.driverViolation).toBeUndefined();
    expect(raced.r.hang).toBeNull();
    expect(raced.violations).toEqual([]);
    expect(raced.answers).toEqual([{ ch: 0, line: expect.stringMatching(/^send 1 64 .*ch=0/), status: 0xc0000184 }]);
    // Only when the bench reads the guest's trace differs: without the race the removed
    // device took the control device with it, so its Paused and Closed are read once the
    // new instance's device is there; with it they are read while the device is still there.
    const plain = run(false);
    const side = (events: Array<Record<string, unknown>>, name: string) => events.filter((e) => e.side === name).map(({ seq: _seq, ...e }) => e);
    for (const name of ['host', 'guest']) expect(side(raced.events, name)).toEqual(side(plain.events, name));
    expect(side(raced.events, 'guest').filter((e) => e.ev === 'pkt.send').map((e) => e.tx)).toEqual([1, 2, 3]);
  });
});

// D4 breaks no KMCL rule the shim could name either: what the client is left with shows it.
describe.skipIf(!toolchain)('D4: `restore` disables a channel object its client still has open', () => {
  it('the unfixed VSP revokes the live offer at `restore`: its own Closed under an open client, and what it restored never completes', () => {
    const h = makeHarness({ replace: { 'vsp/vsp-save.c': unfixed('d4-vsp-save.patch') } });
    h.open();
    h.vsp.run('transact 3 64 0 ch=42');
    h.vsp.run('save ch=42');
    const before = h.events('ch.state').length;
    expect(h.vsp.command('restore ch=42')).toBe(0);
    // The VSP's own Disable ran Closed: the offer the client holds open is gone.
    expect(h.events('ch.state').slice(before).map((e) => e.state)).toEqual(['Closed']);
    h.vsp.run('resume ch=42');
    h.pump();
    // The three were restored onto an object no client has open: they can never complete.
    expect(h.events('pkt.restore').map((e) => e.tx)).toEqual([1, 2, 3]);
    expect(h.events('pkt.completion')).toEqual([]);
    expect(h.vsp.counters().find((c) => c.ch === 42)).toMatchObject({ in_flight: 3 });
  });

  it('fixed: `restore` of a live object is refused and changes nothing; the client completes the three on the channel it kept', () => {
    const h = makeHarness();
    h.open();
    h.vsp.run('transact 3 64 0 ch=42');
    h.vsp.run('save ch=42');
    const before = h.events().length;
    expect(h.vsp.command('restore ch=42')).toBe(0xc0000184); // STATUS_INVALID_DEVICE_STATE: detach first
    expect(h.events().length).toBe(before);
    h.vsp.run('resume ch=42');
    h.pump();
    expect(h.events('pkt.completion').map((e) => e.tx)).toEqual([1, 2, 3]);
    h.vsp.run('close ch=42');
    h.vsp.unload();
  });
});

describe.skipIf(!toolchain)('D6: a guest close leaves the VSP\'s outstanding transactions to a Disable that never comes', () => {
  const guestClose = toScenario(ScenarioSchema.parse({
    name: 'd6-guest-close',
    steps: [
      { op: 'host-send', count: 4, size: 256, hold: 30 },
      { op: 'run', ms: 1 },
      { op: 'guest-close', channel: 0 },
      { op: 'guest-open', channel: 0 },
      { op: 'settle' },
    ],
  }));
  const run = (replace?: Record<string, string>) => {
    const sink = new MemorySink();
    const checker = new PropertyChecker({ statusRule: statusRuleOf({}) });
    const r = executeScenario(guestClose, { seed: 1, sink, devices: 'c', ...(replace ? { cVspReplace: replace } : {}) });
    for (const e of sink.events) checker.onEvent(e);
    return { events: sink.events as unknown as Array<Record<string, unknown>>, violations: checker.finish(r.hang, r.refusedRestores) };
  };

  it('the unfixed VSP lets the transactions KMCL hands back go untraced: the checker finds them lost', () => {
    const { violations } = run({ 'vsp/vsp-channel.c': unfixed('d6-vsp-channel.patch') });
    expect(violations.length).toBeGreaterThan(0);
    expect(violations[0]).toMatchObject({ property: 'exactly-once-completion', class: 'lost' });
    expect(violations[0]!.message).toMatch(/rescinded or closed, and its sender never ended it/);
  });

  it('fixed: after its guest\'s close the VSP ends each one as cancelled, once, and every property holds', () => {
    const { events, violations } = run();
    expect(violations).toEqual([]);
    const cancelled = events.filter((e) => e.side === 'host' && e.ev === 'pkt.cancel').map((e) => e.tx);
    const completed = events.filter((e) => e.side === 'host' && e.ev === 'pkt.completion').map((e) => e.tx);
    expect(cancelled.length).toBeGreaterThan(0);
    expect([...cancelled, ...completed].sort()).toEqual([1, 2, 3, 4]);
  });
});
