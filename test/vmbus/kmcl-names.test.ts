import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KMCL_NAMES } from '../../src/vmbus/kmcl-names.ts';
import { Channel } from '../../src/vmbus/channel.ts';
import * as channelSave from '../../src/vmbus/channel-save.ts';
import { DEFAULT_CHOICES } from '../../src/vmbus/choices.ts';

// The function tables as the repository's own stand-in of the WDK header declares them
// (KMCL_CLIENT_INTERFACE_V1 and KMCL_SERVER_ONLY_METHODS; the drivers compile against it),
// rather than a document outside the repository.
const HEADER = join(import.meta.dirname, '../../lab/drivers/wdk-standin/km/vmbuskernelmodeclientlibapi.h');

/** The function-pointer members of struct `name` in the header. */
function tableMembers(header: string, name: string): string[] {
  const body = new RegExp(`typedef struct _${name} \\{([\\s\\S]*?)\\} ${name}\\b`).exec(header);
  if (!body) throw new Error(`${name} not found in ${HEADER}`);
  return [...body[1]!.matchAll(/^\s*FN_VMB_\w+\s*\*\s*(Vmb\w+);/gm)].map((m) => m[1]!);
}

describe('the KMCL name table', () => {
  it('lists all 55 functions of the client (41) and server-only (14) tables, as the stand-in WDK header declares them', () => {
    const header = readFileSync(HEADER, 'utf8');
    const client = tableMembers(header, 'KMCL_CLIENT_INTERFACE_V1');
    const server = tableMembers(header, 'KMCL_SERVER_ONLY_METHODS');
    expect(client).toHaveLength(41);
    expect(server).toHaveLength(14);
    expect(new Set(Object.keys(KMCL_NAMES))).toEqual(new Set([...client, ...server]));
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
