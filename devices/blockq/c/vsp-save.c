/*
 * Save and restore. Per packet, KMCL saves its own part and asks the VSP for its
 * SaveBuf record with the two-call sizing protocol: blockq's record is 32, 40 or 48
 * bytes by tx, so the size asked changes from one packet to the next. Per channel,
 * BqChannelSave drives SaveBegin / SaveContinue / SaveEnd into memory, one segment
 * (a ULONG length, then the bytes) per SaveContinue output, and BqChannelRestore
 * feeds those segments, whole, to RestoreFromBuffer on a new channel object.
 *
 * STATUS_BUFFER_OVERFLOW (SaveContinue made progress, call again) and
 * STATUS_MORE_PROCESSING_REQUIRED (RestoreFromBuffer wants the next chunk) are not
 * NT_SUCCESS: they are tested first, every time.
 */
#include "vsp.h"

#define BQ_SAVE_CHUNK 4096

NTSTATUS BqEvtSavePacket(VMBCHANNEL Channel, VMBPACKET Packet, PVOID SaveBuf,
			 UINT32 SaveBufSize, PUINT32 BytesNeeded)
{
	BQ_TX *t = (BQ_TX *)BqKmcl->VmbPacketGetPointer(Packet);
	struct vbt_event ev;
	bq_u32 n;

	UNREFERENCED_PARAMETER(Channel);
	if (t == NULL) {
		*BytesNeeded = 0;
		return STATUS_SUCCESS;
	}
	n = bq_record_size(t->Event.tx);
	*BytesNeeded = n;
	if (SaveBuf == NULL || SaveBufSize < n)
		return STATUS_BUFFER_TOO_SMALL; /* the sizing call */
	bq_record_encode((bq_u8 *)SaveBuf, &t->Event);
	RtlZeroMemory(&ev, sizeof(ev));
	ev.kind = VBT_PKT_SAVE;
	ev.ch = t->Vc->Ch;
	ev.tx = t->Event.tx;
	ev.dir = VBT_H2G;
	ev.lib_len = 0; /* KMCL does not tell a VSP the size of its own part */
	ev.save_len = n;
	ev.save_digest = bq_fnv1a64(SaveBuf, n);
	BqTrace(&ev);
	InterlockedIncrement64(&t->Vc->Counters.Saved);
	return STATUS_SUCCESS;
}

NTSTATUS BqEvtRestorePacket(VMBCHANNEL Channel, PVOID LibBuf, UINT32 LibBufSize, PVOID SaveBuf,
			    UINT32 SaveBufSize)
{
	PKMCL_SERVER_INTERFACE_V1 kmcl = BqKmcl;
	BQ_CHANNEL *vc = BqFromChannel(Channel);
	struct vbt_event ev;
	struct bq_event saved;
	VMBPACKET packet;
	NTSTATUS status;
	BQ_TX *t;

	/* A record of another size, magic or version is not ours: the restore fails. */
	if (SaveBuf == NULL || bq_record_parse((const bq_u8 *)SaveBuf, SaveBufSize, &saved) != 0 ||
	    saved.length < BQ_HEADER_SIZE || saved.length > BQ_MAX_MESSAGE_SIZE)
		return STATUS_INVALID_PARAMETER;
	t = (BQ_TX *)ExAllocatePool2(POOL_FLAG_NON_PAGED,
				     FIELD_OFFSET(BQ_TX, Message) + saved.length, BQ_POOL_TAG);
	if (t == NULL)
		return STATUS_INSUFFICIENT_RESOURCES;
	t->Vc = vc;
	t->Event = saved;
	t->RingBytes = BqRingBytes(saved.length);
	/* The message is a function of the record; KMCL's part carries what was sent. */
	if (bq_encode_message(t->Message, BQ_MSG_EVENT, saved.tx, saved.length, 0, saved.hold)) {
		ExFreePoolWithTag(t, BQ_POOL_TAG);
		return STATUS_INVALID_PARAMETER;
	}
	packet = kmcl->VmbPacketAllocate(Channel);
	if (packet == NULL) {
		ExFreePoolWithTag(t, BQ_POOL_TAG);
		return STATUS_INSUFFICIENT_RESOURCES;
	}
	status = kmcl->VmbPacketRestore(packet, LibBuf, LibBufSize);
	if (!NT_SUCCESS(status)) {
		kmcl->VmbPacketFree(packet);
		ExFreePoolWithTag(t, BQ_POOL_TAG);
		return status;
	}
	/* Pointers and routines are not saved: set them again, before Enable. */
	t->Packet = packet;
	kmcl->VmbPacketSetPointer(packet, t);
	kmcl->VmbPacketSetCompletionRoutine(packet, BqEvtPacketCompletion);
	WdfSpinLockAcquire(vc->Lock);
	InsertTailList(&vc->InFlight, &t->Link);
	vc->Counters.InFlightBytes += t->RingBytes;
	WdfSpinLockRelease(vc->Lock);
	InterlockedIncrement64(&vc->Counters.InFlight);
	if (saved.tx > vc->NextTx)
		vc->NextTx = saved.tx;

	RtlZeroMemory(&ev, sizeof(ev));
	ev.kind = VBT_PKT_RESTORE;
	ev.ch = vc->Ch;
	ev.tx = saved.tx;
	ev.dir = VBT_H2G;
	ev.save_digest = bq_fnv1a64(SaveBuf, SaveBufSize);
	BqTrace(&ev);
	InterlockedIncrement64(&vc->Counters.Restored);
	return STATUS_SUCCESS;
}

/* Makes room for Need more bytes at the end of the blob. */
static NTSTATUS BqBlobReserve(PUCHAR *Blob, ULONG *Capacity, ULONG Used, ULONG Need)
{
	ULONG capacity = *Capacity;
	PUCHAR bigger;

	if (capacity - Used >= Need)
		return STATUS_SUCCESS;
	while (capacity - Used < Need) {
		if (capacity > 0x7fffffffu / 2)
			return STATUS_INSUFFICIENT_RESOURCES;
		capacity = capacity ? capacity * 2 : BQ_SAVE_CHUNK;
	}
	bigger = (PUCHAR)ExAllocatePool2(POOL_FLAG_NON_PAGED, capacity, BQ_POOL_TAG);
	if (bigger == NULL)
		return STATUS_INSUFFICIENT_RESOURCES;
	if (*Blob != NULL) {
		RtlCopyMemory(bigger, *Blob, Used);
		ExFreePoolWithTag(*Blob, BQ_POOL_TAG);
	}
	*Blob = bigger;
	*Capacity = capacity;
	return STATUS_SUCCESS;
}

/* The SaveContinue loop; SaveEnd is the caller's. */
static NTSTATUS BqSaveLoop(BQ_CHANNEL *Vc, PUCHAR *Blob, ULONG *Used)
{
	ULONG capacity = 0, room = BQ_SAVE_CHUNK;
	NTSTATUS status;

	for (;;) {
		ULONG filled = 0, required = 0;

		status = BqBlobReserve(Blob, &capacity, *Used, sizeof(ULONG) + room);
		if (!NT_SUCCESS(status))
			return status;
		status = BqKmcl->VmbChannelSaveContinue(Vc->Channel, *Blob + *Used + sizeof(ULONG),
							capacity - *Used - sizeof(ULONG), &filled,
							&required);
		if (status == STATUS_BUFFER_OVERFLOW || NT_SUCCESS(status)) {
			if (filled > 0) {
				RtlCopyMemory(*Blob + *Used, &filled, sizeof(ULONG));
				*Used += sizeof(ULONG) + filled;
			}
			if (status != STATUS_BUFFER_OVERFLOW)
				return STATUS_SUCCESS;
			if (filled > 0)
				continue;
			/* "More to come" with nothing written: only a larger buffer can help. */
			if (required > room) {
				room = required;
				continue;
			}
			return STATUS_UNSUCCESSFUL;
		}
		if (status == STATUS_BUFFER_TOO_SMALL && required > room) {
			room = required;
			continue;
		}
		return status;
	}
}

/* `save ch=N`: pause (Suspend answers what is outstanding), then save into memory. */
NTSTATUS BqChannelSave(BQ_CHANNEL *Vc)
{
	PUCHAR blob = NULL;
	ULONG used = 0;
	NTSTATUS status;

	if (Vc->Channel == NULL || Vc->Unoffered)
		return STATUS_INVALID_DEVICE_STATE;
	BqKmcl->VmbChannelPause(Vc->Channel);
	status = BqKmcl->VmbChannelSaveBegin(Vc->Channel);
	if (!NT_SUCCESS(status)) {
		BqKmcl->VmbChannelStart(Vc->Channel); /* no save happened: carry on */
		return status;
	}
	status = BqSaveLoop(Vc, &blob, &used);
	BqKmcl->VmbChannelSaveEnd(Vc->Channel);
	if (!NT_SUCCESS(status)) {
		if (blob != NULL)
			ExFreePoolWithTag(blob, BQ_POOL_TAG);
		BqKmcl->VmbChannelStart(Vc->Channel);
		return status;
	}
	if (Vc->SaveBlob != NULL)
		ExFreePoolWithTag(Vc->SaveBlob, BQ_POOL_TAG);
	Vc->SaveBlob = blob;
	Vc->SaveBlobSize = used;
	return STATUS_SUCCESS;
}

/* Frees every message restored onto an object a failed restore gives up. */
static VOID BqFreeRestored(BQ_CHANNEL *Vc)
{
	LIST_ENTRY gone;

	InitializeListHead(&gone);
	WdfSpinLockAcquire(Vc->Lock);
	while (!IsListEmpty(&Vc->InFlight))
		InsertTailList(&gone, RemoveHeadList(&Vc->InFlight));
	Vc->Counters.InFlightBytes = 0;
	WdfSpinLockRelease(Vc->Lock);
	while (!IsListEmpty(&gone)) {
		BQ_TX *t = CONTAINING_RECORD(RemoveHeadList(&gone), BQ_TX, Link);

		BqKmcl->VmbPacketFree(t->Packet);
		ExFreePoolWithTag(t, BQ_POOL_TAG);
		InterlockedExchangeAdd64(&Vc->Counters.InFlight, -1);
	}
}

/*
 * `restore ch=N`: a new channel object from the saved blob (an old one still there is
 * given up first), not offered yet: `resume ch=N` offers it, so a host restores every
 * channel of a VM before it offers any.
 */
NTSTATUS BqChannelRestore(BQ_CHANNEL *Vc)
{
	ULONG at = 0, length;
	NTSTATUS status;

	status = BqChannelGiveUp(Vc, FALSE);
	if (!NT_SUCCESS(status))
		return status;
	status = BqChannelConfigure(Vc);
	if (!NT_SUCCESS(status))
		return status;
	for (;;) {
		if (Vc->SaveBlobSize - at < sizeof(ULONG)) {
			status = STATUS_INVALID_PARAMETER; /* KMCL wants more than was saved */
			break;
		}
		RtlCopyMemory(&length, Vc->SaveBlob + at, sizeof(ULONG));
		at += sizeof(ULONG);
		if (length > Vc->SaveBlobSize - at) {
			status = STATUS_INVALID_PARAMETER;
			break;
		}
		status = BqKmcl->VmbChannelRestoreFromBuffer(Vc->Channel, Vc->SaveBlob + at, length);
		at += length;
		if (status != STATUS_MORE_PROCESSING_REQUIRED)
			break;
	}
	if (!NT_SUCCESS(status)) {
		/* KMCL took back what it restored; the packets our callback made are ours. */
		BqFreeRestored(Vc);
		BqKmcl->VmbChannelCleanup(Vc->Channel);
		Vc->Channel = NULL;
		return status;
	}
	Vc->Unoffered = TRUE;
	return STATUS_SUCCESS;
}
