/*
 * Host-to-guest traffic: HostTransactions sent with WAIT_FOR_COMPLETION and
 * Notifies sent without.
 *
 * Each transaction's state (VSP_TX) hangs off its VMBPACKET through
 * VmbPacketSetPointer, so EvtVmbChannelSavePacket can find it from the packet
 * alone, and lives until the completion routine runs. A burst larger than the
 * ring needs nothing special: KMCL queues what does not fit and writes it as the
 * guest drains the ring (SPEC-NOTES 4.2).
 *
 * pkt.queued cannot be observed through KMCL. The VSP infers it (vsp/README.md):
 * it adds up the ring bytes of every packet sent and not yet completed, and when
 * that exceeds the guest's incoming ring, the packet just sent cannot all be in
 * the ring unless the guest has already taken some out. Nor can any packet sent
 * while no guest has the channel open (offered anew, or closed by its guest). The
 * event carries "inferred": true.
 */
#include "vsp.h"

/* Bytes a packet takes in the ring: 16-byte descriptor, payload padded to 8,
 * and the 8-byte trailer (vmbus-ring-format.md).
 */
static ULONG VspRingBytes(UINT32 Length)
{
	return 16 + ((Length + 7) & ~7u) + 8;
}

static VOID VspFreeTx(VSP_TX *Tx)
{
	ExFreePoolWithTag(Tx, VSP_POOL_TAG);
}

/* Sends one message; Type is SP_MSG_HOST_TRANSACTION or SP_MSG_NOTIFY. PASSIVE_LEVEL. */
static NTSTATUS VspSendOne(VSP_CHANNEL *Vc, UINT16 Type, UINT32 Length, UINT32 HoldMs)
{
	PKMCL_SERVER_INTERFACE_V1 kmcl = VspKmcl;
	BOOLEAN wantCompletion = (BOOLEAN)(Type == SP_MSG_HOST_TRANSACTION);
	ULONGLONG tx = Vc->NextTx + 1;
	ULONG ringCapacity = Vc->RingPages * SP_PAGE_SIZE;
	struct vbt_event ev;
	BOOLEAN overfull;
	VMBPACKET packet;
	NTSTATUS status;
	VSP_TX *t;

	t = (VSP_TX *)ExAllocatePool2(POOL_FLAG_NON_PAGED,
				      FIELD_OFFSET(VSP_TX, Message) + Length, VSP_POOL_TAG);
	if (t == NULL)
		return STATUS_INSUFFICIENT_RESOURCES;
	t->Vc = Vc;
	if (sp_encode_message(t->Message, Length, Type, tx, Length,
			      wantCompletion ? HoldMs : 0, 0) != 0) {
		VspFreeTx(t);
		return STATUS_INVALID_PARAMETER;
	}
	t->Saved.type = Type;
	t->Saved.tx = tx;
	t->Saved.length = Length;
	t->Saved.hold_ms = wantCompletion ? HoldMs : 0;
	t->Saved.digest = sp_fnv1a64(t->Message, Length);
	t->RingBytes = VspRingBytes(Length);

	packet = kmcl->VmbPacketAllocate(Vc->Channel);
	if (packet == NULL) {
		VspFreeTx(t);
		return STATUS_INSUFFICIENT_RESOURCES;
	}
	t->Packet = packet;
	kmcl->VmbPacketSetPointer(packet, t);
	/* Our own routine, so the packet is ours to free (the default one frees it). */
	kmcl->VmbPacketSetCompletionRoutine(packet, VspEvtPacketCompletion);

	WdfSpinLockAcquire(Vc->Lock);
	InsertTailList(&Vc->InFlight, &t->Link);
	Vc->Counters.InFlightBytes += t->RingBytes;
	/* Full is capacity - 8: a full ring would look empty (vmbus-ring-format.md). */
	overfull = (BOOLEAN)((ULONGLONG)Vc->Counters.InFlightBytes > ringCapacity - 8);
	/* No guest has the channel open (not yet, or closed it): there is no ring to write. */
	overfull = (BOOLEAN)(overfull || Vc->Unopened);
	WdfSpinLockRelease(Vc->Lock);
	InterlockedIncrement64(&Vc->Counters.InFlight);

	/*
	 * The completion routine may run before VmbPacketSend returns; reserving
	 * pkt.send's seq first keeps it ahead of its pkt.completion in the trace.
	 */
	RtlZeroMemory(&ev, sizeof(ev));
	ev.seq = VspTraceReserveSeq();
	ev.kind = VBT_PKT_SEND;
	ev.ch = Vc->Ch;
	ev.tx = tx;
	ev.dir = VBT_H2G;
	ev.len = Length;
	ev.digest = t->Saved.digest;
	ev.want_completion = wantCompletion;

	status = kmcl->VmbPacketSend(packet, t->Message, Length, NULL,
				     wantCompletion ? VMBUS_CHANNEL_FORMAT_FLAG_WAIT_FOR_COMPLETION : 0);
	if (!NT_SUCCESS(status)) {
		WdfSpinLockAcquire(Vc->Lock);
		RemoveEntryList(&t->Link);
		Vc->Counters.InFlightBytes -= t->RingBytes;
		WdfSpinLockRelease(Vc->Lock);
		InterlockedExchangeAdd64(&Vc->Counters.InFlight, -1);
		kmcl->VmbPacketFree(packet);
		VspFreeTx(t);
		return status;
	}
	Vc->NextTx = tx;
	VspTrace(&ev);
	InterlockedIncrement64(wantCompletion ? &Vc->Counters.TransactionsSent :
						&Vc->Counters.NotifiesSent);
	if (overfull) {
		RtlZeroMemory(&ev, sizeof(ev));
		ev.kind = VBT_PKT_QUEUED;
		ev.inferred = 1;
		ev.ch = Vc->Ch;
		ev.tx = tx;
		ev.dir = VBT_H2G;
		VspTrace(&ev);
	}
	return STATUS_SUCCESS;
}

NTSTATUS VspSendMany(VSP_CHANNEL *Vc, UINT16 Type, UINT32 Count, UINT32 Length,
		     UINT32 HoldMs)
{
	NTSTATUS status = STATUS_SUCCESS;
	UINT32 i;

	if (Vc->Channel == NULL || Vc->Suspended)
		return STATUS_INVALID_DEVICE_STATE; /* paused for a save, or saved and not restored */
	for (i = 0; i < Count && NT_SUCCESS(status); i++)
		status = VspSendOne(Vc, Type, Length, HoldMs);
	return status;
}

/*
 * The guest completed a HostTransaction, or a Notify was copied into the ring,
 * or the channel went away with the packet outstanding. IRQL <= DISPATCH_LEVEL.
 */
VOID VspEvtPacketCompletion(VMBPACKET Packet, NTSTATUS Status, PVOID Buffer,
			    UINT32 BufferLength)
{
	VSP_TX *t = (VSP_TX *)VspKmcl->VmbPacketGetPointer(Packet);
	VSP_CHANNEL *vc = t->Vc;
	struct vbt_event ev;
	struct sp_completion c;
	BOOLEAN abandoning, retiring;

	WdfSpinLockAcquire(vc->Lock);
	RemoveEntryList(&t->Link);
	vc->Counters.InFlightBytes -= t->RingBytes;
	abandoning = vc->Abandoning;
	retiring = vc->Retiring;
	WdfSpinLockRelease(vc->Lock);
	InterlockedExchangeAdd64(&vc->Counters.InFlight, -1);

	if (t->Saved.type == SP_MSG_HOST_TRANSACTION) {
		if (abandoning) {
			/*
			 * The channel object is being replaced after a save; this
			 * packet lives on in the saved state and completes on the
			 * restored channel. Tracing a completion here would be false.
			 */
		} else if (NT_SUCCESS(Status) && Buffer != NULL &&
			   sp_decode_completion((const sp_u8 *)Buffer, BufferLength, &c) == 0) {
			RtlZeroMemory(&ev, sizeof(ev));
			ev.kind = VBT_PKT_COMPLETION;
			ev.ch = vc->Ch;
			ev.tx = t->Saved.tx;
			ev.dir = VBT_H2G;
			ev.status = c.status;
			ev.digest = sp_fnv1a64(Buffer, SP_COMPLETION_SIZE);
			VspTrace(&ev);
			InterlockedIncrement64(&vc->Counters.Completions);
			if (c.tx != t->Saved.tx || c.request_digest != t->Saved.digest)
				InterlockedIncrement64(&vc->Counters.CompletionMismatch);
		} else {
			/*
			 * Cancelled: no completion arrived. At a rescind, or after the
			 * guest closed the channel, the transaction ends here, and the
			 * trace says so with the status KMCL gave (PROTOCOL.md).
			 */
			InterlockedIncrement64(&vc->Counters.Cancelled);
			if (retiring && !NT_SUCCESS(Status)) {
				RtlZeroMemory(&ev, sizeof(ev));
				ev.kind = VBT_PKT_CANCEL;
				ev.ch = vc->Ch;
				ev.tx = t->Saved.tx;
				ev.dir = VBT_H2G;
				ev.status = (UINT32)Status;
				VspTrace(&ev);
			}
		}
	}
	VspFreeTx(t);
	VspKmcl->VmbPacketFree(Packet);
}
