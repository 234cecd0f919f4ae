/*
 * The blockq VSP's channels: the BQ_CHANNEL and its KMCL server channel (every Init*
 * call), offering and starting it, giving it up after a save or with a discarded VM,
 * closing it, and the state-change callbacks.
 */
#include "vsp.h"

static EVT_VMB_CHANNEL_OPENED BqEvtChannelOpened;
static EVT_VMB_CHANNEL_CLOSED BqEvtChannelClosed;
static EVT_VMB_CHANNEL_SUSPEND BqEvtChannelSuspend;
static EVT_VMB_CHANNEL_STARTED BqEvtChannelStarted;
static EVT_VMB_CHANNEL_POST_STARTED BqEvtChannelPostStarted;

BQ_CHANNEL *BqFromChannel(VMBCHANNEL Channel)
{
	return (BQ_CHANNEL *)BqKmcl->VmbChannelGetPointer(Channel);
}

BQ_CHANNEL *BqChannelFind(BQ_DEVICE *Dev, UINT32 Ch)
{
	PLIST_ENTRY e;

	for (e = Dev->Channels.Flink; e != &Dev->Channels; e = e->Flink) {
		BQ_CHANNEL *vc = CONTAINING_RECORD(e, BQ_CHANNEL, Link);

		if (vc->Ch == Ch)
			return vc;
	}
	return NULL;
}

/*
 * A BQ_CHANNEL with its lock and answer timer, linked into the device, without a
 * channel object yet: `open` configures and offers one, an import waits for `restore`.
 */
NTSTATUS BqChannelCreate(BQ_DEVICE *Dev, UINT32 Ch, const UCHAR Instance[16], UINT32 RingPages,
			 BQ_CHANNEL **Out)
{
	WDF_OBJECT_ATTRIBUTES attributes;
	WDF_TIMER_CONFIG timerConfig;
	BQ_CHANNEL *vc;
	NTSTATUS status;

	if (BqChannelFind(Dev, Ch) != NULL)
		return STATUS_INVALID_PARAMETER;
	vc = (BQ_CHANNEL *)ExAllocatePool2(POOL_FLAG_NON_PAGED, sizeof(*vc), BQ_POOL_TAG);
	if (vc == NULL)
		return STATUS_INSUFFICIENT_RESOURCES;
	/* Zeroed by ExAllocatePool2: every handle starts NULL. */
	vc->Device = Dev;
	vc->Ch = Ch;
	RtlCopyMemory(&vc->Instance, Instance, sizeof(GUID));
	vc->RingPages = RingPages;
	InitializeListHead(&vc->Outstanding);
	InitializeListHead(&vc->Deferred);
	InitializeListHead(&vc->InFlight);
	WDF_OBJECT_ATTRIBUTES_INIT(&attributes);
	attributes.ParentObject = Dev->Device;
	status = WdfSpinLockCreate(&attributes, &vc->Lock);
	if (NT_SUCCESS(status)) {
		WDF_TIMER_CONFIG_INIT(&timerConfig, BqEvtAnswerTimer);
		WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attributes, BQ_TIMER_CONTEXT);
		attributes.ParentObject = Dev->Device;
		status = WdfTimerCreate(&timerConfig, &attributes, &vc->AnswerTimer);
	}
	if (!NT_SUCCESS(status)) {
		if (vc->Lock != NULL)
			WdfObjectDelete(vc->Lock);
		ExFreePoolWithTag(vc, BQ_POOL_TAG);
		return status;
	}
	BqGetTimerContext(vc->AnswerTimer)->Vc = vc;
	InsertTailList(&Dev->Channels, &vc->Link);
	*Out = vc;
	return STATUS_SUCCESS;
}

/*
 * Allocates the KMCL channel object and makes every Init* call: for the first offer
 * and again before a restore, which must configure the new object like the saved one.
 */
NTSTATUS BqChannelConfigure(BQ_CHANNEL *Vc)
{
	PKMCL_SERVER_INTERFACE_V1 kmcl = BqKmcl;
	VMB_CHANNEL_STATE_CHANGE_CALLBACKS callbacks;
	GUID type = BQ_APPLY(BQ_GUID_INIT, BQ_INTERFACE_TYPE_GUID_FIELDS);
	VMBCHANNEL channel = NULL;
	NTSTATUS status;

	status = kmcl->VmbChannelAllocate(WdfDeviceWdmGetDeviceObject(Vc->Device->Device), TRUE,
					  &channel);
	if (!NT_SUCCESS(status))
		return status;
	status = kmcl->VmbServerChannelInitSetTargetInterfaceId(channel, type, Vc->Instance);
	/* Which VM: a loopback offer's client end is in the host, else the handle's VM. */
	if (NT_SUCCESS(status))
		status = Vc->Loopback ?
			 kmcl->VmbServerChannelInitSetFlags(
				 channel, VMBUS_SERVER_CHANNEL_INIT_FLAG_LOOPBACK_OFFER) :
			 kmcl->VmbServerChannelInitSetVmbusHandle(channel, Vc->VmbusHandle);
	if (NT_SUCCESS(status))
		status = kmcl->VmbChannelInitSetMaximumPacketSize(channel, BQ_MAX_MESSAGE_SIZE);
	if (NT_SUCCESS(status))
		status = kmcl->VmbChannelInitSetProcessPacketCallbacks(channel, BqEvtProcessPacket,
								       NULL);
	if (NT_SUCCESS(status)) {
		VMB_CHANNEL_STATE_CHANGE_CALLBACKS_INIT(&callbacks);
		callbacks.EvtChannelOpened = BqEvtChannelOpened;
		callbacks.EvtChannelClosed = BqEvtChannelClosed;
		callbacks.EvtChannelSuspend = BqEvtChannelSuspend;
		callbacks.EvtChannelStarted = BqEvtChannelStarted;
		callbacks.EvtChannelPostStarted = BqEvtChannelPostStarted;
		status = kmcl->VmbChannelInitSetStateChangeCallbacks(channel, &callbacks);
	}
	if (NT_SUCCESS(status))
		status = kmcl->VmbServerChannelInitSetSaveRestorePacketCallbacks(
			channel, BqEvtSavePacket, BqEvtRestorePacket);
	if (!NT_SUCCESS(status)) {
		kmcl->VmbChannelCleanup(channel);
		return status;
	}
	/* Before Enable, so no callback sees the channel without its context. */
	kmcl->VmbChannelSetPointer(channel, Vc);
	Vc->Channel = channel;
	return STATUS_SUCCESS;
}

/* Offers the channel (Enable) and starts its flow: a server must start itself. */
static NTSTATUS BqChannelEnableAndStart(BQ_CHANNEL *Vc)
{
	NTSTATUS status = BqKmcl->VmbChannelEnable(Vc->Channel);

	if (!NT_SUCCESS(status))
		return status;
	Vc->Unoffered = FALSE;
	BqTraceState(Vc, "Enabled");
	BqKmcl->VmbChannelStart(Vc->Channel);
	return STATUS_SUCCESS;
}

/* The kernel handle (NULL for a loopback offer) is ours: kept by the channel or closed. */
NTSTATUS BqChannelOpen(BQ_DEVICE *Dev, const struct bq_command *Cmd, HANDLE KernelHandle)
{
	BQ_CHANNEL *vc;
	NTSTATUS status;

	status = BqChannelCreate(Dev, Cmd->ch, Cmd->instance, Cmd->ring_pages, &vc);
	if (!NT_SUCCESS(status)) {
		if (KernelHandle != NULL)
			ZwClose(KernelHandle);
		return status;
	}
	vc->Loopback = (BOOLEAN)Cmd->loopback;
	vc->VmbusHandle = KernelHandle;
	status = BqChannelConfigure(vc);
	if (NT_SUCCESS(status))
		status = BqChannelEnableAndStart(vc);
	if (!NT_SUCCESS(status))
		BqChannelClose(vc); /* unlinks and frees it, and closes the handle */
	return status;
}

/* Gives up the channel object: Disable (if offered) and Cleanup. */
static VOID BqChannelDrop(BQ_CHANNEL *Vc)
{
	if (!Vc->Unoffered)
		BqKmcl->VmbChannelDisable(Vc->Channel);
	BqKmcl->VmbChannelCleanup(Vc->Channel);
	Vc->Channel = NULL;
	Vc->Unoffered = FALSE;
}

/*
 * Disables (Suspend answers what is outstanding; KMCL completes every h2g packet as
 * cancelled, so BqEvtPacketCompletion frees each BQ_TX), cleans up and frees.
 */
VOID BqChannelClose(BQ_CHANNEL *Vc)
{
	if (Vc->Channel != NULL)
		BqChannelDrop(Vc);
	WdfTimerStop(Vc->AnswerTimer, TRUE);
	WdfObjectDelete(Vc->AnswerTimer);
	WdfObjectDelete(Vc->Lock);
	RemoveEntryList(&Vc->Link);
	if (Vc->SaveBlob != NULL)
		ExFreePoolWithTag(Vc->SaveBlob, BQ_POOL_TAG);
	if (Vc->VmbusHandle != NULL)
		ZwClose(Vc->VmbusHandle);
	while (!IsListEmpty(&Vc->Deferred))
		ExFreePoolWithTag(CONTAINING_RECORD(RemoveHeadList(&Vc->Deferred), BQ_DEFERRED, Link),
				  BQ_POOL_TAG);
	ExFreePoolWithTag(Vc, BQ_POOL_TAG);
}

/*
 * `detach` (after a save: the packets cancelled now live on in the saved state, so
 * none of it is news) or `discard` (the VM is gone unsaved: nothing of it is traced,
 * the requests still outstanding are completed to nobody). The saved state stays.
 */
NTSTATUS BqChannelGiveUp(BQ_CHANNEL *Vc, BOOLEAN Discard)
{
	if (!Discard && Vc->SaveBlob == NULL)
		return STATUS_INVALID_DEVICE_STATE; /* nothing to come back to */
	if (Vc->Channel == NULL)
		return STATUS_SUCCESS;
	WdfSpinLockAcquire(Vc->Lock);
	Vc->Abandoning = TRUE;
	Vc->Discarding = Discard;
	WdfSpinLockRelease(Vc->Lock);
	BqChannelDrop(Vc);
	WdfSpinLockAcquire(Vc->Lock);
	Vc->Abandoning = FALSE;
	Vc->Discarding = FALSE;
	WdfSpinLockRelease(Vc->Lock);
	return STATUS_SUCCESS;
}

/* `resume ch=N`: a restored object is offered and started; a paused one started again. */
NTSTATUS BqChannelResume(BQ_CHANNEL *Vc)
{
	if (Vc->Channel == NULL)
		return STATUS_INVALID_DEVICE_STATE;
	if (Vc->Unoffered)
		return BqChannelEnableAndStart(Vc);
	BqKmcl->VmbChannelStart(Vc->Channel);
	return STATUS_SUCCESS;
}

/* ---- State changes ------------------------------------------------------- */

static NTSTATUS BqEvtChannelOpened(VMBCHANNEL Channel)
{
	BqTraceState(BqFromChannel(Channel), "Opened");
	return STATUS_SUCCESS;
}

static VOID BqEvtChannelStarted(VMBCHANNEL Channel)
{
	BQ_CHANNEL *vc = BqFromChannel(Channel);

	vc->Suspended = FALSE;
	BqTraceState(vc, "Started");
}

static VOID BqEvtChannelPostStarted(VMBCHANNEL Channel)
{
	BqTraceState(BqFromChannel(Channel), "Active");
}

/*
 * KMCL does not finish suspending while the VSP holds incoming packets: answer every
 * outstanding Request now, soonest due first. No sends until Started again.
 */
static VOID BqEvtChannelSuspend(VMBCHANNEL Channel)
{
	BQ_CHANNEL *vc = BqFromChannel(Channel);

	vc->Suspended = TRUE;
	BqTraceState(vc, "Paused");
	BqAnswerAll(vc);
}

static VOID BqEvtChannelClosed(VMBCHANNEL Channel)
{
	BqTraceState(BqFromChannel(Channel), "Closed");
}
