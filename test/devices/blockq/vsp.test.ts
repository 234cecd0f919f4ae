// The blockq VSP twin's own rules, beside what its properties cover (properties.test.ts):
// a packet it allocated for a restore that KMCL refused is freed, not leaked.
import { describe, expect, it } from 'vitest';
import { BlockqVsp } from '../../../devices/blockq/vsp.ts';
import { MsgType } from '../../../devices/blockq/protocol.ts';
import { recordSize, writeRecord } from '../../../devices/blockq/save-record.ts';
import { DEFAULT_CHOICES } from '../../../src/vmbus/choices.ts';
import { Faults } from '../../../src/vmbus/faults.ts';
import { STATUS } from '../../../src/vmbus/status.ts';
import { MemorySink } from '../../../src/trace/sink.ts';

describe('the blockq VSP twin', () => {
  it('frees the packet of a restore KMCL refuses (VmbPacketRestore failed), so nothing leaks', () => {
    const vsp = new BlockqVsp({
      ch: 0, instance: '00000000-0000-0000-0000-000000000001', choices: DEFAULT_CHOICES, sink: new MemorySink('emulator'),
      now: () => 0, saveBufferSize: 4096, faults: new Faults(),
    });
    const save = new Uint8Array(recordSize(1));
    writeRecord(save, { tx: 1, type: MsgType.Event, length: 64, hold: 0, digestHi: 0, digestLo: 0 });
    // Outside a RestoreFromBuffer, VmbPacketRestore refuses any library buffer.
    expect(vsp.onRestorePacket(new Uint8Array(16), save)).not.toBe(STATUS.SUCCESS);
    expect(vsp.channel.livePackets.size).toBe(0);
  });
});
