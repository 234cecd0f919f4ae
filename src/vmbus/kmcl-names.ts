// KMCL's C names (vmbuskernelmodeclientlibapi.h, SPEC-NOTES section 11) and the
// emulator's. One table, so a reader of the Microsoft pages can find each function here,
// and so test/vmbus/kmcl-names.test.ts can hold the code to it.
//
// `method` is a Channel method (channel.ts); `fn` an exported function of the module
// named; `packet` a field of the VmbPacket record (packet.ts). null: not emulated (no
// GPADLs, MMIO, external data or pipe mode yet), with the reason.

export type KmclBinding =
  | { method: string }
  | { fn: string; module: 'channel-save' | 'channel' }
  | { packet: string }
  | { notEmulated: string };

export const KMCL_NAMES: Readonly<Record<string, KmclBinding>> = {
  // client table (KMCL_CLIENT_INTERFACE_V1)
  VmbChannelAllocate: { notEmulated: 'new Channel(isServer, id, choices)' },
  VmbChannelCleanup: { method: 'cleanup' },
  VmbChannelCreateGpadlFromBuffer: { notEmulated: 'GPADLs are not modelled; the ring GPADL is GuestMemory' },
  VmbChannelCreateGpadlFromMdl: { notEmulated: 'GPADLs are not modelled' },
  VmbChannelDeleteGpadl: { notEmulated: 'GPADLs are not modelled' },
  VmbChannelDisable: { method: 'disable' },
  VmbChannelEnable: { method: 'enable' },
  VmbChannelGetInterfaceInstance: { notEmulated: 'read config.interfaceInstance' },
  VmbChannelGetMmioSpace: { notEmulated: 'MMIO is not modelled' },
  VmbChannelGetPointer: { notEmulated: 'read channel.pointer' },
  VmbChannelInitSetClientContextSize: { method: 'initSetClientContextSize' },
  VmbChannelInitSetFlags: { method: 'initSetFlags' },
  VmbChannelInitSetFriendlyName: { method: 'initSetFriendlyName' },
  VmbChannelInitSetMaximumExternalData: { method: 'initSetMaximumExternalData' },
  VmbChannelInitSetMaximumPacketSize: { method: 'initSetMaximumPacketSize' },
  VmbChannelInitSetProcessPacketCallbacks: { method: 'initSetProcessPacketCallbacks' },
  VmbChannelInitSetStateChangeCallbacks: { method: 'initSetStateChangeCallbacks' },
  VmbChannelPacketComplete: { method: 'packetComplete' },
  VmbChannelPacketDeferToPassive: { method: 'packetDeferToPassive' },
  VmbChannelPacketFail: { method: 'packetFail' },
  VmbChannelPacketGetExternalData: { notEmulated: 'external data is not modelled' },
  VmbChannelPause: { method: 'pause' },
  VmbChannelSendSynchronousRequest: { notEmulated: 'the sample protocol does not use it yet' },
  VmbChannelSetIncomingProcessingAtPassive: { notEmulated: 'IRQL is not modelled' },
  VmbChannelSetInterruptLatency: { notEmulated: 'signal latency is not modelled' },
  VmbChannelSetPointer: { notEmulated: 'write channel.pointer' },
  VmbChannelSetTransactionQuota: { method: 'setTransactionQuota' },
  VmbChannelSizeofPacket: { notEmulated: 'packets are records, not caller memory' },
  VmbChannelStart: { method: 'start' },
  VmbClientChannelInitSetRingBufferPageCount: { method: 'clientInitSetRingBufferPageCount' },
  VmbClientChannelInitSetTargetPnp: { method: 'clientInitSetTargetPnp' },
  VmbPacketAllocate: { method: 'packetAllocate' },
  VmbPacketFree: { method: 'packetFree' },
  VmbPacketGetChannel: { packet: 'channel' },
  VmbPacketGetPointer: { packet: 'pointer' },
  VmbPacketInitialize: { notEmulated: 'packets are records, not caller memory' },
  VmbPacketSend: { method: 'packetSend' },
  VmbPacketSendWithExternalMdl: { notEmulated: 'external data is not modelled' },
  VmbPacketSendWithExternalPfns: { notEmulated: 'external data is not modelled' },
  VmbPacketSetCompletionRoutine: { method: 'packetSetCompletionRoutine' },
  VmbPacketSetPointer: { packet: 'pointer' },
  // server-only table (KMCL_SERVER_ONLY_METHODS)
  VmbChannelMapGpadl: { notEmulated: 'GPADLs are not modelled' },
  VmbChannelRestoreFromBuffer: { fn: 'channelRestoreFromBuffer', module: 'channel-save' },
  VmbChannelSaveBegin: { fn: 'channelSaveBegin', module: 'channel-save' },
  VmbChannelSaveContinue: { fn: 'channelSaveContinue', module: 'channel-save' },
  VmbChannelSaveEnd: { fn: 'channelSaveEnd', module: 'channel-save' },
  VmbChannelUnmapGpadl: { notEmulated: 'GPADLs are not modelled' },
  VmbConvertVmbusHandleToKernelHandle: { notEmulated: 'worker-process handles do not exist here' },
  VmbPacketRestore: { fn: 'packetRestore', module: 'channel-save' },
  VmbServerChannelInitSetFlags: { method: 'serverInitSetFlags' },
  VmbServerChannelInitSetMmioMegabytes: { method: 'serverInitSetMmioMegabytes' },
  VmbServerChannelInitSetSaveRestorePacketCallbacks: { method: 'serverInitSetSaveRestorePacketCallbacks' },
  VmbServerChannelInitSetTargetInterfaceId: { method: 'serverInitSetTargetInterfaceId' },
  VmbServerChannelInitSetTargetVtl: { method: 'serverInitSetTargetVtl' },
  VmbServerChannelInitSetVmbusHandle: { method: 'serverInitSetVmbusHandle' },
};
