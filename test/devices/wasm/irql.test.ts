// The shim's PASSIVE-only table is the data the stand-in headers carry as annotations:
// every KMCL table entry whose typedef is annotated _IRQL_requires_max_(PASSIVE_LEVEL)
// is in KMCL_PASSIVE_ONLY, and nothing else is. And the IRQL bookkeeping itself.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DRIVERS_DIR } from '../../../src/devices/wasm/build.ts';
import { DISPATCH_LEVEL, Irql, KMCL_PASSIVE_ONLY, PASSIVE_LEVEL } from '../../../src/devices/wasm/irql.ts';
import { DriverViolation } from '../../../src/devices/wasm/violations.ts';

describe('the IRQL rules', () => {
  it('KMCL_PASSIVE_ONLY is exactly the table entries the stand-in header annotates PASSIVE-only', () => {
    const header = readFileSync(join(DRIVERS_DIR, 'wdk-standin/km/vmbuskernelmodeclientlibapi.h'), 'utf8');
    // typedef name -> table member name, from the tables' "FN_X *Name;" lines
    const member = new Map<string, string>();
    for (const m of header.matchAll(/(FN_VMB_[A-Z0-9_]+) \*(Vmb\w+);/g)) member.set(m[1]!, m[2]!);
    const annotated = new Set<string>();
    for (const m of header.matchAll(/_IRQL_requires_max_\(PASSIVE_LEVEL\)\ntypedef [A-Z0-9_ ]+? (FN_VMB_[A-Z0-9_]+)\(/g)) {
      annotated.add(member.get(m[1]!)!);
    }
    expect(annotated.size).toBeGreaterThan(10);
    expect([...annotated].sort()).toEqual([...KMCL_PASSIVE_ONLY].sort());
  });

  it('a PASSIVE-only call above PASSIVE_LEVEL is a violation; at PASSIVE it is not', () => {
    const irql = new Irql();
    expect(() => irql.requirePassive('VmbChannelPause', 'ch')).not.toThrow();
    irql.run(DISPATCH_LEVEL, 'EvtVmbChannelProcessPacket', () => {
      let err: unknown;
      try {
        irql.requirePassive('VmbChannelPause', 'ch');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(DriverViolation);
      expect((err as DriverViolation).report).toMatchObject({ rule: 'irql.passive-only', call: 'VmbChannelPause' });
    });
    expect(irql.level).toBe(PASSIVE_LEVEL);
  });

  it('a callback that returns at another IRQL than it was called at is a violation', () => {
    const irql = new Irql();
    expect(() => irql.run(PASSIVE_LEVEL, 'EvtTimerFunc', () => {
      irql.level = DISPATCH_LEVEL; // a spin lock acquired and never released
    })).toThrow(/irql.not-restored/);
  });
});
