/*
 * The Windows guest's trace: JSON Lines in one nonpaged buffer, formatted by
 * sp_trace_format exactly as the Linux guest formats them. seq is assigned under
 * the buffer's lock, so the lines are stored in strictly increasing seq order.
 * A full buffer drops further lines and counts them (TraceDropped), so a trace
 * with holes never passes for a complete one.
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
	Dev->TraceCapacity = Kib * 1024;
	Dev->Trace = (char *)ExAllocatePool2(POOL_FLAG_NON_PAGED, Dev->TraceCapacity,
					     GUEST_POOL_TAG);
	return Dev->Trace != NULL ? STATUS_SUCCESS : STATUS_INSUFFICIENT_RESOURCES;
}

VOID GuestTraceFree(GUEST_DEVICE *Dev)
{
	if (Dev->Trace != NULL)
		ExFreePoolWithTag(Dev->Trace, GUEST_POOL_TAG);
	Dev->Trace = NULL;
}

VOID GuestTrace(GUEST_DEVICE *Dev, struct sp_trace_event *Event)
{
	sp_u32 n = 0;

	Event->src = "hyperv";
	Event->side = "guest";
	WdfSpinLockAcquire(Dev->TraceLock);
	Event->seq = Dev->TraceSeq + 1;
	if (Dev->TraceCapacity - Dev->TraceLength > 1)
		n = sp_trace_format(Dev->Trace + Dev->TraceLength,
				    Dev->TraceCapacity - Dev->TraceLength, Event);
	if (n != 0) {
		Dev->TraceLength += n;
		Dev->TraceSeq++;
	}
	WdfSpinLockRelease(Dev->TraceLock);
	if (n == 0)
		InterlockedIncrement64(&Dev->Counters.TraceDropped);
}

VOID GuestTraceState(GUEST_DEVICE *Dev, const char *State)
{
	struct sp_trace_event ev;

	RtlZeroMemory(&ev, sizeof(ev));
	ev.kind = SP_EV_CH_STATE;
	ev.ch = Dev->Ch;
	ev.state = State;
	GuestTrace(Dev, &ev);
}

VOID GuestTraceClear(GUEST_DEVICE *Dev)
{
	/* seq keeps counting, so reads on both sides of a clear never share one. */
	WdfSpinLockAcquire(Dev->TraceLock);
	Dev->TraceLength = 0;
	WdfSpinLockRelease(Dev->TraceLock);
}

/* Copies trace bytes from Offset; returns how many (0 at the end). */
ULONG GuestTraceRead(GUEST_DEVICE *Dev, ULONGLONG Offset, char *Out, ULONG Size)
{
	ULONG n = 0;

	WdfSpinLockAcquire(Dev->TraceLock);
	if (Offset < Dev->TraceLength) {
		n = Dev->TraceLength - (ULONG)Offset;
		if (n > Size)
			n = Size;
		RtlCopyMemory(Out, Dev->Trace + Offset, n);
	}
	WdfSpinLockRelease(Dev->TraceLock);
	return n;
}
