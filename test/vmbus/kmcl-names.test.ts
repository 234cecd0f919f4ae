import { describe, expect, it } from 'vitest';
import { KMCL_NAMES } from '../../src/vmbus/kmcl-names.ts';
import { Channel } from '../../src/vmbus/channel.ts';
import * as channelSave from '../../src/vmbus/channel-save.ts';
import { DEFAULT_CHOICES } from '../../src/vmbus/choices.ts';

// The members of KMCL's two function tables, in the order the public reference gives them:
// KMCL_CLIENT_INTERFACE_V1 and KMCL_SERVER_ONLY_METHODS (learn.microsoft.com,
// windows-hardware/drivers/ddi/vmbuskernelmodeclientlibapi, the two structure pages).
const CLIENT_INTERFACE_V1 = [
  'VmbChannelAllocate', 'VmbChannelCleanup', 'VmbChannelCreateGpadlFromBuffer', 'VmbChannelCreateGpadlFromMdl',
  'VmbChannelDeleteGpadl', 'VmbChannelDisable', 'VmbChannelEnable', 'VmbChannelGetInterfaceInstance',
  'VmbChannelGetMmioSpace', 'VmbChannelGetPointer', 'VmbChannelInitSetClientContextSize', 'VmbChannelInitSetFlags',
  'VmbChannelInitSetFriendlyName', 'VmbChannelInitSetMaximumExternalData', 'VmbChannelInitSetMaximumPacketSize',
  'VmbChannelInitSetProcessPacketCallbacks', 'VmbChannelInitSetStateChangeCallbacks', 'VmbChannelPacketComplete',
  'VmbChannelPacketDeferToPassive', 'VmbChannelPacketFail', 'VmbChannelPacketGetExternalData', 'VmbChannelPause',
  'VmbChannelSendSynchronousRequest', 'VmbChannelSetIncomingProcessingAtPassive', 'VmbChannelSetInterruptLatency',
  'VmbChannelSetPointer', 'VmbChannelSetTransactionQuota', 'VmbChannelSizeofPacket', 'VmbChannelStart',
  'VmbClientChannelInitSetRingBufferPageCount', 'VmbClientChannelInitSetTargetPnp', 'VmbPacketAllocate', 'VmbPacketFree',
  'VmbPacketGetChannel', 'VmbPacketGetPointer', 'VmbPacketInitialize', 'VmbPacketSend', 'VmbPacketSendWithExternalMdl',
  'VmbPacketSendWithExternalPfns', 'VmbPacketSetCompletionRoutine', 'VmbPacketSetPointer',
];
const SERVER_ONLY_METHODS = [
  'VmbChannelMapGpadl', 'VmbChannelRestoreFromBuffer', 'VmbChannelSaveBegin', 'VmbChannelSaveContinue', 'VmbChannelSaveEnd',
  'VmbChannelUnmapGpadl', 'VmbConvertVmbusHandleToKernelHandle', 'VmbPacketRestore', 'VmbServerChannelInitSetFlags',
  'VmbServerChannelInitSetMmioMegabytes', 'VmbServerChannelInitSetSaveRestorePacketCallbacks',
  'VmbServerChannelInitSetTargetInterfaceId', 'VmbServerChannelInitSetTargetVtl', 'VmbServerChannelInitSetVmbusHandle',
];

describe('the KMCL name table', () => {
  it('lists every function of the client interface and of the server-only table, and nothing else', () => {
    const documented = new Set([...CLIENT_INTERFACE_V1, ...SERVER_ONLY_METHODS]);
    expect(documented.size).toBe(55);
    expect(new Set(Object.keys(KMCL_NAMES))).toEqual(documented);
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
