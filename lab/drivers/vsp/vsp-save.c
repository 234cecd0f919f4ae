/*
 * Save and restore of in-flight host-to-guest packets (SPEC-NOTES 6).
 *
 * Per packet, KMCL saves its own state and asks the VSP for the VSP's:
 * EvtVmbChannelSavePacket writes the 32-byte SaveBuf record of PROTOCOL.md with
 * the two-call sizing protocol, and EvtVmbChannelRestorePacket allocates a fresh
 * VMBPACKET, hands KMCL's bytes to VmbPacketRestore and rebuilds the VSP_TX from
 * the record.
 *
 * Per channel, VspChannelSave pauses the channel and saves it into memory, and
 * VspChannelRestore builds a new channel object and restores it from there, both
 * through ../common/vsp-save-helper.h (SaveBegin / SaveContinue / SaveEnd, the
 * RestoreFromBuffer loop, their partial-progress codes); what is the VSP's own
 * (pausing, starting again after a failed save, what a failed restore leaves it)
 * stays here.
 */
#include "vsp.h"

/* ---- Per packet ---------------------------------------------------------- */

NTSTATUS VspEvtSavePacket(VMBCHANNEL Channel, VMBPACKET Packet, PVOID SaveBuf,
			  UINT32 SaveBufSize, PUINT32 BytesNeeded)
{
	VSP_TX *t = (VSP_TX *)VspKmcl->VmbPacketGetPointer(Packet);
	struct vbt_event ev;

	UNREFERENCED_PARAMETER(Channel);
	if (t == NULL) {
		/* A packet without VSP state (none of ours): nothing to add. */
		*BytesNeeded = 0;
		return STATUS_SUCCESS;
	}
	/* First call: SaveBufSize is 0. Fail it with the size we need. */
	*BytesNeeded = SP_SAVEBUF_SIZE;
	if (SaveBufSize < SP_SAVEBUF_SIZE)
		return STATUS_BUFFER_TOO_SMALL;

	sp_savebuf_encode((sp_u8 *)SaveBuf, &t->Saved);
	RtlZeroMemory(&ev, sizeof(ev));
	ev.kind = VBT_PKT_SAVE;
	ev.ch = t->Vc->Ch;
	ev.tx = t->Saved.tx;
	ev.dir = VBT_H2G;
	ev.lib_len = 0; /* KMCL does not tell us the size of its own part */
	ev.save_len = SP_SAVEBUF_SIZE;
	ev.save_digest = sp_fnv1a64(SaveBuf, SP_SAVEBUF_SIZE);
	VspTrace(&ev);
	InterlockedIncrement64(&t->Vc->Counters.Saved);
	return STATUS_SUCCESS;
}

NTSTATUS VspEvtRestorePacket(VMBCHANNEL Channel, PVOID LibBuf, UINT32 LibBufSize,
			     PVOID SaveBuf, UINT32 SaveBufSize)
{
	PKMCL_SERVER_INTERFACE_V1 kmcl = VspKmcl;
	VSP_CHANNEL *vc = (VSP_CHANNEL *)kmcl->VmbChannelGetPointer(Channel);
	struct vbt_event ev;
	struct sp_saved_tx saved;
	VMBPACKET packet;
	NTSTATUS status;
	VSP_TX *t;

	/* A record we did not write, or damaged on the way, fails the restore. */
	if (SaveBuf == NULL ||
	    sp_savebuf_parse((const sp_u8 *)SaveBuf, SaveBufSize, &saved) != SP_SAVEBUF_OK)
		return STATUS_INVALID_PARAMETER;

	t = (VSP_TX *)ExAllocatePool2(POOL_FLAG_NON_PAGED,
				      FIELD_OFFSET(VSP_TX, Message) + saved.length,
				      VSP_POOL_TAG);
	if (t == NULL)
		return STATUS_INSUFFICIENT_RESOURCES;
	t->Vc = vc;
	t->Saved = saved;
	t->RingBytes = 16 + ((saved.length + 7) & ~7u) + 8;
	/* The message is a function of the record: rebuild it and check the digest. */
	if (sp_encode_message(t->Message, saved.length, saved.type, saved.tx, saved.length,
			      saved.type == SP_MSG_HOST_TRANSACTION ? saved.hold_ms : 0, 0) != 0 ||
	    sp_fnv1a64(t->Message, saved.length) != saved.digest) {
		ExFreePoolWithTag(t, VSP_POOL_TAG);
		return STATUS_INVALID_PARAMETER;
	}

	packet = kmcl->VmbPacketAllocate(Channel);
	if (packet == NULL) {
		ExFreePoolWithTag(t, VSP_POOL_TAG);
		return STATUS_INSUFFICIENT_RESOURCES;
	}
	status = kmcl->VmbPacketRestore(packet, LibBuf, LibBufSize);
	if (!NT_SUCCESS(status)) {
		kmcl->VmbPacketFree(packet);
		ExFreePoolWithTag(t, VSP_POOL_TAG);
		return status;
	}
	/*
	 * Pointers and routines are not part of any saved state (SPEC-NOTES 6.4):
	 * set them again. Restore runs before Enable, so nothing can complete the
	 * packet before they are in place.
	 */
	t->Packet = packet;
	kmcl->VmbPacketSetPointer(packet, t);
	kmcl->VmbPacketSetCompletionRoutine(packet, VspEvtPacketCompletion);

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
	ev.save_digest = sp_fnv1a64(SaveBuf, SP_SAVEBUF_SIZE);
	VspTrace(&ev);
	InterlockedIncrement64(&vc->Counters.Restored);
	return STATUS_SUCCESS;
}

/* ---- Per channel --------------------------------------------------------- */

/*
 * Pauses the channel and saves it into memory (vsp-save-helper.h: SaveBegin, the
 * SaveContinue loop, SaveEnd; the blob's segments go back to RestoreFromBuffer whole).
 */
NTSTATUS VspChannelSave(VSP_CHANNEL *Vc)
{
	PUCHAR blob;
	ULONG size;
	NTSTATUS status;

	/* A restored object not offered yet holds exactly the state it came from. */
	if (Vc->Channel == NULL || Vc->Unoffered)
		return STATUS_INVALID_DEVICE_STATE;
	/*
	 * Pause first: it returns once EvtVmbChannelSuspend has run and every
	 * incoming packet is completed, so no guest request is left half done.
	 * Sends stop here even on a channel its guest closed, where no Suspend
	 * runs: what is sent now would miss the save.
	 */
	VspKmcl->VmbChannelPause(Vc->Channel);
	Vc->Paused = TRUE;
	Vc->Suspended = TRUE;

	status = VshSaveChannel(VspKmcl, Vc->Channel, VSP_POOL_TAG, &blob, &size);
	if (!NT_SUCCESS(status)) {
		/* No save (SaveBegin failed), or a failed one: the channel goes on as before. */
		VspKmcl->VmbChannelStart(Vc->Channel);
		Vc->Paused = FALSE;
		Vc->Suspended = FALSE;
		return status;
	}
	if (Vc->SaveBlob != NULL)
		ExFreePoolWithTag(Vc->SaveBlob, VSP_POOL_TAG);
	Vc->SaveBlob = blob;
	Vc->SaveBlobSize = size;
	return STATUS_SUCCESS;
}

/*
 * A restore that failed: KMCL took back what it had restored, but the packets our
 * restore callback allocated are ours. Frees them, and keeps their transactions on
 * Abandoned: the rescind that follows ends them (PROTOCOL.md: with the rescind itself).
 * Invariant: a VSP_TX on Abandoned has no packet and is on no other list.
 */
static VOID VspAbandonRestored(VSP_CHANNEL *Vc)
{
	LIST_ENTRY gone;

	InitializeListHead(&gone);
	WdfSpinLockAcquire(Vc->Lock);
	while (!IsListEmpty(&Vc->InFlight))
		InsertTailList(&gone, RemoveHeadList(&Vc->InFlight));
	Vc->Counters.InFlightBytes = 0;
	WdfSpinLockRelease(Vc->Lock);
	while (!IsListEmpty(&gone)) {
		VSP_TX *t = CONTAINING_RECORD(RemoveHeadList(&gone), VSP_TX, Link);

		VspKmcl->VmbPacketFree(t->Packet);
		t->Packet = NULL;
		InsertTailList(&Vc->Abandoned, &t->Link);
		InterlockedExchangeAdd64(&Vc->Counters.InFlight, -1);
	}
}

/*
 * Replaces the channel object by one restored from the saved blob: what a VSP
 * does when the VM comes back from a save. The old object must already be
 * given up (`detach` after the save). The new object is not offered yet:
 * `resume ch=N` offers and starts it (VspChannelResume), so a host with several
 * channels restores all of them before it offers any, as Hyper-V restores a
 * VM's devices before it runs the VM.
 */
NTSTATUS VspChannelRestore(VSP_CHANNEL *Vc)
{
	PKMCL_SERVER_INTERFACE_V1 kmcl = VspKmcl;
	NTSTATUS status;

	if (Vc->SaveBlob == NULL)
		return STATUS_INVALID_DEVICE_STATE; /* nothing saved to restore from */
	/*
	 * The old object must be gone first (`detach`, or `discard`). Giving it up here
	 * would disable it, and Disable revokes the offer (REVIEW D4): a guest or loopback
	 * client with the channel still open would see it closed under it and lose its
	 * rings, and the transactions restored for it could never complete.
	 */
	if (Vc->Channel != NULL)
		return STATUS_INVALID_DEVICE_STATE;
	/* What an earlier failed restore abandoned comes back from the same saved state. */
	VspEndAbandoned(Vc, FALSE);

	status = VspChannelConfigure(Vc);
	if (!NT_SUCCESS(status))
		return status;
	status = VshRestoreChannel(kmcl, Vc->Channel, Vc->SaveBlob, Vc->SaveBlobSize);
	if (!NT_SUCCESS(status)) {
		/*
		 * KMCL took back what it had restored, but the packets our restore
		 * callback allocated are ours: free them before the channel object
		 * goes (REVIEW D3); their transactions wait for the rescind.
		 */
		VspAbandonRestored(Vc);
		kmcl->VmbChannelCleanup(Vc->Channel);
		Vc->Channel = NULL;
		return status;
	}

	/* Restore before Enable (SPEC-NOTES 6.5, inferred): `resume` offers it. */
	Vc->Unoffered = TRUE;
	Vc->Rescinded = FALSE;
	return STATUS_SUCCESS;
}
