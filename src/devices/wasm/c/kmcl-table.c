/*
 * The KMCL interface tables for drivers compiled to wasm32. WdfFdoQueryForInterface
 * fills the driver's KMCL_CLIENT_INTERFACE_V1 or KMCL_SERVER_INTERFACE_V1 with pointers
 * to the kernel shim's functions (src/devices/wasm/kmcl-shim.ts), imported here under
 * the table's own typedefs, so every entry has exactly the header's type. A driver
 * calls them through its table like it calls vmbkmcl.sys.
 *
 * The interface type GUIDs and versions are not public (see the stand-in header): the
 * values below are the emulator's own, chosen here, and mean nothing on Windows.
 */
#include <wdf.h>
#include <vmbuskernelmodeclientlibapi.h>

#define KMCL(name) __attribute__((import_module("kmcl"), import_name(#name)))
#define ENTRY(type, name) KMCL(name) type shim_##name;

ENTRY(FN_VMB_CHANNEL_ALLOCATE, VmbChannelAllocate)
ENTRY(FN_VMB_CHANNEL_CLEANUP, VmbChannelCleanup)
ENTRY(FN_VMB_CHANNEL_CREATE_GPADL_FROM_BUFFER, VmbChannelCreateGpadlFromBuffer)
ENTRY(FN_VMB_CHANNEL_CREATE_GPADL_FROM_MDL, VmbChannelCreateGpadlFromMdl)
ENTRY(FN_VMB_CHANNEL_DELETE_GPADL, VmbChannelDeleteGpadl)
ENTRY(FN_VMB_CHANNEL_DISABLE, VmbChannelDisable)
ENTRY(FN_VMB_CHANNEL_ENABLE, VmbChannelEnable)
ENTRY(FN_VMB_CHANNEL_GET_INTERFACE_INSTANCE, VmbChannelGetInterfaceInstance)
ENTRY(FN_VMB_CHANNEL_GET_MMIO_SPACE, VmbChannelGetMmioSpace)
ENTRY(FN_VMB_CHANNEL_GET_POINTER, VmbChannelGetPointer)
ENTRY(FN_VMB_CHANNEL_INIT_SET_CLIENT_CONTEXT_SIZE, VmbChannelInitSetClientContextSize)
ENTRY(FN_VMB_CHANNEL_INIT_SET_FLAGS, VmbChannelInitSetFlags)
ENTRY(FN_VMB_CHANNEL_INIT_SET_FRIENDLY_NAME, VmbChannelInitSetFriendlyName)
ENTRY(FN_VMB_CHANNEL_INIT_SET_MAXIMUM_EXTERNAL_DATA, VmbChannelInitSetMaximumExternalData)
ENTRY(FN_VMB_CHANNEL_INIT_SET_MAXIMUM_PACKET_SIZE, VmbChannelInitSetMaximumPacketSize)
ENTRY(FN_VMB_CHANNEL_INIT_SET_PROCESS_PACKET_CALLBACKS, VmbChannelInitSetProcessPacketCallbacks)
ENTRY(FN_VMB_CHANNEL_INIT_SET_STATE_CHANGE_CALLBACKS, VmbChannelInitSetStateChangeCallbacks)
ENTRY(FN_VMB_CHANNEL_PACKET_COMPLETE, VmbChannelPacketComplete)
ENTRY(FN_VMB_CHANNEL_PACKET_DEFER_TO_PASSIVE, VmbChannelPacketDeferToPassive)
ENTRY(FN_VMB_CHANNEL_PACKET_FAIL, VmbChannelPacketFail)
ENTRY(FN_VMB_CHANNEL_PACKET_GET_EXTERNAL_DATA, VmbChannelPacketGetExternalData)
ENTRY(FN_VMB_CHANNEL_PAUSE, VmbChannelPause)
ENTRY(FN_VMB_CHANNEL_SEND_SYNCHRONOUS_REQUEST, VmbChannelSendSynchronousRequest)
ENTRY(FN_VMB_CHANNEL_SET_INCOMING_PROCESSING_AT_PASSIVE, VmbChannelSetIncomingProcessingAtPassive)
ENTRY(FN_VMB_CHANNEL_SET_INTERRUPT_LATENCY, VmbChannelSetInterruptLatency)
ENTRY(FN_VMB_CHANNEL_SET_POINTER, VmbChannelSetPointer)
ENTRY(FN_VMB_CHANNEL_SET_TRANSACTION_QUOTA, VmbChannelSetTransactionQuota)
ENTRY(FN_VMB_CHANNEL_SIZEOF_PACKET, VmbChannelSizeofPacket)
ENTRY(FN_VMB_CHANNEL_START, VmbChannelStart)
ENTRY(FN_VMB_CLIENT_CHANNEL_INIT_SET_RING_BUFFER_PAGE_COUNT, VmbClientChannelInitSetRingBufferPageCount)
ENTRY(FN_VMB_CLIENT_CHANNEL_INIT_SET_TARGET_PNP, VmbClientChannelInitSetTargetPnp)
ENTRY(FN_VMB_PACKET_ALLOCATE, VmbPacketAllocate)
ENTRY(FN_VMB_PACKET_FREE, VmbPacketFree)
ENTRY(FN_VMB_PACKET_GET_CHANNEL, VmbPacketGetChannel)
ENTRY(FN_VMB_PACKET_GET_POINTER, VmbPacketGetPointer)
ENTRY(FN_VMB_PACKET_INITIALIZE, VmbPacketInitialize)
ENTRY(FN_VMB_PACKET_SEND, VmbPacketSend)
ENTRY(FN_VMB_PACKET_SEND_WITH_EXTERNAL_MDL, VmbPacketSendWithExternalMdl)
ENTRY(FN_VMB_PACKET_SEND_WITH_EXTERNAL_PFNS, VmbPacketSendWithExternalPfns)
ENTRY(FN_VMB_PACKET_SET_COMPLETION_ROUTINE, VmbPacketSetCompletionRoutine)
ENTRY(FN_VMB_PACKET_SET_POINTER, VmbPacketSetPointer)
ENTRY(FN_VMB_CHANNEL_MAP_GPADL, VmbChannelMapGpadl)
ENTRY(FN_VMB_CHANNEL_RESTORE_FROM_BUFFER, VmbChannelRestoreFromBuffer)
ENTRY(FN_VMB_CHANNEL_SAVE_BEGIN, VmbChannelSaveBegin)
ENTRY(FN_VMB_CHANNEL_SAVE_CONTINUE, VmbChannelSaveContinue)
ENTRY(FN_VMB_CHANNEL_SAVE_END, VmbChannelSaveEnd)
ENTRY(FN_VMB_CHANNEL_UNMAP_GPADL, VmbChannelUnmapGpadl)
ENTRY(FN_VMB_CONVERT_VMBUS_HANDLE_TO_KERNEL_HANDLE, VmbConvertVmbusHandleToKernelHandle)
ENTRY(FN_VMB_PACKET_RESTORE, VmbPacketRestore)
ENTRY(FN_VMB_SERVER_CHANNEL_INIT_SET_FLAGS, VmbServerChannelInitSetFlags)
ENTRY(FN_VMB_SERVER_CHANNEL_INIT_SET_MMIO_MEGABYTES, VmbServerChannelInitSetMmioMegabytes)
ENTRY(FN_VMB_SERVER_CHANNEL_INIT_SET_SAVE_RESTORE_PACKET_CALLBACKS, VmbServerChannelInitSetSaveRestorePacketCallbacks)
ENTRY(FN_VMB_SERVER_CHANNEL_INIT_SET_TARGET_INTERFACE_ID, VmbServerChannelInitSetTargetInterfaceId)
ENTRY(FN_VMB_SERVER_CHANNEL_INIT_SET_TARGET_VTL, VmbServerChannelInitSetTargetVtl)
ENTRY(FN_VMB_SERVER_CHANNEL_INIT_SET_VMBUS_HANDLE, VmbServerChannelInitSetVmbusHandle)
KMCL(InterfaceReference) VOID shim_InterfaceReference(PVOID Context);
KMCL(InterfaceDereference) VOID shim_InterfaceDereference(PVOID Context);
KMCL(QueryInterface) NTSTATUS shim_QueryInterface(WDFDEVICE Fdo, UINT32 IsServer, USHORT Size,
						  USHORT Version);

const GUID KMCL_CLIENT_INTERFACE_TYPE = { 0x00000001, 0, 0, { 'e', 'm', 'u', 'l', 'a', 't', 'o', 'r' } };
const GUID KMCL_SERVER_INTERFACE_TYPE = { 0x00000002, 0, 0, { 'e', 'm', 'u', 'l', 'a', 't', 'o', 'r' } };
const USHORT KMCL_CLIENT_INTERFACE_VERSION_V1 = 1;
const USHORT KMCL_SERVER_INTERFACE_VERSION_V1 = 1;

#define FILL(t, name) (t)->name = shim_##name

static VOID FillClient(PKMCL_CLIENT_INTERFACE_V1 t)
{
	FILL(t, VmbChannelAllocate); FILL(t, VmbChannelCleanup);
	FILL(t, VmbChannelCreateGpadlFromBuffer); FILL(t, VmbChannelCreateGpadlFromMdl);
	FILL(t, VmbChannelDeleteGpadl); FILL(t, VmbChannelDisable); FILL(t, VmbChannelEnable);
	FILL(t, VmbChannelGetInterfaceInstance); FILL(t, VmbChannelGetMmioSpace);
	FILL(t, VmbChannelGetPointer); FILL(t, VmbChannelInitSetClientContextSize);
	FILL(t, VmbChannelInitSetFlags); FILL(t, VmbChannelInitSetFriendlyName);
	FILL(t, VmbChannelInitSetMaximumExternalData); FILL(t, VmbChannelInitSetMaximumPacketSize);
	FILL(t, VmbChannelInitSetProcessPacketCallbacks);
	FILL(t, VmbChannelInitSetStateChangeCallbacks); FILL(t, VmbChannelPacketComplete);
	FILL(t, VmbChannelPacketDeferToPassive); FILL(t, VmbChannelPacketFail);
	FILL(t, VmbChannelPacketGetExternalData); FILL(t, VmbChannelPause);
	FILL(t, VmbChannelSendSynchronousRequest); FILL(t, VmbChannelSetIncomingProcessingAtPassive);
	FILL(t, VmbChannelSetInterruptLatency); FILL(t, VmbChannelSetPointer);
	FILL(t, VmbChannelSetTransactionQuota); FILL(t, VmbChannelSizeofPacket);
	FILL(t, VmbChannelStart); FILL(t, VmbClientChannelInitSetRingBufferPageCount);
	FILL(t, VmbClientChannelInitSetTargetPnp); FILL(t, VmbPacketAllocate);
	FILL(t, VmbPacketFree); FILL(t, VmbPacketGetChannel); FILL(t, VmbPacketGetPointer);
	FILL(t, VmbPacketInitialize); FILL(t, VmbPacketSend); FILL(t, VmbPacketSendWithExternalMdl);
	FILL(t, VmbPacketSendWithExternalPfns); FILL(t, VmbPacketSetCompletionRoutine);
	FILL(t, VmbPacketSetPointer);
}

static VOID FillServerOnly(PKMCL_SERVER_ONLY_METHODS t)
{
	FILL(t, VmbChannelMapGpadl); FILL(t, VmbChannelRestoreFromBuffer);
	FILL(t, VmbChannelSaveBegin); FILL(t, VmbChannelSaveContinue); FILL(t, VmbChannelSaveEnd);
	FILL(t, VmbChannelUnmapGpadl); FILL(t, VmbConvertVmbusHandleToKernelHandle);
	FILL(t, VmbPacketRestore); FILL(t, VmbServerChannelInitSetFlags);
	FILL(t, VmbServerChannelInitSetMmioMegabytes);
	FILL(t, VmbServerChannelInitSetSaveRestorePacketCallbacks);
	FILL(t, VmbServerChannelInitSetTargetInterfaceId); FILL(t, VmbServerChannelInitSetTargetVtl);
	FILL(t, VmbServerChannelInitSetVmbusHandle);
}

NTSTATUS WdfFdoQueryForInterface(WDFDEVICE Fdo, LPCGUID InterfaceType, PINTERFACE Interface,
				 USHORT Size, USHORT Version, PVOID InterfaceSpecificData)
{
	UINT32 server;
	NTSTATUS status;

	UNREFERENCED_PARAMETER(InterfaceSpecificData);
	if (RtlEqualMemory(InterfaceType, &KMCL_SERVER_INTERFACE_TYPE, sizeof(GUID)))
		server = 1;
	else if (RtlEqualMemory(InterfaceType, &KMCL_CLIENT_INTERFACE_TYPE, sizeof(GUID)))
		server = 0;
	else
		return STATUS_NOT_SUPPORTED;
	if (Size < (server ? sizeof(KMCL_SERVER_INTERFACE_V1) : sizeof(KMCL_CLIENT_INTERFACE_V1)))
		return STATUS_BUFFER_TOO_SMALL;
	status = shim_QueryInterface(Fdo, server, Size, Version);
	if (!NT_SUCCESS(status))
		return status;
	Interface->Size = Size;
	Interface->Version = Version;
	Interface->Context = Fdo;
	Interface->InterfaceReference = shim_InterfaceReference;
	Interface->InterfaceDereference = shim_InterfaceDereference;
	FillClient((PKMCL_CLIENT_INTERFACE_V1)Interface);
	if (server)
		FillServerOnly((PKMCL_SERVER_ONLY_METHODS)((PUCHAR)Interface +
							    sizeof(KMCL_CLIENT_INTERFACE_V1)));
	return STATUS_SUCCESS;
}
