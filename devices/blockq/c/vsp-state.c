/*
 * A channel's saved state leaving the VSP with its VM and coming back, on this host or
 * another (IOCTL_BLOCKQ_EXPORT and _IMPORT, blockq-control.h). What comes in is checked
 * before it replaces anything: magic, version, sizes, and for a channel the VSP has,
 * that it is not in use and has the same instance GUID.
 */
#include "vsp.h"

NTSTATUS BqStateExport(BQ_DEVICE *Dev, WDFREQUEST Request, size_t *Written)
{
	struct blockq_state_ref *ref;
	struct blockq_state *out;
	size_t inLength, outLength;
	BQ_CHANNEL *vc;
	NTSTATUS status;

	status = WdfRequestRetrieveInputBuffer(Request, sizeof(*ref), (PVOID *)&ref, &inLength);
	if (!NT_SUCCESS(status))
		return status;
	vc = BqChannelFind(Dev, ref->ch);
	if (vc == NULL)
		return STATUS_NOT_FOUND;
	if (vc->SaveBlob == NULL)
		return STATUS_INVALID_DEVICE_STATE; /* `save ch=N` first */
	status = WdfRequestRetrieveOutputBuffer(Request, sizeof(*out) + vc->SaveBlobSize,
						(PVOID *)&out, &outLength);
	if (!NT_SUCCESS(status))
		return status;
	RtlZeroMemory(out, sizeof(*out));
	out->magic = BLOCKQ_STATE_MAGIC;
	out->version = BLOCKQ_STATE_VERSION;
	out->ch = vc->Ch;
	out->ring_pages = vc->RingPages;
	out->next_tx = vc->NextTx;
	RtlCopyMemory(out->instance, &vc->Instance, sizeof(out->instance));
	out->blob_bytes = vc->SaveBlobSize;
	out->loopback = vc->Loopback;
	RtlCopyMemory(out + 1, vc->SaveBlob, vc->SaveBlobSize);
	*Written = sizeof(*out) + vc->SaveBlobSize;
	return STATUS_SUCCESS;
}

NTSTATUS BqStateImport(BQ_DEVICE *Dev, WDFREQUEST Request)
{
	const struct blockq_state *s;
	size_t length;
	BQ_CHANNEL *vc;
	PUCHAR blob;
	NTSTATUS status;

	status = WdfRequestRetrieveInputBuffer(Request, sizeof(*s), (PVOID *)&s, &length);
	if (!NT_SUCCESS(status))
		return status;
	if (s->magic != BLOCKQ_STATE_MAGIC || s->version != BLOCKQ_STATE_VERSION ||
	    s->blob_bytes == 0 || s->blob_bytes != length - sizeof(*s) || s->ring_pages == 0 ||
	    s->loopback > 1)
		return STATUS_INVALID_PARAMETER;
	vc = BqChannelFind(Dev, s->ch);
	if (vc != NULL &&
	    (vc->Channel != NULL || !RtlEqualMemory(&vc->Instance, s->instance, sizeof(GUID)) ||
	     vc->Loopback != (BOOLEAN)s->loopback))
		return STATUS_INVALID_DEVICE_STATE;
	/*
	 * A channel offered into a VM needs that VM's handle, which only `open ... handle=H`
	 * brings: one this VSP does not have yet (a migration's destination) cannot be
	 * restored from a state alone. Refused rather than fail at `restore`.
	 */
	if (vc == NULL && !s->loopback)
		return STATUS_INVALID_DEVICE_STATE;
	blob = (PUCHAR)ExAllocatePool2(POOL_FLAG_NON_PAGED, s->blob_bytes, BQ_POOL_TAG);
	if (blob == NULL)
		return STATUS_INSUFFICIENT_RESOURCES;
	if (vc == NULL) {
		status = BqChannelCreate(Dev, s->ch, s->instance, s->ring_pages, &vc);
		if (!NT_SUCCESS(status)) {
			ExFreePoolWithTag(blob, BQ_POOL_TAG);
			return status;
		}
		vc->Loopback = TRUE;
	}
	RtlCopyMemory(blob, s + 1, s->blob_bytes);
	if (vc->SaveBlob != NULL)
		ExFreePoolWithTag(vc->SaveBlob, BQ_POOL_TAG);
	vc->SaveBlob = blob;
	vc->SaveBlobSize = s->blob_bytes;
	vc->NextTx = s->next_tx; /* the numbering goes on from the saved VM's */
	return STATUS_SUCCESS;
}
