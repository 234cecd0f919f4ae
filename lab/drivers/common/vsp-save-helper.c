/* SPDX-License-Identifier: MIT */
/* A KMCL server channel saved into memory and restored from it: vsp-save-helper.h. */
#include <ntddk.h>
#include <wdf.h>
#include <vmbuskernelmodeclientlibapi.h>
#include "vsp-save-helper.h"

/* SaveContinue's first buffer; it grows to what BytesRequired asks for. */
#define VSH_SAVE_CHUNK 4096

/* Makes room for at least Need more bytes at the end of the blob. */
static NTSTATUS VshBlobReserve(PUCHAR *Blob, ULONG *Capacity, ULONG Used, ULONG Need, ULONG Tag)
{
	ULONG capacity = *Capacity;
	PUCHAR bigger;

	if (capacity - Used >= Need)
		return STATUS_SUCCESS;
	while (capacity - Used < Need) {
		if (capacity > 0x7fffffffu / 2)
			return STATUS_INSUFFICIENT_RESOURCES;
		capacity = capacity ? capacity * 2 : VSH_SAVE_CHUNK;
	}
	bigger = (PUCHAR)ExAllocatePool2(POOL_FLAG_NON_PAGED, capacity, Tag);
	if (bigger == NULL)
		return STATUS_INSUFFICIENT_RESOURCES;
	if (*Blob != NULL) {
		RtlCopyMemory(bigger, *Blob, Used);
		ExFreePoolWithTag(*Blob, Tag);
	}
	*Blob = bigger;
	*Capacity = capacity;
	return STATUS_SUCCESS;
}

/* The SaveContinue loop: each call that writes bytes adds one whole segment. */
static NTSTATUS VshSaveLoop(PKMCL_SERVER_INTERFACE_V1 Kmcl, VMBCHANNEL Channel, ULONG Tag,
			    PUCHAR *Blob, ULONG *Used)
{
	ULONG capacity = 0, room = VSH_SAVE_CHUNK;
	NTSTATUS status;

	for (;;) {
		ULONG filled = 0, required = 0;

		status = VshBlobReserve(Blob, &capacity, *Used, sizeof(ULONG) + room, Tag);
		if (!NT_SUCCESS(status))
			return status;
		status = Kmcl->VmbChannelSaveContinue(Channel, *Blob + *Used + sizeof(ULONG),
						      capacity - *Used - sizeof(ULONG), &filled,
						      &required);
		if (status == STATUS_BUFFER_OVERFLOW || NT_SUCCESS(status)) {
			/* Progress: keep what was written as one whole segment. */
			if (filled > 0) {
				RtlCopyMemory(*Blob + *Used, &filled, sizeof(ULONG));
				*Used += sizeof(ULONG) + filled;
			}
			if (status != STATUS_BUFFER_OVERFLOW)
				return STATUS_SUCCESS; /* everything saved */
			if (filled > 0)
				continue; /* more to come: partial progress, not an error */
			/*
			 * "More to come" with nothing written: calling again with the
			 * same buffer would spin for ever. Only a larger one can help.
			 */
			if (required > room) {
				room = required;
				continue;
			}
			return STATUS_UNSUCCESSFUL;
		}
		if (status == STATUS_BUFFER_TOO_SMALL && required > room) {
			/* Nothing written; BytesRequired is the least that makes progress. */
			room = required;
			continue;
		}
		return status; /* a real failure (or a too-small answer that asks for nothing more) */
	}
}

NTSTATUS VshSaveChannel(PKMCL_SERVER_INTERFACE_V1 Kmcl, VMBCHANNEL Channel, ULONG Tag,
			PUCHAR *Blob, ULONG *BlobSize)
{
	PUCHAR blob = NULL;
	ULONG used = 0;
	NTSTATUS status;

	*Blob = NULL;
	*BlobSize = 0;
	status = Kmcl->VmbChannelSaveBegin(Channel);
	if (!NT_SUCCESS(status))
		return status; /* no save happened */
	status = VshSaveLoop(Kmcl, Channel, Tag, &blob, &used);
	/* SaveEnd after every successful SaveBegin, failed Continue included. */
	Kmcl->VmbChannelSaveEnd(Channel);
	if (!NT_SUCCESS(status)) {
		if (blob != NULL)
			ExFreePoolWithTag(blob, Tag);
		return status;
	}
	*Blob = blob;
	*BlobSize = used;
	return STATUS_SUCCESS;
}

NTSTATUS VshRestoreChannel(PKMCL_SERVER_INTERFACE_V1 Kmcl, VMBCHANNEL Channel, PUCHAR Blob,
			   ULONG BlobSize)
{
	ULONG at = 0, length;
	NTSTATUS status;

	for (;;) {
		if (BlobSize - at < sizeof(ULONG))
			return STATUS_INVALID_PARAMETER; /* KMCL wants more than was saved */
		RtlCopyMemory(&length, Blob + at, sizeof(ULONG));
		at += sizeof(ULONG);
		if (length > BlobSize - at)
			return STATUS_INVALID_PARAMETER; /* the blob, damaged */
		status = Kmcl->VmbChannelRestoreFromBuffer(Channel, Blob + at, length);
		at += length;
		if (status != STATUS_MORE_PROCESSING_REQUIRED)
			return status; /* STATUS_SUCCESS, or a real failure */
		/* the segment taken, the next one is wanted: not an error */
	}
}
