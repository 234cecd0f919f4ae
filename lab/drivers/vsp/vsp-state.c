/*
 * A channel's saved state leaving the VSP with its VM and coming back into a VSP,
 * on this host or another (IOCTL_SAMPLE_VSP_EXPORT and _IMPORT, declared with the
 * record's layout in ../common/sample-control.h). On Hyper-V the VM's worker
 * process would carry it in the VM's saved state; no public route for a
 * third-party VSP is known, so the bench carries it (on the emulator, in the
 * emulated VM's saved state) and says so. What comes in is checked before it
 * replaces anything: magic, version, sizes, and, for a channel the VSP has, its
 * instance GUID.
 */
#include "vsp.h"

/*
 * IOCTL_SAMPLE_VSP_EXPORT: the channel's saved state with what identifies the
 * channel, for a VM that moves to another host or is kept in a checkpoint.
 */
NTSTATUS VspStateExport(VSP_DEVICE *Dev, WDFREQUEST Request, size_t *Written)
{
	struct sample_vsp_state_ref *ref;
	struct sample_vsp_state *out;
	size_t inLength, outLength;
	VSP_CHANNEL *vc;
	NTSTATUS status;

	status = WdfRequestRetrieveInputBuffer(Request, sizeof(*ref), (PVOID *)&ref, &inLength);
	if (!NT_SUCCESS(status))
		return status;
	vc = VspChannelFind(Dev, ref->ch);
	if (vc == NULL)
		return STATUS_NOT_FOUND;
	if (vc->SaveBlob == NULL)
		return STATUS_INVALID_DEVICE_STATE; /* nothing saved: `save ch=N` first */
	status = WdfRequestRetrieveOutputBuffer(Request, sizeof(*out) + vc->SaveBlobSize,
						(PVOID *)&out, &outLength);
	if (!NT_SUCCESS(status))
		return status;
	RtlZeroMemory(out, sizeof(*out));
	out->magic = SAMPLE_VSP_STATE_MAGIC;
	out->version = SAMPLE_VSP_STATE_VERSION;
	out->ch = vc->Ch;
	out->ring_pages = vc->RingPages;
	out->next_tx = vc->NextTx;
	RtlCopyMemory(out->instance, &vc->Instance, sizeof(out->instance));
	out->loopback = vc->Loopback ? 1 : 0;
	out->blob_bytes = vc->SaveBlobSize;
	RtlCopyMemory(out + 1, vc->SaveBlob, vc->SaveBlobSize);
	*Written = sizeof(*out) + vc->SaveBlobSize;
	return STATUS_SUCCESS;
}

/*
 * A channel known only from an imported saved state: the VSP_CHANNEL, its lock
 * and hold timer, but no channel object (the `restore` command makes it). Only a
 * loopback channel: one attached to a VM needs that VM's VMBus handle, which only
 * `open ... handle=H` can bring.
 */
static NTSTATUS VspChannelAdopt(VSP_DEVICE *Dev, const struct sample_vsp_state *S,
				VSP_CHANNEL **Out)
{
	if (!S->loopback)
		return STATUS_INVALID_DEVICE_STATE;
	return VspChannelInit(Dev, S->ch, S->instance, S->ring_pages, TRUE, Out);
}

/* IOCTL_SAMPLE_VSP_IMPORT: the channel's saved state becomes what an export gave. */
NTSTATUS VspStateImport(VSP_DEVICE *Dev, WDFREQUEST Request)
{
	const struct sample_vsp_state *s;
	size_t length;
	VSP_CHANNEL *vc;
	PUCHAR blob;
	NTSTATUS status;

	status = WdfRequestRetrieveInputBuffer(Request, sizeof(*s), (PVOID *)&s, &length);
	if (!NT_SUCCESS(status))
		return status;
	/* Ours, whole, and of a size we could have written. */
	if (s->magic != SAMPLE_VSP_STATE_MAGIC || s->version != SAMPLE_VSP_STATE_VERSION ||
	    s->blob_bytes == 0 || s->blob_bytes != length - sizeof(*s) || s->ring_pages == 0)
		return STATUS_INVALID_PARAMETER;
	vc = VspChannelFind(Dev, s->ch);
	if (vc != NULL && (vc->Channel != NULL ||
			   !RtlEqualMemory(&vc->Instance, s->instance, sizeof(GUID))))
		return STATUS_INVALID_DEVICE_STATE; /* in use, or another channel's state */
	blob = (PUCHAR)ExAllocatePool2(POOL_FLAG_NON_PAGED, s->blob_bytes, VSP_POOL_TAG);
	if (blob == NULL)
		return STATUS_INSUFFICIENT_RESOURCES;
	if (vc == NULL) {
		status = VspChannelAdopt(Dev, s, &vc);
		if (!NT_SUCCESS(status)) {
			ExFreePoolWithTag(blob, VSP_POOL_TAG);
			return status;
		}
	}
	RtlCopyMemory(blob, s + 1, s->blob_bytes);
	if (vc->SaveBlob != NULL)
		ExFreePoolWithTag(vc->SaveBlob, VSP_POOL_TAG);
	vc->SaveBlob = blob;
	vc->SaveBlobSize = s->blob_bytes;
	/* The numbering goes on from the saved VM's, not from this host's last. */
	vc->NextTx = s->next_tx;
	return STATUS_SUCCESS;
}
