/*
 * The Windows guest's control device: one per driver, \\.\VmbusSampleGuest,
 * whatever the number of channels. Each VMBus channel offer is a PnP device of
 * its own (guest-driver.c), and a symbolic link names one device only, so the
 * control interface cannot be a PnP device's: it is a control device object
 * (WdfControlDeviceInitAllocate). Its IOCTLs take the Linux guest's command
 * language; `ch=N` names the channel's device (without it a command goes to
 * every device, as on Linux), and the trace and counters are the driver's.
 *
 * Lifetime: a PnP driver must delete its control device from a cleanup callback
 * of its PnP devices before it unloads (KMDF's ControlDeviceDeleted rule: the
 * system does not unload a driver whose control device still exists). So it is
 * created with the first device and deleted in the last device's cleanup, as the
 * WDK's filter samples do. Kept past the last device it would pin the driver:
 * no PnP device would be left whose cleanup could delete it. The trace is not the control device's but the
 * driver's (guest-trace.c): a device removed meanwhile is read once a device (and
 * so the control device) is there again.
 *
 * Its queue runs at PASSIVE_LEVEL and holds GuestDriver.DevicesLock for each
 * request, so a command never reaches a device being removed.
 */
#include "guest.h"

static EVT_WDF_IO_QUEUE_IO_DEVICE_CONTROL GuestEvtIoDeviceControl;

NTSTATUS GuestControlCreate(WDFDRIVER Driver)
{
	DECLARE_CONST_UNICODE_STRING(ntName, SAMPLE_GUEST_NT_NAME);
	DECLARE_CONST_UNICODE_STRING(dosName, SAMPLE_GUEST_DOS_NAME);
	WDF_OBJECT_ATTRIBUTES attributes;
	WDF_IO_QUEUE_CONFIG queueConfig;
	PWDFDEVICE_INIT init;
	WDFDEVICE control;
	NTSTATUS status;

	/* Only the system and administrators open it, as the bench's tool runs. */
	init = WdfControlDeviceInitAllocate(Driver, &SDDL_DEVOBJ_SYS_ALL_ADM_ALL);
	if (init == NULL)
		return STATUS_INSUFFICIENT_RESOURCES;
	status = WdfDeviceInitAssignName(init, &ntName);
	if (!NT_SUCCESS(status)) {
		WdfDeviceInitFree(init);
		return status;
	}
	WDF_OBJECT_ATTRIBUTES_INIT(&attributes);
	/* Commands take DevicesLock (a wait lock) and the KMCL calls of a send. */
	attributes.ExecutionLevel = WdfExecutionLevelPassive;
	status = WdfDeviceCreate(&init, &attributes, &control);
	if (!NT_SUCCESS(status)) {
		WdfDeviceInitFree(init); /* still ours when the create failed */
		return status;
	}
	status = WdfDeviceCreateSymbolicLink(control, &dosName);
	if (NT_SUCCESS(status)) {
		WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&queueConfig, WdfIoQueueDispatchSequential);
		queueConfig.EvtIoDeviceControl = GuestEvtIoDeviceControl;
		status = WdfIoQueueCreate(control, &queueConfig, WDF_NO_OBJECT_ATTRIBUTES,
					  WDF_NO_HANDLE);
	}
	if (!NT_SUCCESS(status)) {
		WdfObjectDelete(control);
		return status;
	}
	WdfControlFinishInitializing(control);
	GuestDriver.ControlDevice = control;
	return STATUS_SUCCESS;
}

/* The last device's cleanup, under DevicesLock. */
VOID GuestControlDelete(VOID)
{
	if (GuestDriver.ControlDevice != NULL)
		WdfObjectDelete(GuestDriver.ControlDevice);
	GuestDriver.ControlDevice = NULL;
}

/* ---- Each channel's next tx, across its devices (under DevicesLock) ------ */

static GUEST_TX_MARK *GuestFindMark(UINT32 Ch)
{
	PLIST_ENTRY e;

	for (e = GuestDriver.Marks.Flink; e != &GuestDriver.Marks; e = e->Flink) {
		GUEST_TX_MARK *m = CONTAINING_RECORD(e, GUEST_TX_MARK, Link);

		if (m->Ch == Ch)
			return m;
	}
	return NULL;
}

/* A removed device's channel: its next device numbers on from here. */
VOID GuestMarkTx(GUEST_DEVICE *Dev)
{
	GUEST_TX_MARK *m;

	if (!Dev->ChKnown)
		return;
	m = GuestFindMark(Dev->Ch);
	if (m == NULL) {
		m = (GUEST_TX_MARK *)ExAllocatePool2(POOL_FLAG_NON_PAGED, sizeof(*m),
						     GUEST_POOL_TAG);
		if (m == NULL)
			return; /* the next device starts at 1: the checker sees the reuse */
		m->Ch = Dev->Ch;
		InsertTailList(&GuestDriver.Marks, &m->Link);
	}
	m->NextTx = Dev->NextTx;
}

ULONGLONG GuestMarkedTx(UINT32 Ch)
{
	GUEST_TX_MARK *m = GuestFindMark(Ch);

	return m != NULL ? m->NextTx : 0;
}

VOID GuestFreeMarks(VOID)
{
	while (!IsListEmpty(&GuestDriver.Marks))
		ExFreePoolWithTag(CONTAINING_RECORD(RemoveHeadList(&GuestDriver.Marks),
						    GUEST_TX_MARK, Link),
				  GUEST_POOL_TAG);
}

/* ---- Commands ------------------------------------------------------------ */

/* One command on one device. */
static NTSTATUS GuestRunOn(GUEST_DEVICE *Dev, const struct sample_command *Cmd)
{
	switch (Cmd->verb) {
	case SAMPLE_CMD_SEND:
		return GuestSendMany(Dev, SP_MSG_REQUEST, Cmd->count, Cmd->length, Cmd->mode,
				     Cmd->hold_ms);
	case SAMPLE_CMD_NOTIFY:
		return GuestSendMany(Dev, SP_MSG_NOTIFY, Cmd->count, Cmd->length, 0, 0);
	case SAMPLE_CMD_HOLD:
		WdfSpinLockAcquire(Dev->Lock);
		Dev->HoldOverrideMs = GuestDriver.HoldOverrideMs;
		WdfSpinLockRelease(Dev->Lock);
		return STATUS_SUCCESS;
	case SAMPLE_CMD_RELEASE:
		GuestReleaseHeld(Dev);
		return STATUS_SUCCESS;
	default:
		return STATUS_INVALID_DEVICE_REQUEST;
	}
}

static NTSTATUS GuestRunCommand(WDFREQUEST Request)
{
	struct sample_command cmd;
	NTSTATUS status = STATUS_SUCCESS;
	ULONG matched = 0;
	PVOID buffer;
	size_t length;
	PLIST_ENTRY e;

	status = WdfRequestRetrieveInputBuffer(Request, 1, &buffer, &length);
	if (!NT_SUCCESS(status))
		return status;
	if (length > SAMPLE_COMMAND_MAX ||
	    sample_parse_command((const char *)buffer, (sp_u32)length, &cmd) != 0)
		return STATUS_INVALID_PARAMETER;

	switch (cmd.verb) {
	case SAMPLE_CMD_TRACE_CLEAR:
		GuestTraceClear();
		return STATUS_SUCCESS;
	case SAMPLE_CMD_HOLD:
		/* The driver's setting: a device added later takes it too. */
		GuestDriver.HoldOverrideMs = cmd.hold_auto ? -1 :
			(LONG)(cmd.hold_ms > 0x7fffffff ? 0x7fffffff : cmd.hold_ms);
		break;
	case SAMPLE_CMD_SEND:
	case SAMPLE_CMD_NOTIFY:
	case SAMPLE_CMD_RELEASE:
		break;
	default:
		/* open, transact, save, restore, resume, close are the host's. */
		return STATUS_INVALID_DEVICE_REQUEST;
	}
	/* ch=N: that channel's device; none: every device, in the order they came. */
	for (e = GuestDriver.Devices.Flink; e != &GuestDriver.Devices && NT_SUCCESS(status);
	     e = e->Flink) {
		GUEST_DEVICE *dev = CONTAINING_RECORD(e, GUEST_DEVICE, Link);

		if (!dev->ChKnown || (cmd.has_ch && cmd.ch != dev->Ch))
			continue;
		matched++;
		status = GuestRunOn(dev, &cmd);
	}
	if (cmd.verb == SAMPLE_CMD_HOLD)
		return status;
	return NT_SUCCESS(status) && matched == 0 ? STATUS_NOT_FOUND : status;
}

/* One "ch=N name=value ..." line per device, the trace's numbers on each. */
static NTSTATUS GuestWriteCounters(char *Out, size_t Size, size_t *Written)
{
	static const char *const names[] = {
		"ch", "requests_sent", "notifies_sent", "completions", "completion_mismatch",
		"cancelled", "received", "completed", "damaged", "failed", "held",
		"trace_dropped", "trace_seq", "next_tx", "dropped_on_close",
		"closed_outside_removal",
	};
	size_t at = 0;
	PLIST_ENTRY e;

	for (e = GuestDriver.Devices.Flink; e != &GuestDriver.Devices; e = e->Flink) {
		GUEST_DEVICE *dev = CONTAINING_RECORD(e, GUEST_DEVICE, Link);
		const GUEST_COUNTERS *c = &dev->Counters;
		sp_u64 values[ARRAYSIZE(names)];
		sp_u32 n;

		if (!dev->ChKnown)
			continue;
		values[0] = dev->Ch;
		values[1] = (sp_u64)c->RequestsSent;
		values[2] = (sp_u64)c->NotifiesSent;
		values[3] = (sp_u64)c->Completions;
		values[4] = (sp_u64)c->CompletionMismatch;
		values[5] = (sp_u64)c->Cancelled;
		values[6] = (sp_u64)c->Received;
		values[7] = (sp_u64)c->Completed;
		values[8] = (sp_u64)c->Damaged;
		values[9] = (sp_u64)c->Failed;
		values[10] = (sp_u64)c->HeldNow;
		values[11] = (sp_u64)GuestDriver.TraceDropped;
		values[12] = GuestDriver.Trace.seq;
		values[13] = dev->NextTx;
		values[14] = (sp_u64)c->DroppedOnClose;
		values[15] = (sp_u64)GuestDriver.ClosedOutsideRemoval;
		n = sample_format_counters(Out + at, (sp_u32)(Size - at), names, values,
					   ARRAYSIZE(names));
		if (n == 0)
			return STATUS_BUFFER_TOO_SMALL;
		at += n;
	}
	*Written = at;
	return STATUS_SUCCESS;
}

static VOID GuestEvtIoDeviceControl(WDFQUEUE Queue, WDFREQUEST Request,
				    size_t OutputBufferLength, size_t InputBufferLength,
				    ULONG IoControlCode)
{
	struct sample_trace_read *in;
	size_t written = 0;
	NTSTATUS status;
	PVOID out;

	UNREFERENCED_PARAMETER(Queue);
	UNREFERENCED_PARAMETER(InputBufferLength);
	WdfWaitLockAcquire(GuestDriver.DevicesLock, NULL);
	switch (IoControlCode) {
	case IOCTL_SAMPLE_COMMAND:
		status = GuestRunCommand(Request);
		break;
	case IOCTL_SAMPLE_COUNTERS:
		status = WdfRequestRetrieveOutputBuffer(Request, 1, &out, &OutputBufferLength);
		if (NT_SUCCESS(status))
			status = GuestWriteCounters((char *)out, OutputBufferLength, &written);
		break;
	case IOCTL_SAMPLE_READ_TRACE:
		status = WdfRequestRetrieveInputBuffer(Request, sizeof(*in), (PVOID *)&in, NULL);
		if (NT_SUCCESS(status))
			status = WdfRequestRetrieveOutputBuffer(Request, 1, &out,
								&OutputBufferLength);
		if (NT_SUCCESS(status)) {
			ULONG size = OutputBufferLength > 0x7fffffff ? 0x7fffffff :
								       (ULONG)OutputBufferLength;

			written = GuestTraceRead(in->offset, (char *)out, size);
		}
		break;
	default:
		status = STATUS_INVALID_DEVICE_REQUEST;
		break;
	}
	WdfWaitLockRelease(GuestDriver.DevicesLock);
	WdfRequestCompleteWithInformation(Request, status, written);
}
