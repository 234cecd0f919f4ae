/*
 * Host-to-guest traffic: Events sent with WAIT_FOR_COMPLETION (the guest replies) and
 * Notes sent without. Each message's state (BQ_TX) hangs off its VMBPACKET through
 * VmbPacketSetPointer, so EvtVmbChannelSavePacket finds it from the packet alone, and
 * lives until the completion routine runs.
 *
 * pkt.queued cannot be observed through KMCL: as the sample VSP does, the VSP infers
 * it from the ring bytes of every packet sent and not yet completed; when they exceed
 * the guest's incoming ring, the packet just sent cannot all be in the ring. The event
 * carries "inferred": true.
 */
#include "vsp.h"

/* Bytes a packet takes in the ring: 16-byte descriptor, payload padded to 8, trailer. */
ULONG BqRingBytes(UINT32 Length)
{
	return 16 + ((Length + 7) & ~7u) + 8;
}

static NTSTATUS BqSendOne(BQ_CHANNEL *Vc, UINT16 Type, UINT32 Length, UINT32 HoldMs)
{
	PKMCL_SERVER_INTERFACE_V1 kmcl = BqKmcl;
	BOOLEAN wantReply = (BOOLEAN)(Type == BQ_MSG_EVENT);
	ULONGLONG tx = Vc->NextTx + 1;
	ULONG ringCapacity = Vc->RingPages * BQ_PAGE_SIZE;
	struct vbt_event ev;
	BOOLEAN overfull;
	VMBPACKET packet;
	NTSTATUS status;
	BQ_TX *t;

	t = (BQ_TX *)ExAllocatePool2(POOL_FLAG_NON_PAGED, FIELD_OFFSET(BQ_TX, Message) + Length,
				     BQ_POOL_TAG);
	if (t == NULL)
		return STATUS_INSUFFICIENT_RESOURCES;
	t->Vc = Vc;
	if (bq_encode_message(t->Message, Type, tx, Length, 0, wantReply ? HoldMs : 0) != 0) {
		ExFreePoolWithTag(t, BQ_POOL_TAG);
		return STATUS_INVALID_PARAMETER;
	}
	t->Event.tx = tx;
	t->Event.type = Type;
	t->Event.length = Length;
	t->Event.hold = wantReply ? HoldMs : 0;
	t->Event.digest = bq_fnv1a64(t->Message, Length);
	t->RingBytes = BqRingBytes(Length);

	packet = kmcl->VmbPacketAllocate(Vc->Channel);
	if (packet == NULL) {
		ExFreePoolWithTag(t, BQ_POOL_TAG);
		return STATUS_INSUFFICIENT_RESOURCES;
	}
	t->Packet = packet;
	kmcl->VmbPacketSetPointer(packet, t);
	/* Our own routine, so the packet is ours to free. */
	kmcl->VmbPacketSetCompletionRoutine(packet, BqEvtPacketCompletion);

	WdfSpinLockAcquire(Vc->Lock);
	InsertTailList(&Vc->InFlight, &t->Link);
	Vc->Counters.InFlightBytes += t->RingBytes;
	/* Full is capacity - 8: a full ring would look empty. */
	overfull = (BOOLEAN)((ULONGLONG)Vc->Counters.InFlightBytes > ringCapacity - 8);
	/* No guest has the channel open (not yet, or closed it): there is no ring to write. */
	overfull = (BOOLEAN)(overfull || Vc->Unopened);
	WdfSpinLockRelease(Vc->Lock);
	InterlockedIncrement64(&Vc->Counters.InFlight);

	/* The reply may come before VmbPacketSend returns: pkt.send's seq is taken first. */
	RtlZeroMemory(&ev, sizeof(ev));
	ev.seq = BqTraceReserveSeq();
	ev.kind = VBT_PKT_SEND;
	ev.ch = Vc->Ch;
	ev.tx = tx;
	ev.dir = VBT_H2G;
	ev.len = Length;
	ev.digest = t->Event.digest;
	ev.want_completion = wantReply;
	status = kmcl->VmbPacketSend(packet, t->Message, Length, NULL,
				     wantReply ? VMBUS_CHANNEL_FORMAT_FLAG_WAIT_FOR_COMPLETION : 0);
	if (!NT_SUCCESS(status)) {
		WdfSpinLockAcquire(Vc->Lock);
		RemoveEntryList(&t->Link);
		Vc->Counters.InFlightBytes -= t->RingBytes;
		WdfSpinLockRelease(Vc->Lock);
		InterlockedExchangeAdd64(&Vc->Counters.InFlight, -1);
		kmcl->VmbPacketFree(packet);
		ExFreePoolWithTag(t, BQ_POOL_TAG);
		return status;
	}
	Vc->NextTx = tx;
	BqTrace(&ev);
	InterlockedIncrement64(wantReply ? &Vc->Counters.EventsSent : &Vc->Counters.NotesSent);
	if (overfull) {
		RtlZeroMemory(&ev, sizeof(ev));
		ev.kind = VBT_PKT_QUEUED;
		ev.inferred = 1;
		ev.ch = Vc->Ch;
		ev.tx = tx;
		ev.dir = VBT_H2G;
		BqTrace(&ev);
	}
	return STATUS_SUCCESS;
}

NTSTATUS BqSendMany(BQ_CHANNEL *Vc, UINT16 Type, UINT32 Count, UINT32 Length, UINT32 HoldMs)
{
	NTSTATUS status = STATUS_SUCCESS;
	UINT32 i;

	if (Vc->Channel == NULL || Vc->Suspended || Vc->Unoffered)
		return STATUS_INVALID_DEVICE_STATE; /* paused for a save, or not restored yet */
	for (i = 0; i < Count && NT_SUCCESS(status); i++)
		status = BqSendOne(Vc, Type, Length, HoldMs);
	return status;
}

/*
 * The guest replied to an Event, or a Note was copied into the ring, or the channel
 * went away with the packet outstanding. IRQL <= DISPATCH_LEVEL.
 */
VOID BqEvtPacketCompletion(VMBPACKET Packet, NTSTATUS Status, PVOID Buffer, UINT32 BufferLength)
{
	BQ_TX *t = (BQ_TX *)BqKmcl->VmbPacketGetPointer(Packet);
	BQ_CHANNEL *vc = t->Vc;
	struct vbt_event ev;
	BOOLEAN abandoning;
	BOOLEAN retiring;

	WdfSpinLockAcquire(vc->Lock);
	RemoveEntryList(&t->Link);
	vc->Counters.InFlightBytes -= t->RingBytes;
	abandoning = vc->Abandoning;
	retiring = vc->Retiring;
	WdfSpinLockRelease(vc->Lock);
	InterlockedExchangeAdd64(&vc->Counters.InFlight, -1);

	if (t->Event.type == BQ_MSG_EVENT) {
		if (abandoning) {
			/* It lives on in the saved state and completes on the restored object. */
		} else if (NT_SUCCESS(Status) && Buffer != NULL) {
			const bq_u8 *reply = (const bq_u8 *)Buffer;

			RtlZeroMemory(&ev, sizeof(ev));
			ev.kind = VBT_PKT_COMPLETION;
			ev.ch = vc->Ch;
			ev.tx = t->Event.tx;
			ev.dir = VBT_H2G;
			ev.status = bq_reply_status(reply, BufferLength);
			ev.digest = bq_fnv1a64(reply, bq_reply_length(reply, BufferLength));
			BqTrace(&ev);
			InterlockedIncrement64(&vc->Counters.Replies);
		} else {
			/*
			 * Cancelled: no reply came. At a rescind, or after the guest closed
			 * the channel, the Event ends here, and the trace says so with the
			 * status KMCL gave (PROTOCOL.md "Rescind and guest close"); at a
			 * `close` of the channel it just goes.
			 */
			InterlockedIncrement64(&vc->Counters.Cancelled);
			if (retiring && !NT_SUCCESS(Status))
				BqTraceCancel(vc, t->Event.tx, Status);
		}
	}
	ExFreePoolWithTag(t, BQ_POOL_TAG);
	BqKmcl->VmbPacketFree(Packet);
}
