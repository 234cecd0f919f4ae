/*
 * The Windows guest's traffic: the host's messages (HostTransactions held for
 * their time, Notifies), our Requests and Notifies, and the completions for them.
 * Channel lifetime and state changes are in guest-channel.c.
 */
#include "guest.h"

static EVT_VMB_PACKET_COMPLETION_ROUTINE GuestEvtPacketCompletion;

/* ---- Host packets -------------------------------------------------------- */

static VOID GuestComplete(GUEST_DEVICE *Dev, VMBPACKETCOMPLETION Packet, ULONGLONG Tx,
			  UCHAR Completion[SP_COMPLETION_SIZE])
{
	struct vbt_event ev;
	struct sp_completion c;

	GuestKmcl.VmbChannelPacketComplete(Packet, Completion, SP_COMPLETION_SIZE);
	sp_decode_completion(Completion, SP_COMPLETION_SIZE, &c);
	RtlZeroMemory(&ev, sizeof(ev));
	ev.kind = VBT_PKT_COMPLETE;
	ev.ch = Dev->Ch;
	ev.tx = Tx;
	ev.dir = VBT_H2G;
	ev.status = c.status;
	ev.len = SP_COMPLETION_SIZE;
	ev.digest = sp_fnv1a64(Completion, SP_COMPLETION_SIZE);
	GuestTrace(Dev, &ev);
	InterlockedIncrement64(&Dev->Counters.Completed);
}

static VOID GuestCompleteHeld(GUEST_DEVICE *Dev, BOOLEAN All)
{
	ULONGLONG now = KeQueryInterruptTime();
	PLIST_ENTRY e, next;
	LIST_ENTRY due;

	InitializeListHead(&due);
	WdfSpinLockAcquire(Dev->Lock);
	for (e = Dev->Held.Flink; e != &Dev->Held; e = next) {
		next = e->Flink;
		if (All || CONTAINING_RECORD(e, GUEST_HELD, Link)->DueTime <= now) {
			RemoveEntryList(e);
			InsertTailList(&due, e);
		}
	}
	WdfSpinLockRelease(Dev->Lock);
	while (!IsListEmpty(&due)) {
		GUEST_HELD *h = CONTAINING_RECORD(RemoveHeadList(&due), GUEST_HELD, Link);

		GuestComplete(Dev, h->Packet, h->Tx, h->Completion);
		InterlockedExchangeAdd64(&Dev->Counters.HeldNow, -1);
		ExFreePoolWithTag(h, GUEST_POOL_TAG);
	}
}

VOID GuestReleaseHeld(GUEST_DEVICE *Dev)
{
	GuestCompleteHeld(Dev, TRUE);
}

/*
 * The channel is closing (a client is only suspended on its way to Closed: a
 * rescind, the guest's own close, the device's removal). KMCL will not finish
 * suspending while we hold packets, so each is completed; but the host ends them
 * itself (a rescind cancels them, a guest close has the VSP retire them), so the
 * completion never reaches it: counted as dropped, not traced as pkt.complete,
 * as the Linux guest drops what it holds at its close.
 */
VOID GuestDropHeld(GUEST_DEVICE *Dev)
{
	LIST_ENTRY all;

	InitializeListHead(&all);
	WdfSpinLockAcquire(Dev->Lock);
	while (!IsListEmpty(&Dev->Held))
		InsertTailList(&all, RemoveHeadList(&Dev->Held));
	WdfSpinLockRelease(Dev->Lock);
	while (!IsListEmpty(&all)) {
		GUEST_HELD *h = CONTAINING_RECORD(RemoveHeadList(&all), GUEST_HELD, Link);

		GuestKmcl.VmbChannelPacketComplete(h->Packet, h->Completion, SP_COMPLETION_SIZE);
		InterlockedExchangeAdd64(&Dev->Counters.HeldNow, -1);
		InterlockedIncrement64(&Dev->Counters.DroppedOnClose);
		ExFreePoolWithTag(h, GUEST_POOL_TAG);
	}
}

VOID GuestEvtHoldTimer(WDFTIMER Timer)
{
	GuestCompleteHeld(GuestGetObjectContext(Timer)->Dev, FALSE);
}

VOID GuestEvtProcessPacket(VMBCHANNEL Channel, VMBPACKETCOMPLETION Packet,
				  PVOID Buffer, UINT32 BufferLength, UINT32 Flags)
{
	GUEST_DEVICE *dev = GuestFromChannel(Channel);
	const UCHAR *bytes = (const UCHAR *)Buffer;
	struct vbt_event ev;
	struct sp_header h;
	GUEST_HELD *held;
	LONG holdMs;
	int intact;

	if ((Flags & VMBUS_CHANNEL_PROCESS_PACKET_FLAG_EXTERNAL_DATA) != 0 ||
	    sp_decode_header(bytes, BufferLength, &h) != 0) {
		RtlZeroMemory(&ev, sizeof(ev));
		ev.kind = VBT_PKT_FAIL;
		ev.ch = dev->Ch;
		ev.dir = VBT_H2G;
		ev.status = SP_STATUS_DATA_ERROR;
		GuestTrace(dev, &ev);
		InterlockedIncrement64(&dev->Counters.Failed);
		/*
		 * VmbChannelPacketFail is documented for server endpoints only: a
		 * client completes what it cannot use, with no data.
		 */
		GuestKmcl.VmbChannelPacketComplete(Packet, NULL, 0);
		return;
	}
	intact = sp_is_intact(bytes, BufferLength, &h);
	if (h.type != SP_MSG_HOST_TRANSACTION && h.type != SP_MSG_NOTIFY)
		intact = 0; /* Requests never travel host to guest */

	RtlZeroMemory(&ev, sizeof(ev));
	ev.kind = VBT_PKT_RECV;
	ev.ch = dev->Ch;
	ev.tx = h.tx;
	ev.dir = VBT_H2G;
	ev.len = h.length;
	ev.digest = sp_message_digest(bytes, BufferLength, &h);
	GuestTrace(dev, &ev);
	InterlockedIncrement64(&dev->Counters.Received);
	if (!intact)
		InterlockedIncrement64(&dev->Counters.Damaged);

	if (h.type == SP_MSG_NOTIFY) {
		GuestKmcl.VmbChannelPacketComplete(Packet, NULL, 0); /* none requested */
		return;
	}

	held = (GUEST_HELD *)ExAllocatePool2(POOL_FLAG_NON_PAGED, sizeof(*held),
					     GUEST_POOL_TAG);
	if (held == NULL) {
		UCHAR completion[SP_COMPLETION_SIZE];

		sp_encode_completion(completion, bytes, BufferLength, &h,
				     sp_status_for(h.tx, intact));
		GuestComplete(dev, Packet, h.tx, completion);
		return;
	}
	held->Packet = Packet;
	held->Tx = h.tx;
	sp_encode_completion(held->Completion, bytes, BufferLength, &h,
			     sp_status_for(h.tx, intact));
	WdfSpinLockAcquire(dev->Lock);
	holdMs = dev->HoldOverrideMs;
	WdfSpinLockRelease(dev->Lock);
	if (holdMs < 0)
		holdMs = intact ? (LONG)h.arg0 : 0;
	if (holdMs == 0) {
		GuestComplete(dev, Packet, h.tx, held->Completion);
		ExFreePoolWithTag(held, GUEST_POOL_TAG);
		return;
	}
	held->DueTime = KeQueryInterruptTime() + (ULONGLONG)holdMs * 10000;
	InterlockedIncrement64(&dev->Counters.HeldNow);
	WdfSpinLockAcquire(dev->Lock);
	InsertTailList(&dev->Held, &held->Link);
	WdfSpinLockRelease(dev->Lock);
}

/* ---- Our Requests and Notifies ------------------------------------------- */

static VOID GuestTraceCompletion(GUEST_DEVICE *Dev, struct vbt_event *Event,
				 BOOLEAN Mismatch)
{
	GuestTrace(Dev, Event);
	InterlockedIncrement64(&Dev->Counters.Completions);
	if (Mismatch)
		InterlockedIncrement64(&Dev->Counters.CompletionMismatch);
}

/* A Request KMCL cancelled (its channel closed under it): it ends here, never resent. */
static VOID GuestTraceCancel(GUEST_DEVICE *Dev, ULONGLONG Tx)
{
	struct vbt_event ev;

	RtlZeroMemory(&ev, sizeof(ev));
	ev.kind = VBT_PKT_CANCEL;
	ev.ch = Dev->Ch;
	ev.tx = Tx;
	ev.dir = VBT_G2H;
	ev.status = SP_STATUS_CANCELLED;
	GuestTrace(Dev, &ev);
	InterlockedIncrement64(&Dev->Counters.Cancelled);
}

static VOID GuestEvtPacketCompletion(VMBPACKET Packet, NTSTATUS Status, PVOID Buffer,
				     UINT32 BufferLength)
{
	GUEST_TX *t = (GUEST_TX *)GuestKmcl.VmbPacketGetPointer(Packet);
	GUEST_DEVICE *dev = t->Dev;
	struct sp_completion c;
	BOOLEAN park = FALSE;

	if (t->Type == SP_MSG_REQUEST) {
		BOOLEAN completed = (BOOLEAN)(NT_SUCCESS(Status) && Buffer != NULL &&
			sp_decode_completion((const sp_u8 *)Buffer, BufferLength, &c) == 0);

		if (completed) {
			RtlZeroMemory(&t->Parked, sizeof(t->Parked));
			t->Parked.kind = VBT_PKT_COMPLETION;
			t->Parked.ch = dev->Ch;
			t->Parked.tx = t->Tx;
			t->Parked.dir = VBT_G2H;
			t->Parked.status = c.status;
			t->Parked.digest = sp_fnv1a64(Buffer, SP_COMPLETION_SIZE);
			t->ParkedMismatch = (BOOLEAN)(c.tx != t->Tx || c.request_digest != t->Digest);
		}
		/*
		 * This routine may run before VmbPacketSend has returned, completed or
		 * cancelled. Then the sender still uses t: it writes pkt.send and
		 * finishes (traces, frees) after it. Either way exactly one of the two
		 * frees t, decided under the lock.
		 */
		WdfSpinLockAcquire(dev->Lock);
		park = (BOOLEAN)!t->SendTraced;
		t->CompletionParked = park;
		t->ParkedCancelled = (BOOLEAN)!completed;
		WdfSpinLockRelease(dev->Lock);
		if (park)
			return;
		if (completed)
			GuestTraceCompletion(dev, &t->Parked, t->ParkedMismatch);
		else
			GuestTraceCancel(dev, t->Tx);
	}
	ExFreePoolWithTag(t, GUEST_POOL_TAG);
	GuestKmcl.VmbPacketFree(Packet);
}

static NTSTATUS GuestSendOne(GUEST_DEVICE *Dev, UINT16 Type, UINT32 Length, UINT32 Mode,
			     UINT32 HoldMs)
{
	BOOLEAN want = (BOOLEAN)(Type == SP_MSG_REQUEST);
	ULONGLONG tx = Dev->NextTx + 1;
	struct vbt_event ev;
	BOOLEAN parked;
	VMBPACKET packet;
	NTSTATUS status;
	GUEST_TX *t;

	t = (GUEST_TX *)ExAllocatePool2(POOL_FLAG_NON_PAGED,
					FIELD_OFFSET(GUEST_TX, Message) + Length, GUEST_POOL_TAG);
	if (t == NULL)
		return STATUS_INSUFFICIENT_RESOURCES;
	t->Dev = Dev;
	t->Type = Type;
	t->Tx = tx;
	if (sp_encode_message(t->Message, Length, Type, tx, Length, want ? Mode : 0,
			      want && Mode == SP_MODE_HOLD ? HoldMs : 0) != 0) {
		ExFreePoolWithTag(t, GUEST_POOL_TAG);
		return STATUS_INVALID_PARAMETER;
	}
	t->Digest = sp_fnv1a64(t->Message, Length);

	/* Built before the send: a Notify's t is freed as soon as it is in the ring. */
	RtlZeroMemory(&ev, sizeof(ev));
	ev.kind = VBT_PKT_SEND;
	ev.ch = Dev->Ch;
	ev.tx = tx;
	ev.dir = VBT_G2H;
	ev.len = Length;
	ev.digest = t->Digest;
	ev.want_completion = want;

	packet = GuestKmcl.VmbPacketAllocate(Dev->Channel);
	if (packet == NULL) {
		ExFreePoolWithTag(t, GUEST_POOL_TAG);
		return STATUS_INSUFFICIENT_RESOURCES;
	}
	GuestKmcl.VmbPacketSetPointer(packet, t);
	GuestKmcl.VmbPacketSetCompletionRoutine(packet, GuestEvtPacketCompletion);
	/* A full ring is not an error here: KMCL queues the packet and sends it later. */
	status = GuestKmcl.VmbPacketSend(packet, t->Message, Length, NULL,
					 want ? VMBUS_CHANNEL_FORMAT_FLAG_WAIT_FOR_COMPLETION : 0);
	if (!NT_SUCCESS(status)) {
		GuestKmcl.VmbPacketFree(packet);
		ExFreePoolWithTag(t, GUEST_POOL_TAG);
		return status;
	}
	Dev->NextTx = tx;
	GuestTrace(Dev, &ev);
	InterlockedIncrement64(want ? &Dev->Counters.RequestsSent : &Dev->Counters.NotifiesSent);
	if (!want)
		return STATUS_SUCCESS; /* t may be gone: a Notify completes once in the ring */

	WdfSpinLockAcquire(Dev->Lock);
	t->SendTraced = TRUE;
	parked = t->CompletionParked;
	WdfSpinLockRelease(Dev->Lock);
	if (parked) {
		/* The completion came first; write it now, after its send, and finish. */
		if (t->ParkedCancelled)
			GuestTraceCancel(Dev, t->Tx);
		else
			GuestTraceCompletion(Dev, &t->Parked, t->ParkedMismatch);
		ExFreePoolWithTag(t, GUEST_POOL_TAG);
		GuestKmcl.VmbPacketFree(packet);
	}
	return STATUS_SUCCESS;
}

NTSTATUS GuestSendMany(GUEST_DEVICE *Dev, UINT16 Type, UINT32 Count, UINT32 Length,
		       UINT32 Mode, UINT32 HoldMs)
{
	NTSTATUS status = STATUS_SUCCESS;
	UINT32 i;

	if (Dev->Channel == NULL)
		return STATUS_DEVICE_NOT_READY;
	for (i = 0; i < Count && NT_SUCCESS(status); i++) {
		BOOLEAN suspended;

		/* Checked before each packet: KMCL may suspend the channel between two. */
		WdfSpinLockAcquire(Dev->Lock);
		suspended = Dev->Suspended;
		WdfSpinLockRelease(Dev->Lock);
		if (suspended)
			return STATUS_INVALID_DEVICE_STATE; /* the host is taking the channel away */
		status = GuestSendOne(Dev, Type, Length, Mode, HoldMs);
	}
	return status;
}
