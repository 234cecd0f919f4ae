/*
 * Save and restore. Per packet, KMCL saves its own part and asks the VSP for its
 * SaveBuf record with the two-call sizing protocol: blockq's record is 32, 40 or 48
 * bytes by tx, so the size asked changes from one packet to the next. Per channel,
 * BqChannelSave pauses the channel and saves it into memory, and BqChannelRestore
 * restores a new channel object from there, both through the save helper every VSP
 * may use (lab/drivers/common/vsp-save-helper.h: SaveBegin / SaveContinue / SaveEnd,
 * the RestoreFromBuffer loop, their partial-progress codes).
 */
#include "vsp.h"

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
	/*
	 * The message is a function of the record; KMCL's part carries what was sent. The
	 * record does not say Event or Note (PROTOCOL.md "SaveBuf"): a Note saved while it
	 * waited in KMCL is known by the digest of the message as sent, so that a rescind
	 * or the guest's close does not end it as a cancelled Event.
	 */
	if (saved.hold == 0 &&
	    bq_encode_message(t->Message, BQ_MSG_NOTE, saved.tx, saved.length, 0, 0) == 0 &&
	    bq_fnv1a64(t->Message, saved.length) == saved.digest) {
		t->Event.type = BQ_MSG_NOTE;
	} else if (bq_encode_message(t->Message, BQ_MSG_EVENT, saved.tx, saved.length, 0,
				     saved.hold)) {
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

/*
 * `save ch=N`: pause (Suspend answers what is outstanding), then save into memory
 * (vsp-save-helper.h: SaveBegin, the SaveContinue loop, SaveEnd).
 */
NTSTATUS BqChannelSave(BQ_CHANNEL *Vc)
{
	PUCHAR blob;
	ULONG size;
	NTSTATUS status;

	if (Vc->Channel == NULL || Vc->Unoffered)
		return STATUS_INVALID_DEVICE_STATE;
	BqKmcl->VmbChannelPause(Vc->Channel);
	/* Sends stop here even on a channel its guest closed, where no Suspend runs. */
	Vc->Suspended = TRUE;
	status = VshSaveChannel(BqKmcl, Vc->Channel, BQ_POOL_TAG, &blob, &size);
	if (!NT_SUCCESS(status)) {
		BqKmcl->VmbChannelStart(Vc->Channel); /* no save, or a failed one: carry on */
		Vc->Suspended = FALSE;
		return status;
	}
	if (Vc->SaveBlob != NULL)
		ExFreePoolWithTag(Vc->SaveBlob, BQ_POOL_TAG);
	Vc->SaveBlob = blob;
	Vc->SaveBlobSize = size;
	return STATUS_SUCCESS;
}

/*
 * Frees the packet of every message restored onto an object a failed restore gives up,
 * and keeps the message in Abandoned: the rescind that follows (the host's fallback for
 * a channel it could not restore) ends each Event as cancelled.
 */
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
		t->Packet = NULL;
		InsertTailList(&Vc->Abandoned, &t->Link);
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
	NTSTATUS status;

	status = BqChannelGiveUp(Vc, FALSE);
	if (!NT_SUCCESS(status))
		return status;
	BqEndAbandoned(Vc, FALSE); /* this restore brings them back from the same state */
	status = BqChannelConfigure(Vc);
	if (!NT_SUCCESS(status))
		return status;
	status = VshRestoreChannel(BqKmcl, Vc->Channel, Vc->SaveBlob, Vc->SaveBlobSize);
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
