/*
 * The Windows guest's trace: JSON Lines in one nonpaged buffer, kept by the
 * trace library (trace-lib/vmbus_bench_trace.h, struct vbt_buffer) exactly as
 * the Linux guest keeps its own. The buffer is the driver's, not a device's:
 * allocated in DriverEntry and freed in EvtDriverUnload, so it records a
 * device's removal (a rescind, the guest's own close) and keeps it to be read
 * after. seq is assigned under the buffer's lock, so the lines are stored in
 * strictly increasing seq order. A full buffer drops further lines and counts
 * them (TraceDropped), so a trace with holes never passes for a complete one.
 */
#include "guest.h"

NTSTATUS GuestTraceInit(WDFDRIVER Driver, ULONG Kib)
{
	WDF_OBJECT_ATTRIBUTES attributes;
	NTSTATUS status;

	if (Kib == 0 || Kib > 1024 * 1024)
		return STATUS_INVALID_PARAMETER;
	WDF_OBJECT_ATTRIBUTES_INIT(&attributes);
	attributes.ParentObject = Driver;
	status = WdfSpinLockCreate(&attributes, &GuestDriver.TraceLock);
	if (!NT_SUCCESS(status))
		return status;
	GuestDriver.TraceMemory = (char *)ExAllocatePool2(POOL_FLAG_NON_PAGED, Kib * 1024,
							  GUEST_POOL_TAG);
	vbt_buffer_init(&GuestDriver.Trace, GuestDriver.TraceMemory, Kib * 1024, "hyperv", "guest");
	return GuestDriver.TraceMemory != NULL ? STATUS_SUCCESS : STATUS_INSUFFICIENT_RESOURCES;
}

VOID GuestTraceFree(VOID)
{
	if (GuestDriver.TraceMemory != NULL)
		ExFreePoolWithTag(GuestDriver.TraceMemory, GUEST_POOL_TAG);
	GuestDriver.TraceMemory = NULL;
	vbt_buffer_init(&GuestDriver.Trace, NULL, 0, "hyperv", "guest");
}

VOID GuestTrace(GUEST_DEVICE *Dev, struct vbt_event *Event)
{
	int written;

	UNREFERENCED_PARAMETER(Dev);
	WdfSpinLockAcquire(GuestDriver.TraceLock);
	written = vbt_buffer_append(&GuestDriver.Trace, Event);
	WdfSpinLockRelease(GuestDriver.TraceLock);
	if (!written)
		InterlockedIncrement64(&GuestDriver.TraceDropped);
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

VOID GuestTraceClear(VOID)
{
	/* seq keeps counting, so reads on both sides of a clear never share one. */
	WdfSpinLockAcquire(GuestDriver.TraceLock);
	vbt_buffer_clear(&GuestDriver.Trace);
	WdfSpinLockRelease(GuestDriver.TraceLock);
}

/* Copies trace bytes from Offset; returns how many (0 at the end). */
ULONG GuestTraceRead(ULONGLONG Offset, char *Out, ULONG Size)
{
	ULONG n;

	WdfSpinLockAcquire(GuestDriver.TraceLock);
	n = vbt_buffer_read(&GuestDriver.Trace, Offset, Out, Size);
	WdfSpinLockRelease(GuestDriver.TraceLock);
	return n;
}
