/*
 * The VSP's channels: creating and configuring the KMCL server channel (every
 * Init* call), offering and starting it, closing it, and the state-change
 * callbacks. The guest's packets are handled in vsp-receive.c.
 */
#include "vsp.h"

static EVT_VMB_CHANNEL_OPENED VspEvtChannelOpened;
static EVT_VMB_CHANNEL_CLOSED VspEvtChannelClosed;
static EVT_VMB_CHANNEL_SUSPEND VspEvtChannelSuspend;
static EVT_VMB_CHANNEL_STARTED VspEvtChannelStarted;
static EVT_VMB_CHANNEL_POST_STARTED VspEvtChannelPostStarted;

VSP_CHANNEL *VspFromChannel(VMBCHANNEL Channel)
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
		ULONG flags = 0;

		if (Vc->Loopback)
			flags |= VMBUS_SERVER_CHANNEL_INIT_FLAG_LOOPBACK_OFFER;
		else
			status = kmcl->VmbServerChannelInitSetVmbusHandle(channel, Vc->VmbusHandle);
		/*
		 * open ... force-new-channel: what KMCL does with it on a restore with
		 * the client still open is the probe's question (docs say little).
		 */
		if (Vc->ForceNewChannel)
			flags |= VMBUS_SERVER_CHANNEL_INIT_FLAG_FORCE_NEW_CHANNEL;
		if (NT_SUCCESS(status) && flags != 0)
			status = kmcl->VmbServerChannelInitSetFlags(channel, flags);
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
	Vc->Paused = FALSE; /* a new object: nothing paused it yet */
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
	Vc->Unopened = TRUE; /* a fresh offer: until a guest opens it */
	VspKmcl->VmbChannelStart(Vc->Channel);
	return STATUS_SUCCESS;
}

/*
 * A VSP_CHANNEL with its lock and hold timer, linked into the device's list, and no
 * channel object yet: the one initialisation of `open` and of an imported saved state
 * (vsp-state.c). Invariant: every VSP_CHANNEL on Dev->Channels has its lists, lock and
 * running timer, so VspChannelClose can take any of them down.
 */
NTSTATUS VspChannelInit(VSP_DEVICE *Dev, UINT32 Ch, const VOID *Instance, UINT32 RingPages,
			BOOLEAN Loopback, VSP_CHANNEL **Out)
{
	WDF_OBJECT_ATTRIBUTES attributes;
	WDF_TIMER_CONFIG timerConfig;
	VSP_CHANNEL *vc;
	NTSTATUS status;

	vc = (VSP_CHANNEL *)ExAllocatePool2(POOL_FLAG_NON_PAGED, sizeof(*vc), VSP_POOL_TAG);
	if (vc == NULL)
		return STATUS_INSUFFICIENT_RESOURCES;
	/* ExAllocatePool2 zeroes the allocation: every handle below starts NULL. */
	vc->Device = Dev;
	vc->Ch = Ch;
	RtlCopyMemory(&vc->Instance, Instance, sizeof(GUID));
	vc->Loopback = Loopback;
	vc->RingPages = RingPages;
	InitializeListHead(&vc->Held);
	InitializeListHead(&vc->Deferred);
	InitializeListHead(&vc->InFlight);
	InitializeListHead(&vc->Abandoned);

	WDF_OBJECT_ATTRIBUTES_INIT(&attributes);
	attributes.ParentObject = Dev->Device;
	status = WdfSpinLockCreate(&attributes, &vc->Lock);
	if (NT_SUCCESS(status)) {
		WDF_TIMER_CONFIG_INIT_PERIODIC(&timerConfig, VspEvtHoldTimer, VSP_HOLD_TICK_MS);
		WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attributes, VSP_TIMER_CONTEXT);
		attributes.ParentObject = Dev->Device;
		status = WdfTimerCreate(&timerConfig, &attributes, &vc->HoldTimer);
	}
	if (!NT_SUCCESS(status)) {
		if (vc->Lock != NULL)
			WdfObjectDelete(vc->Lock);
		ExFreePoolWithTag(vc, VSP_POOL_TAG);
		return status;
	}
	VspGetTimerContext(vc->HoldTimer)->Vc = vc;
	InsertTailList(&Dev->Channels, &vc->Link);
	WdfTimerStart(vc->HoldTimer, WDF_REL_TIMEOUT_IN_MS(VSP_HOLD_TICK_MS));
	*Out = vc;
	return STATUS_SUCCESS;
}

/*
 * `open` of a channel the host rescinded: its new instance, a new channel object offered
 * as the old one was (same instance GUID and VM), with what the command says about
 * flags and ring size. The VSP_CHANNEL stays, so the tx numbering goes on: no id of the
 * old instance is used on the new one (PROTOCOL.md, "Rescind and re-offer").
 */
static NTSTATUS VspChannelReoffer(VSP_CHANNEL *Vc, const struct sample_command *Cmd,
				  HANDLE KernelHandle)
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
	Vc->ForceNewChannel = (BOOLEAN)Cmd->force_new_channel;
	Vc->RingPages = Cmd->ring_pages;
	status = VspChannelConfigure(Vc);
	if (!NT_SUCCESS(status))
		return status;
	status = VspChannelEnableAndStart(Vc);
	if (!NT_SUCCESS(status)) {
		/* Never offered: nothing to disable. Still rescinded, `open` may try again. */
		VspKmcl->VmbChannelCleanup(Vc->Channel);
		Vc->Channel = NULL;
		return status;
	}
	Vc->Rescinded = FALSE;
	return STATUS_SUCCESS;
}

NTSTATUS VspChannelOpen(VSP_DEVICE *Dev, const struct sample_command *Cmd,
			HANDLE KernelHandle)
{
	VSP_CHANNEL *vc = VspChannelFind(Dev, Cmd->ch);
	NTSTATUS status;

	/* The kernel handle is ours from here on: closed with the channel or on failure. */
	if (vc != NULL)
		return VspChannelReoffer(vc, Cmd, KernelHandle);
	status = VspChannelInit(Dev, Cmd->ch, Cmd->instance, Cmd->ring_pages,
				(BOOLEAN)Cmd->loopback, &vc);
	if (!NT_SUCCESS(status)) {
		if (KernelHandle != NULL)
			ZwClose(KernelHandle);
		return status;
	}
	vc->ForceNewChannel = (BOOLEAN)Cmd->force_new_channel;
	vc->VmbusHandle = KernelHandle;
	status = VspChannelConfigure(vc);
	if (NT_SUCCESS(status))
		status = VspChannelEnableAndStart(vc);
	if (!NT_SUCCESS(status))
		VspChannelClose(vc); /* unlinks and frees it, and closes the handle */
	return status;
}

/*
 * Our own VmbChannelDisable. The Closed callback it runs (on an open channel) is the
 * VSP's doing, not a guest's close: VspEvtChannelClosed tells the two apart by this.
 */
static VOID VspDisable(VSP_CHANNEL *Vc)
{
	Vc->Disabling = TRUE;
	VspKmcl->VmbChannelDisable(Vc->Channel);
	Vc->Disabling = FALSE;
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
		if (!Vc->Unoffered) { /* a restored object never offered is not disabled */
			VspDisable(Vc);
			VspTraceState(Vc, "Disabled");
		}
		VspKmcl->VmbChannelCleanup(Vc->Channel);
		Vc->Channel = NULL;
		Vc->Unoffered = FALSE;
	}
	WdfTimerStop(Vc->HoldTimer, TRUE);
	WdfObjectDelete(Vc->HoldTimer);
	WdfObjectDelete(Vc->Lock);
	RemoveEntryList(&Vc->Link);
	if (Vc->VmbusHandle != NULL)
		ZwClose(Vc->VmbusHandle);
	if (Vc->SaveBlob != NULL)
		ExFreePoolWithTag(Vc->SaveBlob, VSP_POOL_TAG);
	VspEndAbandoned(Vc, FALSE);
	while (!IsListEmpty(&Vc->Deferred))
		ExFreePoolWithTag(CONTAINING_RECORD(RemoveHeadList(&Vc->Deferred),
						    VSP_DEFERRED, Link), VSP_POOL_TAG);
	ExFreePoolWithTag(Vc, VSP_POOL_TAG);
}

/*
 * Ends the transactions a failed restore abandoned: at a rescind each HostTransaction is
 * traced cancelled (no object is left to cancel it); at a close or a new restore (which
 * brings them back from the same saved state) they go untraced. Abandoned is touched
 * only by control commands, which the sequential queue runs one at a time.
 */
VOID VspEndAbandoned(VSP_CHANNEL *Vc, BOOLEAN Trace)
{
	struct vbt_event ev;

	while (!IsListEmpty(&Vc->Abandoned)) {
		VSP_TX *t = CONTAINING_RECORD(RemoveHeadList(&Vc->Abandoned), VSP_TX, Link);

		if (Trace && t->Saved.type == SP_MSG_HOST_TRANSACTION) {
			RtlZeroMemory(&ev, sizeof(ev));
			ev.kind = VBT_PKT_CANCEL;
			ev.ch = Vc->Ch;
			ev.tx = t->Saved.tx;
			ev.dir = VBT_H2G;
			ev.status = (UINT32)STATUS_CANCELLED;
			VspTrace(&ev);
			InterlockedIncrement64(&Vc->Counters.Cancelled);
		}
		ExFreePoolWithTag(t, VSP_POOL_TAG);
	}
}

/*
 * `rescind ch=N`: the host revokes this channel instance's offer (PROTOCOL.md, "Rescind
 * and re-offer"), and the VSP ends what it still owns. Through VmbChannelDisable, every
 * HostTransaction still queued or awaiting its completion: KMCL cancels each, and the
 * completion routine traces pkt.cancel with the status it got (Retiring). A restored
 * object never offered is disabled too: KMCL cancels what the restore put back. Then the
 * transactions a failed restore left (their packets freed then), traced cancelled here:
 * no object is left to cancel them. Then VmbChannelCleanup: this object is done, and
 * the saved state of the instance goes with it. The VSP_CHANNEL stays, with its tx
 * numbering, for `open` to offer the new instance.
 */
NTSTATUS VspChannelRescind(VSP_CHANNEL *Vc)
{
	WdfSpinLockAcquire(Vc->Lock);
	Vc->Retiring = TRUE;
	WdfSpinLockRelease(Vc->Lock);
	if (Vc->Channel != NULL) {
		VspDisable(Vc);
		VspKmcl->VmbChannelCleanup(Vc->Channel);
		Vc->Channel = NULL;
		Vc->Unoffered = FALSE;
	}
	VspEndAbandoned(Vc, TRUE);
	if (Vc->SaveBlob != NULL) {
		ExFreePoolWithTag(Vc->SaveBlob, VSP_POOL_TAG);
		Vc->SaveBlob = NULL;
		Vc->SaveBlobSize = 0;
	}
	WdfSpinLockAcquire(Vc->Lock);
	Vc->Retiring = FALSE;
	WdfSpinLockRelease(Vc->Lock);
	Vc->Suspended = FALSE;
	Vc->Rescinded = TRUE;
	return STATUS_SUCCESS;
}

/*
 * Gives up the saved channel's object, keeping the saved state: what happens to the
 * host side when the VM it serves is saved and stops. The object is disabled and
 * cleaned up; its outstanding packets complete there as cancelled and are not
 * traced (Abandoning), because they continue on the object a restore makes. Nor
 * is "Disabled": the channel goes on, on that new object; KMCL's own Closed
 * callback is traced as always.
 */
NTSTATUS VspChannelDetach(VSP_CHANNEL *Vc)
{
	PKMCL_SERVER_INTERFACE_V1 kmcl = VspKmcl;

	if (Vc->SaveBlob == NULL)
		return STATUS_INVALID_DEVICE_STATE; /* nothing to come back to */
	if (Vc->Channel == NULL)
		return STATUS_SUCCESS;
	WdfSpinLockAcquire(Vc->Lock);
	Vc->Abandoning = TRUE;
	WdfSpinLockRelease(Vc->Lock);
	if (!Vc->Unoffered)
		VspDisable(Vc);
	kmcl->VmbChannelCleanup(Vc->Channel);
	Vc->Channel = NULL;
	Vc->Unoffered = FALSE;
	WdfSpinLockAcquire(Vc->Lock);
	Vc->Abandoning = FALSE;
	WdfSpinLockRelease(Vc->Lock);
	return STATUS_SUCCESS;
}

/*
 * The VM this channel served is gone without a save (a checkpoint applied over it,
 * the VM turned off): give up the object. Disable suspends it (held requests are
 * completed to nobody), closes it and cancels what is outstanding. None of it is
 * traced: that VM's history ends where the checkpoint's takes over, and a restore
 * (after IOCTL_SAMPLE_VSP_IMPORT) starts the channel again from the saved state.
 */
NTSTATUS VspChannelDiscard(VSP_CHANNEL *Vc)
{
	if (Vc->Channel == NULL)
		return STATUS_SUCCESS;
	WdfSpinLockAcquire(Vc->Lock);
	Vc->Discarding = TRUE;
	Vc->Abandoning = TRUE;
	WdfSpinLockRelease(Vc->Lock);
	if (!Vc->Unoffered)
		VspDisable(Vc);
	VspKmcl->VmbChannelCleanup(Vc->Channel);
	Vc->Channel = NULL;
	Vc->Unoffered = FALSE;
	WdfSpinLockAcquire(Vc->Lock);
	Vc->Discarding = FALSE;
	Vc->Abandoning = FALSE;
	WdfSpinLockRelease(Vc->Lock);
	return STATUS_SUCCESS;
}

/*
 * `resume ch=N`: a restored object is offered (Enable) and started; a channel
 * paused by a save that is kept running is started again.
 */
NTSTATUS VspChannelResume(VSP_CHANNEL *Vc)
{
	NTSTATUS status;

	if (Vc->Channel == NULL)
		return STATUS_INVALID_DEVICE_STATE;
	if (Vc->Unoffered) {
		status = VspKmcl->VmbChannelEnable(Vc->Channel);
		if (!NT_SUCCESS(status))
			return status;
		Vc->Unoffered = FALSE;
		VspTraceState(Vc, "Enabled");
	}
	VspKmcl->VmbChannelStart(Vc->Channel);
	/* Started again (its Started callback runs only if a guest has the channel open). */
	Vc->Paused = FALSE;
	Vc->Suspended = FALSE;
	return STATUS_SUCCESS;
}

/* ---- State changes ------------------------------------------------------- */

static NTSTATUS VspEvtChannelOpened(VMBCHANNEL Channel)
{
	VSP_CHANNEL *vc = VspFromChannel(Channel);

	/* A new connection: what the guest's close retired is behind us. */
	WdfSpinLockAcquire(vc->Lock);
	vc->Retiring = FALSE;
	WdfSpinLockRelease(vc->Lock);
	vc->Unopened = FALSE;
	VspTraceState(vc, "Opened");
	return STATUS_SUCCESS;
}

static VOID VspEvtChannelStarted(VMBCHANNEL Channel)
{
	VSP_CHANNEL *vc = VspFromChannel(Channel);

	/* Sends may be queued here but not waited on: the incoming queue is off. */
	vc->Suspended = FALSE;
	vc->Unopened = FALSE; /* (a restored connection starts without Opened) */
	VspTraceState(vc, "Started");
}

static VOID VspEvtChannelPostStarted(VMBCHANNEL Channel)
{
	VspTraceState(VspFromChannel(Channel), "Active");
}

static VOID VspEvtChannelSuspend(VMBCHANNEL Channel)
{
	VSP_CHANNEL *vc = VspFromChannel(Channel);

	/*
	 * Sending must stop once suspended: a packet sent now would miss the save
	 * (it is neither saved nor in the ring the guest's memory keeps). Commands
	 * refuse to send until the channel is started again.
	 */
	vc->Suspended = TRUE;
	VspTraceState(vc, "Paused");
	/* KMCL waits for every incoming packet we still hold: give them back now. */
	VspChannelReleaseHeld(vc);
}

static VOID VspEvtChannelClosed(VMBCHANNEL Channel)
{
	VSP_CHANNEL *vc = VspFromChannel(Channel);

	/* No GPADLs to tear down: the protocol carries everything in-band. */
	VspTraceState(vc, "Closed");
	if (vc->Disabling)
		return; /* our own Disable: it cancels what is outstanding itself */
	/*
	 * The guest closed the channel (PROTOCOL.md, "Guest close"; REVIEW D6). The offer
	 * stays, so no Disable comes to cancel what is outstanding, and the guest will never
	 * complete it: the header has the VSP retire its outstanding transactions itself.
	 * From here each HostTransaction KMCL hands back without a completion ends at the
	 * completion routine as cancelled (pkt.cancel), until the guest opens the channel
	 * again. How KMCL hands them back to a server is not documented [I]; the emulator's
	 * KMCL does it with the cancel status (Channel.retireOutstanding).
	 */
	WdfSpinLockAcquire(vc->Lock);
	vc->Retiring = TRUE;
	WdfSpinLockRelease(vc->Lock);
	/*
	 * Closed: sends are queued again, written once the guest reopens; unless this VSP
	 * paused the channel itself (a save), which only its own Start undoes.
	 */
	vc->Suspended = vc->Paused;
	vc->Unopened = TRUE;
}
