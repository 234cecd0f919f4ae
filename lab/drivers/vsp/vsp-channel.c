/*
 * The VSP's channels: creating and configuring the KMCL server channel, the
 * state-change callbacks, and the guest's incoming packets.
 *
 * Incoming Requests are completed according to their completion mode
 * (PROTOCOL.md): inline in EvtVmbChannelProcessPacket, after one
 * VmbChannelPacketDeferToPassive, or after a hold kept on VSP_CHANNEL.Held and
 * served by a periodic timer. EvtVmbChannelSuspend completes every held packet at
 * once, because KMCL does not finish suspending (pause, disable, guest close)
 * until every incoming packet handed to the VSP has been completed.
 */
#include "vsp.h"

static EVT_VMB_CHANNEL_PROCESS_PACKET VspEvtProcessPacket;
static EVT_VMB_CHANNEL_OPENED VspEvtChannelOpened;
static EVT_VMB_CHANNEL_CLOSED VspEvtChannelClosed;
static EVT_VMB_CHANNEL_SUSPEND VspEvtChannelSuspend;
static EVT_VMB_CHANNEL_STARTED VspEvtChannelStarted;
static EVT_VMB_CHANNEL_POST_STARTED VspEvtChannelPostStarted;
static EVT_WDF_TIMER VspEvtHoldTimer;

static VSP_CHANNEL *VspFromChannel(VMBCHANNEL Channel)
{
	return (VSP_CHANNEL *)VspKmcl->VmbChannelGetPointer(Channel);
}

VSP_CHANNEL *VspChannelFind(VSP_DEVICE *Dev, UINT32 Ch)
{
	PLIST_ENTRY e;

	for (e = Dev->Channels.Flink; e != &Dev->Channels; e = e->Flink) {
		VSP_CHANNEL *vc = CONTAINING_RECORD(e, VSP_CHANNEL, Link);

		if (vc->Ch == Ch)
			return vc;
	}
	return NULL;
}

/*
 * Allocates the KMCL channel object and makes every Init* call. Used for the
 * first offer and again by VspChannelRestore, which must configure the new
 * object exactly like the saved one before RestoreFromBuffer.
 */
NTSTATUS VspChannelConfigure(VSP_CHANNEL *Vc)
{
	PKMCL_SERVER_INTERFACE_V1 kmcl = VspKmcl;
	VMB_CHANNEL_STATE_CHANGE_CALLBACKS callbacks;
	GUID type = SP_APPLY(VSP_GUID_INIT, SP_INTERFACE_TYPE_GUID_FIELDS);
	VMBCHANNEL channel = NULL;
	NTSTATUS status;

	status = kmcl->VmbChannelAllocate(WdfDeviceWdmGetDeviceObject(Vc->Device->Device),
					  TRUE, &channel);
	if (!NT_SUCCESS(status))
		return status;

	status = kmcl->VmbServerChannelInitSetTargetInterfaceId(channel, type, Vc->Instance);
	if (NT_SUCCESS(status)) {
		/*
		 * Which VM: a handle from that VM's worker process, or a loopback
		 * offer whose client end is in the host too (README: the VMBus
		 * handle). Loopback needs no handle at all.
		 */
		if (Vc->Loopback)
			status = kmcl->VmbServerChannelInitSetFlags(
				channel, VMBUS_SERVER_CHANNEL_INIT_FLAG_LOOPBACK_OFFER);
		else
			status = kmcl->VmbServerChannelInitSetVmbusHandle(channel, Vc->VmbusHandle);
	}
	if (NT_SUCCESS(status))
		status = kmcl->VmbChannelInitSetMaximumPacketSize(channel, SP_MAX_MESSAGE_SIZE);
	if (NT_SUCCESS(status))
		status = kmcl->VmbChannelInitSetProcessPacketCallbacks(channel, VspEvtProcessPacket,
								       NULL);
	if (NT_SUCCESS(status)) {
		VMB_CHANNEL_STATE_CHANGE_CALLBACKS_INIT(&callbacks);
		callbacks.EvtChannelOpened = VspEvtChannelOpened;
		callbacks.EvtChannelClosed = VspEvtChannelClosed;
		callbacks.EvtChannelSuspend = VspEvtChannelSuspend;
		callbacks.EvtChannelStarted = VspEvtChannelStarted;
		callbacks.EvtChannelPostStarted = VspEvtChannelPostStarted;
		status = kmcl->VmbChannelInitSetStateChangeCallbacks(channel, &callbacks);
	}
	if (NT_SUCCESS(status))
		status = kmcl->VmbServerChannelInitSetSaveRestorePacketCallbacks(
			channel, VspEvtSavePacket, VspEvtRestorePacket);
	if (!NT_SUCCESS(status)) {
		kmcl->VmbChannelCleanup(channel);
		return status;
	}
	/* Before Enable, so no callback can see the channel without its context. */
	kmcl->VmbChannelSetPointer(channel, Vc);
	Vc->Channel = channel;
	return STATUS_SUCCESS;
}

/* Offers the channel (Enable) and starts its flow (Start): a server must start itself. */
static NTSTATUS VspChannelEnableAndStart(VSP_CHANNEL *Vc)
{
	NTSTATUS status;

	status = VspKmcl->VmbChannelEnable(Vc->Channel);
	if (!NT_SUCCESS(status))
		return status;
	VspTraceState(Vc, "Enabled");
	VspKmcl->VmbChannelStart(Vc->Channel);
	return STATUS_SUCCESS;
}

NTSTATUS VspChannelOpen(VSP_DEVICE *Dev, const struct sample_command *Cmd,
			HANDLE KernelHandle)
{
	WDF_OBJECT_ATTRIBUTES attributes;
	WDF_TIMER_CONFIG timerConfig;
	VSP_CHANNEL *vc;
	NTSTATUS status;

	/* The kernel handle is ours from here on: closed with the channel or on failure. */
	vc = VspChannelFind(Dev, Cmd->ch) == NULL ?
	     (VSP_CHANNEL *)ExAllocatePool2(POOL_FLAG_NON_PAGED, sizeof(*vc), VSP_POOL_TAG) :
	     NULL;
	if (vc == NULL) {
		if (KernelHandle != NULL)
			ZwClose(KernelHandle);
		return VspChannelFind(Dev, Cmd->ch) != NULL ? STATUS_INVALID_PARAMETER :
							      STATUS_INSUFFICIENT_RESOURCES;
	}
	/* ExAllocatePool2 zeroes the allocation: every handle below starts NULL. */
	vc->Device = Dev;
	vc->Ch = Cmd->ch;
	RtlCopyMemory(&vc->Instance, Cmd->instance, sizeof(GUID));
	vc->Loopback = (BOOLEAN)Cmd->loopback;
	vc->VmbusHandle = KernelHandle;
	vc->RingPages = Cmd->ring_pages;
	InitializeListHead(&vc->Held);
	InitializeListHead(&vc->Deferred);
	InitializeListHead(&vc->InFlight);

	WDF_OBJECT_ATTRIBUTES_INIT(&attributes);
	attributes.ParentObject = Dev->Device;
	status = WdfSpinLockCreate(&attributes, &vc->Lock);
	if (NT_SUCCESS(status)) {
		WDF_TIMER_CONFIG_INIT_PERIODIC(&timerConfig, VspEvtHoldTimer, VSP_HOLD_TICK_MS);
		WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attributes, VSP_TIMER_CONTEXT);
		attributes.ParentObject = Dev->Device;
		status = WdfTimerCreate(&timerConfig, &attributes, &vc->HoldTimer);
	}
	if (NT_SUCCESS(status)) {
		VspGetTimerContext(vc->HoldTimer)->Vc = vc;
		status = VspChannelConfigure(vc);
	}
	if (NT_SUCCESS(status)) {
		InsertTailList(&Dev->Channels, &vc->Link);
		WdfTimerStart(vc->HoldTimer, WDF_REL_TIMEOUT_IN_MS(VSP_HOLD_TICK_MS));
		status = VspChannelEnableAndStart(vc);
		if (!NT_SUCCESS(status))
			VspChannelClose(vc); /* also unlinks and frees it */
		return status;
	}
	if (vc->HoldTimer != NULL)
		WdfObjectDelete(vc->HoldTimer);
	if (vc->Lock != NULL)
		WdfObjectDelete(vc->Lock);
	if (KernelHandle != NULL)
		ZwClose(KernelHandle);
	ExFreePoolWithTag(vc, VSP_POOL_TAG);
	return status;
}

/*
 * Disables (revokes the offer; blocks until closed), cleans up and frees.
 * Assumed, not documented (SPEC-NOTES 2.4, 4.2 [gap]): KMCL completes every
 * outstanding VMBPACKET, as cancelled, before VmbChannelDisable returns, so
 * VspEvtPacketCompletion has freed every VSP_TX by the time Vc goes away. KMCL
 * V1 has no call to cancel a sent packet, so there is nothing else to do here.
 */
VOID VspChannelClose(VSP_CHANNEL *Vc)
{
	if (Vc->Channel != NULL) {
		VspKmcl->VmbChannelDisable(Vc->Channel);
		VspTraceState(Vc, "Disabled");
		VspKmcl->VmbChannelCleanup(Vc->Channel);
		Vc->Channel = NULL;
	}
	WdfTimerStop(Vc->HoldTimer, TRUE);
	WdfObjectDelete(Vc->HoldTimer);
	WdfObjectDelete(Vc->Lock);
	RemoveEntryList(&Vc->Link);
	if (Vc->VmbusHandle != NULL)
		ZwClose(Vc->VmbusHandle);
	if (Vc->SaveBlob != NULL)
		ExFreePoolWithTag(Vc->SaveBlob, VSP_POOL_TAG);
	while (!IsListEmpty(&Vc->Deferred))
		ExFreePoolWithTag(CONTAINING_RECORD(RemoveHeadList(&Vc->Deferred),
						    VSP_DEFERRED, Link), VSP_POOL_TAG);
	ExFreePoolWithTag(Vc, VSP_POOL_TAG);
}

/* ---- State changes ------------------------------------------------------- */

static NTSTATUS VspEvtChannelOpened(VMBCHANNEL Channel)
{
	VspTraceState(VspFromChannel(Channel), "Opened");
	return STATUS_SUCCESS;
}

static VOID VspEvtChannelStarted(VMBCHANNEL Channel)
{
	/* Sends may be queued here but not waited on: the incoming queue is off. */
	VspTraceState(VspFromChannel(Channel), "Started");
}

static VOID VspEvtChannelPostStarted(VMBCHANNEL Channel)
{
	VspTraceState(VspFromChannel(Channel), "Active");
}

static VOID VspEvtChannelSuspend(VMBCHANNEL Channel)
{
	VSP_CHANNEL *vc = VspFromChannel(Channel);

	VspTraceState(vc, "Paused");
	/* KMCL waits for every incoming packet we still hold: give them back now. */
	VspChannelReleaseHeld(vc);
}

static VOID VspEvtChannelClosed(VMBCHANNEL Channel)
{
	/* No GPADLs to tear down: the protocol carries everything in-band. */
	VspTraceState(VspFromChannel(Channel), "Closed");
}

/* ---- Incoming packets ---------------------------------------------------- */

static VOID VspComplete(VSP_CHANNEL *Vc, VMBPACKETCOMPLETION Packet, ULONGLONG Tx,
			UCHAR Completion[SP_COMPLETION_SIZE])
{
	struct sp_trace_event ev;
	struct sp_completion c;

	VspKmcl->VmbChannelPacketComplete(Packet, Completion, SP_COMPLETION_SIZE);
	sp_decode_completion(Completion, SP_COMPLETION_SIZE, &c);
	RtlZeroMemory(&ev, sizeof(ev));
	ev.kind = SP_EV_PKT_COMPLETE;
	ev.ch = Vc->Ch;
	ev.tx = Tx;
	ev.dir = SP_DIR_G2H;
	ev.status = c.status;
	ev.len = SP_COMPLETION_SIZE;
	ev.digest = sp_fnv1a64(Completion, SP_COMPLETION_SIZE);
	VspTrace(&ev);
	InterlockedIncrement64(&Vc->Counters.RequestsCompleted);
}

/* Completes every held request whose time has come (or all of them). */
static VOID VspCompleteHeld(VSP_CHANNEL *Vc, BOOLEAN All)
{
	ULONGLONG now = KeQueryInterruptTime();
	LIST_ENTRY due;
	PLIST_ENTRY e, next;

	InitializeListHead(&due);
	WdfSpinLockAcquire(Vc->Lock);
	for (e = Vc->Held.Flink; e != &Vc->Held; e = next) {
		VSP_HELD_REQUEST *h = CONTAINING_RECORD(e, VSP_HELD_REQUEST, Link);

		next = e->Flink;
		if (All || h->DueTime <= now) {
			RemoveEntryList(e);
			InsertTailList(&due, e);
		}
	}
	WdfSpinLockRelease(Vc->Lock);
	/* Completed outside the lock: each entry was taken exactly once above. */
	while (!IsListEmpty(&due)) {
		VSP_HELD_REQUEST *h = CONTAINING_RECORD(RemoveHeadList(&due),
							VSP_HELD_REQUEST, Link);

		VspComplete(Vc, h->Packet, h->Tx, h->Completion);
		InterlockedExchangeAdd64(&Vc->Counters.HeldNow, -1);
		ExFreePoolWithTag(h, VSP_POOL_TAG);
	}
}

VOID VspChannelReleaseHeld(VSP_CHANNEL *Vc)
{
	VspCompleteHeld(Vc, TRUE);
}

static VOID VspEvtHoldTimer(WDFTIMER Timer)
{
	VspCompleteHeld(VspGetTimerContext(Timer)->Vc, FALSE);
}

/* Remembers that tx was deferred; FALSE when there is no memory to remember. */
static BOOLEAN VspRememberDeferred(VSP_CHANNEL *Vc, ULONGLONG Tx)
{
	VSP_DEFERRED *d = (VSP_DEFERRED *)ExAllocatePool2(POOL_FLAG_NON_PAGED, sizeof(*d),
							  VSP_POOL_TAG);

	if (d == NULL)
		return FALSE;
	d->Tx = Tx;
	WdfSpinLockAcquire(Vc->Lock);
	InsertTailList(&Vc->Deferred, &d->Link);
	WdfSpinLockRelease(Vc->Lock);
	return TRUE;
}

/* Whether tx was deferred (this is its redelivery); forgets it. */
static BOOLEAN VspTakeDeferred(VSP_CHANNEL *Vc, ULONGLONG Tx)
{
	VSP_DEFERRED *found = NULL;
	PLIST_ENTRY e;

	WdfSpinLockAcquire(Vc->Lock);
	for (e = Vc->Deferred.Flink; e != &Vc->Deferred; e = e->Flink) {
		VSP_DEFERRED *d = CONTAINING_RECORD(e, VSP_DEFERRED, Link);

		if (d->Tx == Tx) {
			RemoveEntryList(e);
			found = d;
			break;
		}
	}
	WdfSpinLockRelease(Vc->Lock);
	if (found == NULL)
		return FALSE;
	ExFreePoolWithTag(found, VSP_POOL_TAG);
	return TRUE;
}

static VOID VspTraceReceived(VSP_CHANNEL *Vc, const struct sp_header *H,
			     const UCHAR *Buffer, UINT32 Length)
{
	struct sp_trace_event ev;

	RtlZeroMemory(&ev, sizeof(ev));
	ev.kind = SP_EV_PKT_RECV;
	ev.ch = Vc->Ch;
	ev.tx = H->tx;
	ev.dir = SP_DIR_G2H;
	ev.len = H->length;
	ev.digest = sp_message_digest(Buffer, Length, H);
	VspTrace(&ev);
}

/*
 * One guest packet. Runs at IRQL <= DISPATCH_LEVEL, or at PASSIVE_LEVEL on the
 * redelivery of a packet deferred with VmbChannelPacketDeferToPassive.
 */
static VOID VspEvtProcessPacket(VMBCHANNEL Channel, VMBPACKETCOMPLETION Packet,
				PVOID Buffer, UINT32 BufferLength, UINT32 Flags)
{
	VSP_CHANNEL *vc = VspFromChannel(Channel);
	const UCHAR *bytes = (const UCHAR *)Buffer;
	UCHAR completion[SP_COMPLETION_SIZE];
	struct sp_trace_event ev;
	struct sp_header h;
	VSP_HELD_REQUEST *held;
	UINT32 mode;
	int intact;

	/*
	 * Nothing to answer without a header, and the protocol never carries
	 * external data: both are a broken guest. Fail the packet (KMCL stops the
	 * incoming queue) and say so in the trace.
	 */
	if ((Flags & VMBUS_CHANNEL_PROCESS_PACKET_FLAG_EXTERNAL_DATA) != 0 ||
	    sp_decode_header(bytes, BufferLength, &h) != 0) {
		RtlZeroMemory(&ev, sizeof(ev));
		ev.kind = SP_EV_PKT_FAIL;
		ev.ch = vc->Ch;
		ev.dir = SP_DIR_G2H;
		ev.status = SP_STATUS_DATA_ERROR;
		VspTrace(&ev);
		InterlockedIncrement64(&vc->Counters.Failed);
		VspKmcl->VmbChannelPacketFail(Packet);
		return;
	}
	intact = sp_is_intact(bytes, BufferLength, &h);

	if (h.type == SP_MSG_NOTIFY) {
		VspTraceReceived(vc, &h, bytes, BufferLength);
		InterlockedIncrement64(&vc->Counters.NotifiesReceived);
		if (!intact)
			InterlockedIncrement64(&vc->Counters.Damaged);
		/* No completion was requested, so KMCL sends none. */
		VspKmcl->VmbChannelPacketComplete(Packet, NULL, 0);
		return;
	}
	if (h.type != SP_MSG_REQUEST)
		intact = 0; /* HostTransactions never travel guest to host */

	mode = intact ? h.arg0 : SP_MODE_INLINE;
	if (mode > SP_MODE_HOLD) {
		intact = 0;
		mode = SP_MODE_INLINE;
	}

	/* A deferred packet comes back once more; it was already received. */
	if (mode != SP_MODE_DEFERRED || !VspTakeDeferred(vc, h.tx)) {
		VspTraceReceived(vc, &h, bytes, BufferLength);
		InterlockedIncrement64(&vc->Counters.RequestsReceived);
		if (!intact)
			InterlockedIncrement64(&vc->Counters.Damaged);
		if (mode == SP_MODE_DEFERRED && VspRememberDeferred(vc, h.tx)) {
			InterlockedIncrement64(&vc->Counters.Deferred);
			VspKmcl->VmbChannelPacketDeferToPassive(Packet);
			return;
		}
		/* Without memory to remember the deferral, complete it right here. */
	}

	sp_encode_completion(completion, bytes, BufferLength, &h,
			     sp_status_for(h.tx, intact));
	if (mode == SP_MODE_HOLD) {
		held = (VSP_HELD_REQUEST *)ExAllocatePool2(POOL_FLAG_NON_PAGED, sizeof(*held),
							   VSP_POOL_TAG);
		if (held != NULL) {
			held->Packet = Packet;
			held->Tx = h.tx;
			held->DueTime = KeQueryInterruptTime() + (ULONGLONG)h.arg1 * 10000;
			RtlCopyMemory(held->Completion, completion, SP_COMPLETION_SIZE);
			InterlockedIncrement64(&vc->Counters.HeldNow);
			WdfSpinLockAcquire(vc->Lock);
			InsertTailList(&vc->Held, &held->Link);
			WdfSpinLockRelease(vc->Lock);
			return;
		}
	}
	VspComplete(vc, Packet, h.tx, completion);
}
