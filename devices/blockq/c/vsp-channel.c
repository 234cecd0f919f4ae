/*
 * The blockq VSP's channels: the BQ_CHANNEL and its KMCL server channel (every Init*
 * call), offering and starting it, giving it up after a save or with a discarded VM,
 * rescinding it and offering its new instance, closing it, and the state-change
 * callbacks (among them the guest's close: ../PROTOCOL.md "Rescind and guest close").
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
	InitializeListHead(&vc->Abandoned);
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
	Vc->Unopened = TRUE; /* a fresh offer: until a guest opens it (Opened, or Started) */
	BqKmcl->VmbChannelStart(Vc->Channel);
	/* Sends again (a save stopped them); with no guest connected yet, no Started says so. */
	Vc->Suspended = FALSE;
	return STATUS_SUCCESS;
}

/*
 * `open` of a channel the host rescinded: its new instance, a new channel object offered
 * as the old one was (same instance GUID, loopback or the VM), with the command's ring
 * size. The BQ_CHANNEL stays, so the tx numbering goes on: no id of the old instance is
 * used on the new one (PROTOCOL.md "Rescind and guest close").
 */
static NTSTATUS BqChannelReoffer(BQ_CHANNEL *Vc, const struct bq_command *Cmd, HANDLE KernelHandle)
{
	NTSTATUS status;

	if (!Vc->Rescinded || Vc->Channel != NULL || Vc->Loopback != (BOOLEAN)Cmd->loopback ||
	    !RtlEqualMemory(&Vc->Instance, Cmd->instance, sizeof(GUID))) {
		if (KernelHandle != NULL)
			ZwClose(KernelHandle);
		return STATUS_INVALID_PARAMETER; /* a live channel, or another one's number */
	}
	if (KernelHandle != NULL) {
		if (Vc->VmbusHandle != NULL)
			ZwClose(Vc->VmbusHandle);
		Vc->VmbusHandle = KernelHandle;
	}
	Vc->RingPages = Cmd->ring_pages;
	status = BqChannelConfigure(Vc);
	if (!NT_SUCCESS(status))
		return status;
	status = BqChannelEnableAndStart(Vc);
	if (!NT_SUCCESS(status)) {
		/* Never offered: nothing to disable. Still rescinded, `open` may try again. */
		BqKmcl->VmbChannelCleanup(Vc->Channel);
		Vc->Channel = NULL;
		return status;
	}
	Vc->Rescinded = FALSE;
	return STATUS_SUCCESS;
}

/* The kernel handle (NULL for a loopback offer) is ours: kept by the channel or closed. */
NTSTATUS BqChannelOpen(BQ_DEVICE *Dev, const struct bq_command *Cmd, HANDLE KernelHandle)
{
	BQ_CHANNEL *vc = BqChannelFind(Dev, Cmd->ch);
	NTSTATUS status;

	if (vc != NULL)
		return BqChannelReoffer(vc, Cmd, KernelHandle); /* takes the handle */
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

/*
 * Our own VmbChannelDisable. The Closed callback it runs (on an open channel) is the
 * VSP's doing, not a guest's close: BqEvtChannelClosed tells the two apart by this.
 */
static VOID BqDisable(BQ_CHANNEL *Vc)
{
	Vc->Disabling = TRUE;
	BqKmcl->VmbChannelDisable(Vc->Channel);
	Vc->Disabling = FALSE;
}

/* Gives up the channel object: Disable (if offered) and Cleanup. */
static VOID BqChannelDrop(BQ_CHANNEL *Vc)
{
	if (!Vc->Unoffered)
		BqDisable(Vc);
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
	BqEndAbandoned(Vc, FALSE);
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
	/* Sends again; on a channel its guest closed, no Started runs to say so. */
	Vc->Suspended = FALSE;
	return STATUS_SUCCESS;
}

/*
 * Ends the Events a failed restore abandoned (their packets freed then): at a rescind
 * each is traced cancelled, as no object is left to cancel it; at a close or a new
 * restore (which brings them back from the same saved state) they go untraced.
 * Abandoned is touched only by control commands, which the sequential queue runs one
 * at a time.
 */
VOID BqEndAbandoned(BQ_CHANNEL *Vc, BOOLEAN Trace)
{
	while (!IsListEmpty(&Vc->Abandoned)) {
		BQ_TX *t = CONTAINING_RECORD(RemoveHeadList(&Vc->Abandoned), BQ_TX, Link);

		if (Trace && t->Event.type == BQ_MSG_EVENT) {
			BqTraceCancel(Vc, t->Event.tx, STATUS_CANCELLED);
			InterlockedIncrement64(&Vc->Counters.Cancelled);
		}
		ExFreePoolWithTag(t, BQ_POOL_TAG);
	}
}

/*
 * `rescind ch=N`: the host revokes this channel instance's offer (PROTOCOL.md "Rescind
 * and guest close"), and the VSP ends what it still owns. VmbChannelDisable suspends the
 * channel (Suspend answers every outstanding Request) and cancels every Event still
 * queued or awaiting its reply: the completion routine traces each as pkt.cancel with
 * the status it got (Retiring). A restored object never offered is disabled too: KMCL
 * cancels what the restore put back. Then the Events a failed restore left, traced
 * cancelled here, and VmbChannelCleanup: this object is done, and the instance's saved
 * state goes with it. The BQ_CHANNEL stays, with its tx numbering, for `open` to offer
 * the new instance.
 */
NTSTATUS BqChannelRescind(BQ_CHANNEL *Vc)
{
	if (Vc->Rescinded)
		return STATUS_INVALID_DEVICE_STATE; /* no instance offered to rescind */
	WdfSpinLockAcquire(Vc->Lock);
	Vc->Retiring = TRUE;
	WdfSpinLockRelease(Vc->Lock);
	if (Vc->Channel != NULL) {
		BqDisable(Vc);
		BqKmcl->VmbChannelCleanup(Vc->Channel);
		Vc->Channel = NULL;
		Vc->Unoffered = FALSE;
	}
	BqEndAbandoned(Vc, TRUE);
	if (Vc->SaveBlob != NULL) {
		ExFreePoolWithTag(Vc->SaveBlob, BQ_POOL_TAG);
		Vc->SaveBlob = NULL;
		Vc->SaveBlobSize = 0;
	}
	WdfSpinLockAcquire(Vc->Lock);
	Vc->Retiring = FALSE;
	WdfSpinLockRelease(Vc->Lock);
	Vc->Suspended = FALSE;
	Vc->Unopened = FALSE;
	Vc->Rescinded = TRUE;
	return STATUS_SUCCESS;
}

/* ---- State changes ------------------------------------------------------- */

static NTSTATUS BqEvtChannelOpened(VMBCHANNEL Channel)
{
	BQ_CHANNEL *vc = BqFromChannel(Channel);

	/* A new connection: what the guest's close retired is behind us. */
	WdfSpinLockAcquire(vc->Lock);
	vc->Retiring = FALSE;
	WdfSpinLockRelease(vc->Lock);
	vc->Unopened = FALSE;
	BqTraceState(vc, "Opened");
	return STATUS_SUCCESS;
}

static VOID BqEvtChannelStarted(VMBCHANNEL Channel)
{
	BQ_CHANNEL *vc = BqFromChannel(Channel);

	vc->Suspended = FALSE;
	vc->Unopened = FALSE; /* (a restored connection starts without Opened) */
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
	BQ_CHANNEL *vc = BqFromChannel(Channel);

	BqTraceState(vc, "Closed");
	if (vc->Disabling)
		return; /* our own Disable: it cancels what is outstanding itself */
	/*
	 * The guest closed the channel (PROTOCOL.md "Rescind and guest close"). The offer
	 * stays, so no Disable comes to cancel what is outstanding, and the guest will never
	 * reply to it: the VSP retires it. From here each Event KMCL hands back without a
	 * reply ends at the completion routine as cancelled (pkt.cancel), until the guest
	 * opens the channel again. How KMCL hands them back to a server is not documented
	 * [I]; the emulator's KMCL does it with the cancel status (Channel.retireOutstanding).
	 * Sends go on, waiting in KMCL (inferred queued) until the guest opens it again.
	 */
	WdfSpinLockAcquire(vc->Lock);
	vc->Retiring = TRUE;
	WdfSpinLockRelease(vc->Lock);
	vc->Suspended = FALSE;
	vc->Unopened = TRUE;
}
