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
	vc->ForceNewChannel = (BOOLEAN)Cmd->force_new_channel;
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
		if (!Vc->Unoffered) { /* a restored object never offered is not disabled */
			VspKmcl->VmbChannelDisable(Vc->Channel);
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
	while (!IsListEmpty(&Vc->Deferred))
		ExFreePoolWithTag(CONTAINING_RECORD(RemoveHeadList(&Vc->Deferred),
						    VSP_DEFERRED, Link), VSP_POOL_TAG);
	ExFreePoolWithTag(Vc, VSP_POOL_TAG);
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
		kmcl->VmbChannelDisable(Vc->Channel);
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
		VspKmcl->VmbChannelDisable(Vc->Channel);
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
	return STATUS_SUCCESS;
}

/* ---- State changes ------------------------------------------------------- */

static NTSTATUS VspEvtChannelOpened(VMBCHANNEL Channel)
{
	VspTraceState(VspFromChannel(Channel), "Opened");
	return STATUS_SUCCESS;
}

static VOID VspEvtChannelStarted(VMBCHANNEL Channel)
{
	VSP_CHANNEL *vc = VspFromChannel(Channel);

	/* Sends may be queued here but not waited on: the incoming queue is off. */
	vc->Suspended = FALSE;
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
	/* No GPADLs to tear down: the protocol carries everything in-band. */
	VspTraceState(VspFromChannel(Channel), "Closed");
}
