/*
 * The Windows guest's channel: a KMCL client endpoint targeting the protocol's
 * interface type, and its state callbacks. Traffic is in guest-io.c.
 *
 * EvtVmbChannelSuspend completes every held host transaction at once, since
 * KMCL will not finish suspending while we hold incoming packets. A Windows
 * guest sees no VM save, so a client is suspended only on its way to Closed:
 * the host ends those transactions itself, and they are dropped (GuestDropHeld).
 *
 * Rescind and re-offer: on Windows a rescinded offer's PnP device is removed
 * (EvtDeviceReleaseHardware, guest-driver.c, ends the channel here) and a new
 * offer is a new device. A client endpoint whose host side goes away while its
 * device stays ends up Disabled and must be enabled again to take the next offer
 * (SPEC-NOTES 2.5): EvtVmbChannelClosed queues a work item that enables it again,
 * unless the device itself is being removed.
 *
 * Removal ends what the channel had in flight: VmbChannelDisable suspends it (the
 * held host transactions are dropped), closes it and cancels each Request still
 * awaiting its completion, which the completion routine traces as pkt.cancel.
 */
#include "guest.h"

/* Filled by guest-driver.c before the first channel exists. */
KMCL_CLIENT_INTERFACE_V1 GuestKmcl;

static EVT_VMB_CHANNEL_OPENED GuestEvtOpened;
static EVT_VMB_CHANNEL_CLOSED GuestEvtClosed;
static EVT_VMB_CHANNEL_SUSPEND GuestEvtSuspend;
static EVT_VMB_CHANNEL_STARTED GuestEvtStarted;
static EVT_VMB_CHANNEL_POST_STARTED GuestEvtPostStarted;
static EVT_VMB_CHANNEL_PNP_FAILURE GuestEvtPnpFailure;

#define GUEST_GUID_INIT(d1, d2, d3, b0, b1, b2, b3, b4, b5, b6, b7) \
	{ d1, d2, d3, { b0, b1, b2, b3, b4, b5, b6, b7 } }
static const GUID GuestInterfaceType =
	SP_APPLY(GUEST_GUID_INIT, SP_INTERFACE_TYPE_GUID_FIELDS);

GUEST_DEVICE *GuestFromChannel(VMBCHANNEL Channel)
{
	return (GUEST_DEVICE *)GuestKmcl.VmbChannelGetPointer(Channel);
}

NTSTATUS GuestChannelCreate(GUEST_DEVICE *Dev)
{
	VMB_CHANNEL_STATE_CHANGE_CALLBACKS callbacks;
	VMBCHANNEL channel = NULL;
	NTSTATUS status;

	status = GuestKmcl.VmbChannelAllocate(WdfDeviceWdmGetDeviceObject(Dev->Device), FALSE,
					      &channel);
	if (!NT_SUCCESS(status))
		return status;
	/* Any instance of our type: this PnP device stands for one offer. */
	status = GuestKmcl.VmbClientChannelInitSetTargetPnp(channel, &GuestInterfaceType, NULL,
							    GuestEvtPnpFailure);
	/* The guest donates both rings, so only the guest sizes them. */
	if (NT_SUCCESS(status))
		status = GuestKmcl.VmbClientChannelInitSetRingBufferPageCount(channel,
									      Dev->RingPages,
									      Dev->RingPages);
	if (NT_SUCCESS(status))
		status = GuestKmcl.VmbChannelInitSetMaximumPacketSize(channel, SP_MAX_MESSAGE_SIZE);
	if (NT_SUCCESS(status))
		status = GuestKmcl.VmbChannelInitSetProcessPacketCallbacks(channel,
									   GuestEvtProcessPacket,
									   NULL);
	if (NT_SUCCESS(status)) {
		VMB_CHANNEL_STATE_CHANGE_CALLBACKS_INIT(&callbacks);
		callbacks.EvtChannelOpened = GuestEvtOpened;
		callbacks.EvtChannelClosed = GuestEvtClosed;
		callbacks.EvtChannelSuspend = GuestEvtSuspend;
		callbacks.EvtChannelStarted = GuestEvtStarted;
		callbacks.EvtChannelPostStarted = GuestEvtPostStarted;
		status = GuestKmcl.VmbChannelInitSetStateChangeCallbacks(channel, &callbacks);
	}
	if (!NT_SUCCESS(status)) {
		GuestKmcl.VmbChannelCleanup(channel);
		return status;
	}
	GuestKmcl.VmbChannelSetPointer(channel, Dev);
	Dev->Channel = channel;
	/* A client's Enable also starts it; it returns before the host answers. */
	status = GuestKmcl.VmbChannelEnable(channel);
	if (!NT_SUCCESS(status)) {
		GuestKmcl.VmbChannelCleanup(channel);
		Dev->Channel = NULL;
		return status;
	}
	/*
	 * Traced at Opened: until an offer binds the channel, the instance GUID that
	 * numbers it (Dev->Ch) is unknown, and "Enabled" on channel 0 would name the
	 * wrong channel on any other.
	 */
	Dev->EnabledUntraced = TRUE;
	return STATUS_SUCCESS;
}

VOID GuestChannelDestroy(GUEST_DEVICE *Dev)
{
	WdfSpinLockAcquire(Dev->Lock);
	Dev->Stopping = TRUE;
	WdfSpinLockRelease(Dev->Lock);
	WdfWorkItemFlush(Dev->ReenableWork);
	if (Dev->Channel != NULL) {
		/* Closed is the channel's last state traced: the device goes with it. */
		GuestKmcl.VmbChannelDisable(Dev->Channel);
		GuestKmcl.VmbChannelCleanup(Dev->Channel);
		Dev->Channel = NULL;
	}
	WdfTimerStop(Dev->HoldTimer, TRUE);
}

/* ---- State changes ------------------------------------------------------- */

static NTSTATUS GuestEvtOpened(VMBCHANNEL Channel)
{
	GUEST_DEVICE *dev = GuestFromChannel(Channel);
	GUID instance;

	GuestKmcl.VmbChannelGetInterfaceInstance(Channel, &instance);
	/* Commands reach the device from here; a re-offer numbers on from its last device. */
	WdfWaitLockAcquire(GuestDriver.DevicesLock, NULL);
	dev->Ch = vbt_channel_number((const sp_u8 *)&instance);
	if (!dev->ChKnown)
		dev->NextTx = GuestMarkedTx(dev->Ch);
	dev->ChKnown = TRUE;
	WdfWaitLockRelease(GuestDriver.DevicesLock);
	if (dev->EnabledUntraced) {
		dev->EnabledUntraced = FALSE;
		GuestTraceState(dev, "Enabled");
	}
	GuestTraceState(dev, "Opened");
	WdfTimerStart(dev->HoldTimer, WDF_REL_TIMEOUT_IN_MS(GUEST_HOLD_TICK_MS));
	return STATUS_SUCCESS;
}

static VOID GuestEvtStarted(VMBCHANNEL Channel)
{
	GUEST_DEVICE *dev = GuestFromChannel(Channel);

	WdfSpinLockAcquire(dev->Lock);
	dev->Suspended = FALSE;
	WdfSpinLockRelease(dev->Lock);
	GuestTraceState(dev, "Started");
}

static VOID GuestEvtPostStarted(VMBCHANNEL Channel)
{
	GuestTraceState(GuestFromChannel(Channel), "Active");
}

static VOID GuestEvtSuspend(VMBCHANNEL Channel)
{
	GUEST_DEVICE *dev = GuestFromChannel(Channel);

	/*
	 * Sending must stop once suspended (REVIEW D2): the host is rescinding the offer,
	 * and a packet sent now would go nowhere. Started clears it on the next offer.
	 */
	WdfSpinLockAcquire(dev->Lock);
	dev->Suspended = TRUE;
	WdfSpinLockRelease(dev->Lock);
	GuestTraceState(dev, "Paused");
	GuestDropHeld(dev);
}

static VOID GuestEvtClosed(VMBCHANNEL Channel)
{
	GUEST_DEVICE *dev = GuestFromChannel(Channel);
	BOOLEAN stopping;

	GuestTraceState(dev, "Closed");
	WdfSpinLockAcquire(dev->Lock);
	stopping = dev->Stopping;
	WdfSpinLockRelease(dev->Lock);
	/* Not from inside a state callback: a work item enables it again. */
	if (!stopping) {
		InterlockedIncrement64(&GuestDriver.ClosedOutsideRemoval);
		WdfWorkItemEnqueue(dev->ReenableWork);
	}
}

VOID GuestEvtReenable(WDFWORKITEM WorkItem)
{
	GUEST_DEVICE *dev = GuestGetObjectContext(WorkItem)->Dev;
	NTSTATUS status;

	if (dev->Stopping || dev->Channel == NULL)
		return;
	status = GuestKmcl.VmbChannelEnable(dev->Channel);
	if (NT_SUCCESS(status))
		GuestTraceState(dev, "Enabled");
}

static VOID GuestEvtPnpFailure(VMBCHANNEL Channel, NTSTATUS FailureStatus)
{
	GUEST_DEVICE *dev = GuestFromChannel(Channel);

	UNREFERENCED_PARAMETER(FailureStatus);
	InterlockedIncrement64(&dev->Counters.Failed);
}
