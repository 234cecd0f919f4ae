/*
 * The guest's packets at the blockq VSP. A Request joins its channel's Outstanding
 * list, due `hold + d(tx)` ms after it arrived (bq_answer_delay), and the one-shot
 * answer timer, armed for the soonest, answers whatever is due; a Request in mode
 * deferred goes to passive level once and is answered when it comes back. Notes are
 * completed at once, and anything else is failed.
 *
 * The reply is made when the Request arrives (the buffer is KMCL's until the packet is
 * completed; the reply depends only on it) and sent when it is due.
 */
#include "vsp.h"

/* Arms the answer timer for the soonest outstanding Request, or stops it. */
static VOID BqArm(BQ_CHANNEL *Vc)
{
	ULONGLONG due = 0, now;
	BOOLEAN any;

	WdfSpinLockAcquire(Vc->Lock);
	any = (BOOLEAN)!IsListEmpty(&Vc->Outstanding);
	if (any)
		due = CONTAINING_RECORD(Vc->Outstanding.Flink, BQ_REQUEST, Link)->Due;
	WdfSpinLockRelease(Vc->Lock);
	if (!any) {
		WdfTimerStop(Vc->AnswerTimer, FALSE);
		return;
	}
	now = KeQueryInterruptTime();
	/* Negative: relative, in 100 ns. Zero is a time long past: it fires at once. */
	WdfTimerStart(Vc->AnswerTimer, due <= now ? 0 : -(LONGLONG)(due - now));
}

/* Sends a Request's reply (or, with its VM discarded, completes it to nobody). */
static VOID BqAnswer(BQ_CHANNEL *Vc, BQ_REQUEST *R)
{
	struct vbt_event ev;

	InterlockedExchangeAdd64(&Vc->Counters.Outstanding, -1);
	InterlockedIncrement64(&Vc->Counters.Answered);
	if (Vc->Discarding) {
		BqKmcl->VmbChannelPacketComplete(R->Packet, NULL, 0);
		ExFreePoolWithTag(R, BQ_POOL_TAG);
		return;
	}
	RtlZeroMemory(&ev, sizeof(ev));
	ev.kind = VBT_PKT_COMPLETE;
	ev.ch = Vc->Ch;
	ev.tx = R->Tx;
	ev.dir = VBT_G2H;
	ev.status = R->Status;
	ev.len = R->ReplyLength;
	ev.digest = bq_fnv1a64(R->Reply, R->ReplyLength);
	BqTrace(&ev);
	BqKmcl->VmbChannelPacketComplete(R->Packet, R->Reply, R->ReplyLength);
	ExFreePoolWithTag(R, BQ_POOL_TAG);
}

/* Answers the Requests due by now (all of them with All), soonest first. */
static VOID BqAnswerDue(BQ_CHANNEL *Vc, BOOLEAN All)
{
	ULONGLONG now = KeQueryInterruptTime();
	LIST_ENTRY due;

	InitializeListHead(&due);
	WdfSpinLockAcquire(Vc->Lock);
	while (!IsListEmpty(&Vc->Outstanding) &&
	       (All || CONTAINING_RECORD(Vc->Outstanding.Flink, BQ_REQUEST, Link)->Due <= now))
		InsertTailList(&due, RemoveHeadList(&Vc->Outstanding));
	WdfSpinLockRelease(Vc->Lock);
	/* Answered outside the lock: each was taken off the list exactly once above. */
	while (!IsListEmpty(&due))
		BqAnswer(Vc, CONTAINING_RECORD(RemoveHeadList(&due), BQ_REQUEST, Link));
	BqArm(Vc);
}

VOID BqAnswerAll(BQ_CHANNEL *Vc)
{
	BqAnswerDue(Vc, TRUE);
}

VOID BqEvtAnswerTimer(WDFTIMER Timer)
{
	BqAnswerDue(BqGetTimerContext(Timer)->Vc, FALSE);
}

/* Whether tx was deferred (this is its redelivery); forgets it. */
static BOOLEAN BqTakeDeferred(BQ_CHANNEL *Vc, ULONGLONG Tx)
{
	BQ_DEFERRED *found = NULL;
	PLIST_ENTRY e;

	WdfSpinLockAcquire(Vc->Lock);
	for (e = Vc->Deferred.Flink; e != &Vc->Deferred; e = e->Flink) {
		if (CONTAINING_RECORD(e, BQ_DEFERRED, Link)->Tx == Tx) {
			RemoveEntryList(e);
			found = CONTAINING_RECORD(e, BQ_DEFERRED, Link);
			break;
		}
	}
	WdfSpinLockRelease(Vc->Lock);
	if (found == NULL)
		return FALSE;
	ExFreePoolWithTag(found, BQ_POOL_TAG);
	return TRUE;
}

/* Remembers that tx was deferred; FALSE when there is no memory to remember. */
static BOOLEAN BqRememberDeferred(BQ_CHANNEL *Vc, ULONGLONG Tx)
{
	BQ_DEFERRED *d = (BQ_DEFERRED *)ExAllocatePool2(POOL_FLAG_NON_PAGED, sizeof(*d), BQ_POOL_TAG);

	if (d == NULL)
		return FALSE;
	d->Tx = Tx;
	WdfSpinLockAcquire(Vc->Lock);
	InsertTailList(&Vc->Deferred, &d->Link);
	WdfSpinLockRelease(Vc->Lock);
	return TRUE;
}

/* Inserts R after every Request due no later than it: arrival order among equals. */
static VOID BqInsertByDue(BQ_CHANNEL *Vc, BQ_REQUEST *R)
{
	PLIST_ENTRY e;

	WdfSpinLockAcquire(Vc->Lock);
	for (e = Vc->Outstanding.Blink; e != &Vc->Outstanding; e = e->Blink)
		if (CONTAINING_RECORD(e, BQ_REQUEST, Link)->Due <= R->Due)
			break;
	/* after e (the list head when every one is due later) */
	R->Link.Flink = e->Flink;
	R->Link.Blink = e;
	e->Flink->Blink = &R->Link;
	e->Flink = &R->Link;
	WdfSpinLockRelease(Vc->Lock);
}

static VOID BqTraceArrival(BQ_CHANNEL *Vc, ULONGLONG Tx, UINT32 Length, ULONGLONG Digest)
{
	struct vbt_event ev;

	RtlZeroMemory(&ev, sizeof(ev));
	ev.kind = VBT_PKT_RECV;
	ev.ch = Vc->Ch;
	ev.tx = Tx;
	ev.dir = VBT_G2H;
	ev.len = Length;
	ev.digest = Digest;
	BqTrace(&ev);
}

static VOID BqFail(BQ_CHANNEL *Vc, VMBPACKETCOMPLETION Packet, ULONGLONG Tx)
{
	struct vbt_event ev;

	RtlZeroMemory(&ev, sizeof(ev));
	ev.kind = VBT_PKT_FAIL;
	ev.ch = Vc->Ch;
	ev.tx = Tx;
	ev.dir = VBT_G2H;
	ev.status = BQ_STATUS_DEVICE_DATA_ERROR;
	BqTrace(&ev);
	InterlockedIncrement64(&Vc->Counters.Failed);
	BqKmcl->VmbChannelPacketFail(Packet);
}

/*
 * One guest packet, at IRQL <= DISPATCH_LEVEL, or at PASSIVE_LEVEL when a packet
 * deferred with VmbChannelPacketDeferToPassive comes back.
 */
VOID BqEvtProcessPacket(VMBCHANNEL Channel, VMBPACKETCOMPLETION Packet, PVOID Buffer,
			UINT32 BufferLength, UINT32 Flags)
{
	BQ_CHANNEL *vc = BqFromChannel(Channel);
	const bq_u8 *bytes = (const bq_u8 *)Buffer;
	struct bq_header h;
	BOOLEAN redelivered;
	BQ_REQUEST *r;
	UINT32 length;
	ULONGLONG digest;

	UNREFERENCED_PARAMETER(Flags);
	if (bq_decode_header(bytes, BufferLength, &h) != 0) {
		/* No header, nothing to answer: a broken guest. */
		BqTraceArrival(vc, 0, BufferLength, bq_fnv1a64(bytes, BufferLength));
		BqFail(vc, Packet, 0);
		return;
	}
	length = h.length < BufferLength ? h.length : BufferLength;
	digest = bq_fnv1a64(bytes, length);
	redelivered = (BOOLEAN)(h.type == BQ_MSG_REQUEST && h.mode == BQ_MODE_DEFERRED &&
				BqTakeDeferred(vc, h.tx));
	if (!redelivered)
		BqTraceArrival(vc, h.tx, length, digest);
	if (h.type == BQ_MSG_NOTE) {
		InterlockedIncrement64(&vc->Counters.NotesReceived);
		BqKmcl->VmbChannelPacketComplete(Packet, NULL, 0);
		return;
	}
	if (h.type != BQ_MSG_REQUEST) {
		BqFail(vc, Packet, h.tx);
		return;
	}
	if (!redelivered) {
		InterlockedIncrement64(&vc->Counters.RequestsReceived);
		if (h.mode == BQ_MODE_DEFERRED && BqRememberDeferred(vc, h.tx)) {
			InterlockedIncrement64(&vc->Counters.Deferred);
			BqKmcl->VmbChannelPacketDeferToPassive(Packet);
			return;
		}
	}
	r = (BQ_REQUEST *)ExAllocatePool2(POOL_FLAG_NON_PAGED, sizeof(*r), BQ_POOL_TAG);
	if (r == NULL) {
		BqFail(vc, Packet, h.tx); /* no memory to keep it: the guest hears at once */
		return;
	}
	r->Packet = Packet;
	r->Tx = h.tx;
	r->Status = bq_status_for(h.tx, bq_is_intact(bytes, BufferLength, &h));
	r->ReplyLength = bq_encode_reply(r->Reply, &h, r->Status, digest);
	/* A deferred one is answered as it comes back; others wait their delay. */
	r->Due = KeQueryInterruptTime() +
		 (redelivered ? 0 : (ULONGLONG)bq_answer_delay(
					    h.tx, h.mode == BQ_MODE_HOLD ? h.hold : 0) * 10000);
	InterlockedIncrement64(&vc->Counters.Outstanding);
	if (redelivered) {
		BqAnswer(vc, r);
		return;
	}
	BqInsertByDue(vc, r);
	BqArm(vc);
}
