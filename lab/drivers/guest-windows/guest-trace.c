/*
 * The Windows guest's trace: JSON Lines in one nonpaged buffer, kept by the
 * trace library (trace-lib/vmbus_bench_trace.h, struct vbt_buffer) exactly as
 * the Linux guest keeps its own. seq is assigned under the buffer's lock, so
 * the lines are stored in strictly increasing seq order. A full buffer drops
 * further lines and counts them (TraceDropped), so a trace with holes never
 * passes for a complete one.
 */
#include "guest.h"

NTSTATUS GuestTraceInit(GUEST_DEVICE *Dev, ULONG Kib)
{
	WDF_OBJECT_ATTRIBUTES attributes;
	NTSTATUS status;

	if (Kib == 0 || Kib > 1024 * 1024)
		return STATUS_INVALID_PARAMETER;
	WDF_OBJECT_ATTRIBUTES_INIT(&attributes);
	attributes.ParentObject = Dev->Device;
	status = WdfSpinLockCreate(&attributes, &Dev->TraceLock);
	if (!NT_SUCCESS(status))
		return status;
	Dev->TraceMemory = (char *)ExAllocatePool2(POOL_FLAG_NON_PAGED, Kib * 1024,
						   GUEST_POOL_TAG);
	vbt_buffer_init(&Dev->Trace, Dev->TraceMemory, Kib * 1024, "hyperv", "guest");
	return Dev->TraceMemory != NULL ? STATUS_SUCCESS : STATUS_INSUFFICIENT_RESOURCES;
}

VOID GuestTraceFree(GUEST_DEVICE *Dev)
{
	if (Dev->TraceMemory != NULL)
		ExFreePoolWithTag(Dev->TraceMemory, GUEST_POOL_TAG);
	Dev->TraceMemory = NULL;
	vbt_buffer_init(&Dev->Trace, NULL, 0, "hyperv", "guest");
}

VOID GuestTrace(GUEST_DEVICE *Dev, struct vbt_event *Event)
{
	int written;

	WdfSpinLockAcquire(Dev->TraceLock);
	written = vbt_buffer_append(&Dev->Trace, Event);
	WdfSpinLockRelease(Dev->TraceLock);
	if (!written)
		InterlockedIncrement64(&Dev->Counters.TraceDropped);
}

VOID GuestTraceState(GUEST_DEVICE *Dev, const char *State)
{
	struct vbt_event ev;

	RtlZeroMemory(&ev, sizeof(ev));
	ev.kind = VBT_CH_STATE;
	ev.ch = Dev->Ch;
	ev.state = State;
	GuestTrace(Dev, &ev);
}

VOID GuestTraceClear(GUEST_DEVICE *Dev)
{
	/* seq keeps counting, so reads on both sides of a clear never share one. */
	WdfSpinLockAcquire(Dev->TraceLock);
	vbt_buffer_clear(&Dev->Trace);
	WdfSpinLockRelease(Dev->TraceLock);
}

/* Copies trace bytes from Offset; returns how many (0 at the end). */
ULONG GuestTraceRead(GUEST_DEVICE *Dev, ULONGLONG Offset, char *Out, ULONG Size)
{
	ULONG n;

	WdfSpinLockAcquire(Dev->TraceLock);
	n = vbt_buffer_read(&Dev->Trace, Offset, Out, Size);
	WdfSpinLockRelease(Dev->TraceLock);
	return n;
}
