// The offsets explore's key of blockq's C VSP reads (devices/blockq/c/vsp-key.ts LAYOUT)
// are wasm32's layout of vsp.h: each is compiled as a _Static_assert against the header,
// so a changed structure fails here, not as a key that silently reads the wrong bytes.

import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { LAYOUT } from '../../../devices/blockq/c/vsp-key.ts';
import { COMPILE_FLAGS } from '../../../src/devices/wasm/build.ts';

const toolchain = spawnSync('clang', ['--version']).status === 0;
const STRUCT = { device: 'BQ_DEVICE', channel: 'BQ_CHANNEL', request: 'BQ_REQUEST', deferred: 'BQ_DEFERRED', tx: 'BQ_TX' } as const;

function compile(layout: Record<string, Record<string, number>>) {
  const asserts = Object.entries(layout).flatMap(([s, fields]) => Object.entries(fields).map(([f, at]) =>
    `_Static_assert(offsetof(${STRUCT[s as keyof typeof STRUCT]}, ${f}) == ${at}, "${s}.${f}");`));
  return spawnSync('clang', [...COMPILE_FLAGS, '-isystem', 'lab/drivers/wdk-standin/km', '-I', 'lab/drivers/trace-lib', '-I', 'lab/drivers/common', '-I', 'devices/blockq/c', '-fsyntax-only', '-x', 'c', '-'], {
    input: `#include "vsp.h"\n${asserts.join('\n')}\n`, encoding: 'utf8',
  });
}

describe.skipIf(!toolchain)('explore\'s key of blockq\'s C VSP', () => {
  it('reads every field at the offset clang gives it in wasm32', () => {
    const r = compile(LAYOUT as unknown as Record<string, Record<string, number>>);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('would notice a wrong offset', () => {
    const r = compile({ ...(LAYOUT as unknown as Record<string, Record<string, number>>), channel: { ...LAYOUT.channel, NextTx: LAYOUT.channel.NextTx + 8 } });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('channel.NextTx');
  });
});
