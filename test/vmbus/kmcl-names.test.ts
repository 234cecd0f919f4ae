import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';

const NOTES = '../shared/reference/kmcl/SPEC-NOTES.md';
import { KMCL_NAMES } from '../../src/vmbus/kmcl-names.ts';
import { Channel } from '../../src/vmbus/channel.ts';
import * as channelSave from '../../src/vmbus/channel-save.ts';
import { DEFAULT_CHOICES } from '../../src/vmbus/choices.ts';

describe('the KMCL name table', () => {
  it.skipIf(!existsSync(NOTES))(`lists all 55 functions of the client and server-only tables (SPEC-NOTES 11.1, 11.2)${existsSync(NOTES) ? '' : ` [skipped: ${NOTES} not found beside the repo]`}`, () => {
    const notes = readFileSync(NOTES, 'utf8');
    const listed = new Set([...notes.matchAll(/^\| \d+ \| (Vmb\w+) \|/gm)].map((m) => m[1]!));
    expect(listed.size).toBe(55);
    expect(new Set(Object.keys(KMCL_NAMES))).toEqual(listed);
  });

  it('names only methods and functions that exist', () => {
    const ch = new Channel(true, 0, DEFAULT_CHOICES);
    const packet = ch.packetAllocate();
    for (const [c, b] of Object.entries(KMCL_NAMES)) {
      if ('method' in b) expect(typeof (ch as unknown as Record<string, unknown>)[b.method], c).toBe('function');
      if ('fn' in b) expect(typeof (channelSave as Record<string, unknown>)[b.fn], c).toBe('function');
      if ('packet' in b) expect(b.packet in packet, c).toBe(true);
    }
  });
});
