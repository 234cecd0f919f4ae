/*
 * The Windows guest driver object: DriverEntry, the device, the KMCL client
 * interface and the control interface (\\.\VmbusSampleGuest).
 *
 * Registry parameters under the device's hardware key (set by the INF, changeable
 * with reg.exe before the device starts): RingPages (default 4) and TraceKiB
 * (default 4096).
 */
#include "guest.h"

DRIVER_INITIALIZE DriverEntry;
static EVT_WDF_DRIVER_DEVICE_ADD GuestEvtDeviceAdd;
static EVT_WDF_DEVICE_PREPARE_HARDWARE GuestEvtPrepareHardware;
static EVT_WDF_DEVICE_RELEASE_HARDWARE GuestEvtReleaseHardware;
static EVT_WDF_IO_QUEUE_IO_DEVICE_CONTROL GuestEvtIoDeviceControl;

NTSTATUS DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
	WDF_DRIVER_CONFIG config;

	WDF_DRIVER_CONFIG_INIT(&config, GuestEvtDeviceAdd);
	return WdfDriverCreate(DriverObject, RegistryPath, WDF_NO_OBJECT_ATTRIBUTES, &config,
			       WDF_NO_HANDLE);
}

static ULONG GuestReadParameter(WDFDEVICE Device, PCUNICODE_STRING Name, ULONG Default)
{
	ULONG value = Default;
	WDFKEY key;

	if (NT_SUCCESS(WdfDeviceOpenRegistryKey(Device, PLUGPLAY_REGKEY_DEVICE, KEY_READ,
						WDF_NO_OBJECT_ATTRIBUTES, &key))) {
		if (!NT_SUCCESS(WdfRegistryQueryULong(key, Name, &value)) || value == 0)
			value = Default;
		WdfRegistryClose(key);
	}
	return value;
}

/* A timer or work item whose context points back at the device. */
static NTSTATUS GuestCreateChildObjects(GUEST_DEVICE *Dev)
{
	WDF_OBJECT_ATTRIBUTES attributes;
	WDF_WORKITEM_CONFIG workConfig;
	WDF_TIMER_CONFIG timerConfig;
	NTSTATUS status;

	WDF_OBJECT_ATTRIBUTES_INIT(&attributes);
	attributes.ParentObject = Dev->Device;
	status = WdfSpinLockCreate(&attributes, &Dev->Lock);
	if (!NT_SUCCESS(status))
		return status;

	WDF_TIMER_CONFIG_INIT_PERIODIC(&timerConfig, GuestEvtHoldTimer, GUEST_HOLD_TICK_MS);
	WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attributes, GUEST_OBJECT_CONTEXT);
	attributes.ParentObject = Dev->Device;
	status = WdfTimerCreate(&timerConfig, &attributes, &Dev->HoldTimer);
	if (!NT_SUCCESS(status))
		return status;
	GuestGetObjectContext(Dev->HoldTimer)->Dev = Dev;

	WDF_WORKITEM_CONFIG_INIT(&workConfig, GuestEvtReenable);
	WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attributes, GUEST_OBJECT_CONTEXT);
	attributes.ParentObject = Dev->Device;
	status = WdfWorkItemCreate(&workConfig, &attributes, &Dev->ReenableWork);
	if (!NT_SUCCESS(status))
		return status;
	GuestGetObjectContext(Dev->ReenableWork)->Dev = Dev;
	return STATUS_SUCCESS;
}

static NTSTATUS GuestEvtDeviceAdd(WDFDRIVER Driver, PWDFDEVICE_INIT DeviceInit)
{
	DECLARE_CONST_UNICODE_STRING(dosName, SAMPLE_GUEST_DOS_NAME);
	DECLARE_CONST_UNICODE_STRING(ringPagesName, L"RingPages");
	DECLARE_CONST_UNICODE_STRING(traceKibName, L"TraceKiB");
	WDF_PNPPOWER_EVENT_CALLBACKS pnp;
	WDF_OBJECT_ATTRIBUTES attributes;
	WDF_IO_QUEUE_CONFIG queueConfig;
	GUEST_DEVICE *dev;
	WDFDEVICE device;
	NTSTATUS status;

	UNREFERENCED_PARAMETER(Driver);
	WDF_PNPPOWER_EVENT_CALLBACKS_INIT(&pnp);
	pnp.EvtDevicePrepareHardware = GuestEvtPrepareHardware;
	pnp.EvtDeviceReleaseHardware = GuestEvtReleaseHardware;
	WdfDeviceInitSetPnpPowerEventCallbacks(DeviceInit, &pnp);

	WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attributes, GUEST_DEVICE);
	status = WdfDeviceCreate(&DeviceInit, &attributes, &device);
	if (!NT_SUCCESS(status))
		return status;
	dev = GuestGetDevice(device);
	dev->Device = device;
	dev->HoldOverrideMs = -1;
	InitializeListHead(&dev->Held);
	dev->RingPages = GuestReadParameter(device, &ringPagesName, SP_DEFAULT_RING_PAGES);

	status = GuestCreateChildObjects(dev);
	if (NT_SUCCESS(status))
		status = GuestTraceInit(dev, GuestReadParameter(device, &traceKibName,
								GUEST_DEFAULT_TRACE_KIB));
	/* One sample channel per VM, so one well-known name for the bench. */
	if (NT_SUCCESS(status))
		status = WdfDeviceCreateSymbolicLink(device, &dosName);
	if (!NT_SUCCESS(status))
		return status;
	WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&queueConfig, WdfIoQueueDispatchSequential);
	queueConfig.EvtIoDeviceControl = GuestEvtIoDeviceControl;
	return WdfIoQueueCreate(device, &queueConfig, WDF_NO_OBJECT_ATTRIBUTES, WDF_NO_HANDLE);
}

static NTSTATUS GuestEvtPrepareHardware(WDFDEVICE Device, WDFCMRESLIST ResourcesRaw,
					WDFCMRESLIST ResourcesTranslated)
{
	GUEST_DEVICE *dev = GuestGetDevice(Device);
	NTSTATUS status;

	UNREFERENCED_PARAMETER(ResourcesRaw);
	UNREFERENCED_PARAMETER(ResourcesTranslated);
	status = WdfFdoQueryForInterface(Device, &KMCL_CLIENT_INTERFACE_TYPE,
					 (PINTERFACE)&dev->Kmcl,
					 sizeof(KMCL_CLIENT_INTERFACE_V1),
					 KMCL_CLIENT_INTERFACE_VERSION_V1, NULL);
	if (!NT_SUCCESS(status))
		return status;
	dev->KmclValid = TRUE;
	/* Callbacks reach the table through this copy (see guest-channel.c). */
	GuestKmcl = dev->Kmcl;
	return GuestChannelCreate(dev);
}

static NTSTATUS GuestEvtReleaseHardware(WDFDEVICE Device, WDFCMRESLIST ResourcesTranslated)
{
	GUEST_DEVICE *dev = GuestGetDevice(Device);

	UNREFERENCED_PARAMETER(ResourcesTranslated);
	if (dev->KmclValid) {
		GuestChannelDestroy(dev);
		dev->Kmcl.InterfaceDereference(dev->Kmcl.Context);
		dev->KmclValid = FALSE;
	}
	GuestTraceFree(dev);
	return STATUS_SUCCESS;
}

static NTSTATUS GuestRunCommand(GUEST_DEVICE *Dev, WDFREQUEST Request)
{
	struct sample_command cmd;
	PVOID buffer;
	size_t length;
	NTSTATUS status;

	status = WdfRequestRetrieveInputBuffer(Request, 1, &buffer, &length);
	if (!NT_SUCCESS(status))
		return status;
	if (length > SAMPLE_COMMAND_MAX ||
	    sample_parse_command((const char *)buffer, (sp_u32)length, &cmd) != 0)
		return STATUS_INVALID_PARAMETER;
	/* ch=N names this device's channel or nothing at all. */
	if (cmd.has_ch && cmd.ch != Dev->Ch)
		return STATUS_NOT_FOUND;

	switch (cmd.verb) {
	case SAMPLE_CMD_SEND:
		return GuestSendMany(Dev, SP_MSG_REQUEST, cmd.count, cmd.length, cmd.mode,
				     cmd.hold_ms);
	case SAMPLE_CMD_NOTIFY:
		return GuestSendMany(Dev, SP_MSG_NOTIFY, cmd.count, cmd.length, 0, 0);
	case SAMPLE_CMD_HOLD:
		WdfSpinLockAcquire(Dev->Lock);
		Dev->HoldOverrideMs = cmd.hold_auto ? -1 :
				      (LONG)(cmd.hold_ms > 0x7fffffff ? 0x7fffffff : cmd.hold_ms);
		WdfSpinLockRelease(Dev->Lock);
		return STATUS_SUCCESS;
	case SAMPLE_CMD_RELEASE:
		GuestReleaseHeld(Dev);
		return STATUS_SUCCESS;
	case SAMPLE_CMD_TRACE_CLEAR:
		GuestTraceClear(Dev);
		return STATUS_SUCCESS;
	default:
		/* open, transact, save, restore, resume, close are the host's. */
		return STATUS_INVALID_DEVICE_REQUEST;
	}
}

static NTSTATUS GuestWriteCounters(GUEST_DEVICE *Dev, char *Out, size_t Size,
				   size_t *Written)
{
	static const char *const names[] = {
		"ch", "requests_sent", "notifies_sent", "completions", "completion_mismatch",
		"cancelled", "received", "completed", "damaged", "failed", "held",
		"trace_dropped", "trace_seq", "next_tx",
	};
	const GUEST_COUNTERS *c = &Dev->Counters;
	const sp_u64 values[ARRAYSIZE(names)] = {
		Dev->Ch, (sp_u64)c->RequestsSent, (sp_u64)c->NotifiesSent,
		(sp_u64)c->Completions, (sp_u64)c->CompletionMismatch, (sp_u64)c->Cancelled,
		(sp_u64)c->Received, (sp_u64)c->Completed, (sp_u64)c->Damaged,
		(sp_u64)c->Failed, (sp_u64)c->HeldNow, (sp_u64)c->TraceDropped,
		Dev->Trace.seq, Dev->NextTx,
	};
	sp_u32 n = sample_format_counters(Out, (sp_u32)Size, names, values, ARRAYSIZE(names));

	*Written = n;
	return n != 0 ? STATUS_SUCCESS : STATUS_BUFFER_TOO_SMALL;
}

static VOID GuestEvtIoDeviceControl(WDFQUEUE Queue, WDFREQUEST Request,
				    size_t OutputBufferLength, size_t InputBufferLength,
				    ULONG IoControlCode)
{
	GUEST_DEVICE *dev = GuestGetDevice(WdfIoQueueGetDevice(Queue));
	struct sample_trace_read *in;
	size_t written = 0;
	NTSTATUS status;
	PVOID out;

	UNREFERENCED_PARAMETER(InputBufferLength);
	switch (IoControlCode) {
	case IOCTL_SAMPLE_COMMAND:
		status = GuestRunCommand(dev, Request);
		break;
	case IOCTL_SAMPLE_COUNTERS:
		status = WdfRequestRetrieveOutputBuffer(Request, 1, &out, &OutputBufferLength);
		if (NT_SUCCESS(status))
			status = GuestWriteCounters(dev, (char *)out, OutputBufferLength, &written);
		break;
	case IOCTL_SAMPLE_READ_TRACE:
		status = WdfRequestRetrieveInputBuffer(Request, sizeof(*in), (PVOID *)&in, NULL);
		if (NT_SUCCESS(status))
			status = WdfRequestRetrieveOutputBuffer(Request, 1, &out,
								&OutputBufferLength);
		if (NT_SUCCESS(status)) {
			ULONG size = OutputBufferLength > 0x7fffffff ? 0x7fffffff :
								       (ULONG)OutputBufferLength;

			written = GuestTraceRead(dev, in->offset, (char *)out, size);
		}
		break;
	default:
		status = STATUS_INVALID_DEVICE_REQUEST;
		break;
	}
	WdfRequestCompleteWithInformation(Request, status, written);
}
