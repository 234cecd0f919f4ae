/*
 * The guest's packets at the VSP: Requests completed inline, after one deferral
 * to passive, or after a hold; Notifies; and what a broken guest sends.
 *
 * Held packets sit on VSP_CHANNEL.Held until a periodic timer finds them due.
 * EvtVmbChannelSuspend (vsp-channel.c) completes all of them at once through
 * VspChannelReleaseHeld, because KMCL does not finish suspending while the VSP
 * holds incoming packets.
 */
#include "vsp.h"

/* ---- Incoming packets ---------------------------------------------------- */

static VOID VspComplete(VSP_CHANNEL *Vc, VMBPACKETCOMPLETION Packet, ULONGLONG Tx,
			UCHAR Completion[SP_COMPLETION_SIZE])
{
	struct vbt_event ev;
	struct sp_completion c;

	VspKmcl->VmbChannelPacketComplete(Packet, Completion, SP_COMPLETION_SIZE);
	InterlockedIncrement64(&Vc->Counters.RequestsCompleted);
	if (Vc->Discarding)
		return; /* completed to a VM that is gone: nobody receives it */
	sp_decode_completion(Completion, SP_COMPLETION_SIZE, &c);
	RtlZeroMemory(&ev, sizeof(ev));
	ev.kind = VBT_PKT_COMPLETE;
	ev.ch = Vc->Ch;
	ev.tx = Tx;
	ev.dir = VBT_G2H;
	ev.status = c.status;
	ev.len = SP_COMPLETION_SIZE;
	ev.digest = sp_fnv1a64(Completion, SP_COMPLETION_SIZE);
	VspTrace(&ev);
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

VOID VspEvtHoldTimer(WDFTIMER Timer)
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
			     ULONGLONG Digest)
{
	struct vbt_event ev;

	RtlZeroMemory(&ev, sizeof(ev));
	ev.kind = VBT_PKT_RECV;
	ev.ch = Vc->Ch;
	ev.tx = H->tx;
	ev.dir = VBT_G2H;
	ev.len = H->length;
	ev.digest = Digest;
	VspTrace(&ev);
}

/*
 * One guest packet. Runs at IRQL <= DISPATCH_LEVEL, or at PASSIVE_LEVEL on the
 * redelivery of a packet deferred with VmbChannelPacketDeferToPassive.
 */
VOID VspEvtProcessPacket(VMBCHANNEL Channel, VMBPACKETCOMPLETION Packet,
				PVOID Buffer, UINT32 BufferLength, UINT32 Flags)
{
	VSP_CHANNEL *vc = VspFromChannel(Channel);
	const UCHAR *bytes = (const UCHAR *)Buffer;
	UCHAR completion[SP_COMPLETION_SIZE];
	struct vbt_event ev;
	struct sp_header h;
	VSP_HELD_REQUEST *held;
	ULONGLONG digest;
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
		ev.kind = VBT_PKT_FAIL;
		ev.ch = vc->Ch;
		ev.dir = VBT_G2H;
		ev.status = SP_STATUS_DATA_ERROR;
		VspTrace(&ev);
		InterlockedIncrement64(&vc->Counters.Failed);
		VspKmcl->VmbChannelPacketFail(Packet);
		return;
	}
	intact = sp_is_intact(bytes, BufferLength, &h);
	/* Hashed once per delivery: the trace's digest and the completion's are one value. */
	digest = sp_message_digest(bytes, BufferLength, &h);

	if (h.type == SP_MSG_NOTIFY) {
		VspTraceReceived(vc, &h, digest);
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
		VspTraceReceived(vc, &h, digest);
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

	sp_encode_completion_digest(completion, &h, sp_status_for(h.tx, intact),
				    digest);
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
