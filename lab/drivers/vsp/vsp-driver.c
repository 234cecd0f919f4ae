/*
 * The VSP driver object: DriverEntry, the device, the KMCL server interface and
 * the control interface (\\.\VmbusSampleVsp, IOCTLs of common/sample-control.h).
 *
 * The KMCL server interface is queried from the device's lower stack with
 * WdfFdoQueryForInterface in EvtDevicePrepareHardware; the INF puts vmbkmclr
 * below the device for that (see vmbus_sample_vsp.inf and README: unverified).
 *
 * Control commands run on a sequential queue, so one command at a time touches
 * the channel list. The one exception is the conversion of a VMBus handle, which
 * must happen in the calling process (the VM's worker process owns the handle):
 * EvtIoInCallerContext does only that, before the request enters the queue.
 */
#include <TraceLoggingProvider.h>

#include "vsp.h"

DRIVER_INITIALIZE DriverEntry;
static EVT_WDF_DRIVER_DEVICE_ADD VspEvtDeviceAdd;
static EVT_WDF_DRIVER_UNLOAD VspEvtDriverUnload;
static EVT_WDF_DEVICE_PREPARE_HARDWARE VspEvtPrepareHardware;
static EVT_WDF_DEVICE_RELEASE_HARDWARE VspEvtReleaseHardware;
static EVT_WDF_IO_IN_CALLER_CONTEXT VspEvtIoInCallerContext;
static EVT_WDF_IO_QUEUE_IO_DEVICE_CONTROL VspEvtIoDeviceControl;

PKMCL_SERVER_INTERFACE_V1 VspKmcl;

NTSTATUS DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
	WDF_DRIVER_CONFIG config;
	NTSTATUS status;

	status = VspTraceRegister();
	if (!NT_SUCCESS(status))
		return status;
	WDF_DRIVER_CONFIG_INIT(&config, VspEvtDeviceAdd);
	config.EvtDriverUnload = VspEvtDriverUnload;
	status = WdfDriverCreate(DriverObject, RegistryPath, WDF_NO_OBJECT_ATTRIBUTES,
				 &config, WDF_NO_HANDLE);
	if (!NT_SUCCESS(status))
		VspTraceUnregister();
	return status;
}

static VOID VspEvtDriverUnload(WDFDRIVER Driver)
{
	UNREFERENCED_PARAMETER(Driver);
	VspTraceUnregister();
}

static NTSTATUS VspEvtDeviceAdd(WDFDRIVER Driver, PWDFDEVICE_INIT DeviceInit)
{
	DECLARE_CONST_UNICODE_STRING(dosName, SAMPLE_VSP_DOS_NAME);
	WDF_PNPPOWER_EVENT_CALLBACKS pnp;
	WDF_OBJECT_ATTRIBUTES attributes;
	WDF_IO_QUEUE_CONFIG queueConfig;
	WDFDEVICE device;
	VSP_DEVICE *dev;
	NTSTATUS status;

	UNREFERENCED_PARAMETER(Driver);
	WDF_PNPPOWER_EVENT_CALLBACKS_INIT(&pnp);
	pnp.EvtDevicePrepareHardware = VspEvtPrepareHardware;
	pnp.EvtDeviceReleaseHardware = VspEvtReleaseHardware;
	WdfDeviceInitSetPnpPowerEventCallbacks(DeviceInit, &pnp);
	WdfDeviceInitSetIoInCallerContextCallback(DeviceInit, VspEvtIoInCallerContext);

	WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attributes, VSP_DEVICE);
	status = WdfDeviceCreate(&DeviceInit, &attributes, &device);
	if (!NT_SUCCESS(status))
		return status;
	dev = VspGetDevice(device);
	dev->Device = device;
	InitializeListHead(&dev->Channels);

	status = WdfDeviceCreateSymbolicLink(device, &dosName);
	if (!NT_SUCCESS(status))
		return status;
	WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&queueConfig, WdfIoQueueDispatchSequential);
	queueConfig.EvtIoDeviceControl = VspEvtIoDeviceControl;
	/*
	 * Commands allocate, pause, save, disable and clean up channels: PASSIVE_LEVEL
	 * only. Without this an I/O queue's callbacks may run at DISPATCH_LEVEL.
	 */
	WDF_OBJECT_ATTRIBUTES_INIT(&attributes);
	attributes.ExecutionLevel = WdfExecutionLevelPassive;
	return WdfIoQueueCreate(device, &queueConfig, &attributes, WDF_NO_HANDLE);
}

static NTSTATUS VspEvtPrepareHardware(WDFDEVICE Device, WDFCMRESLIST ResourcesRaw,
				      WDFCMRESLIST ResourcesTranslated)
{
	VSP_DEVICE *dev = VspGetDevice(Device);
	NTSTATUS status;

	UNREFERENCED_PARAMETER(ResourcesRaw);
	UNREFERENCED_PARAMETER(ResourcesTranslated);
	status = WdfFdoQueryForInterface(Device, &KMCL_SERVER_INTERFACE_TYPE,
					 (PINTERFACE)&dev->Kmcl,
					 sizeof(KMCL_SERVER_INTERFACE_V1),
					 KMCL_SERVER_INTERFACE_VERSION_V1, NULL);
	if (!NT_SUCCESS(status))
		return status;
	dev->KmclValid = TRUE;
	VspKmcl = &dev->Kmcl;
	return STATUS_SUCCESS;
}

static NTSTATUS VspEvtReleaseHardware(WDFDEVICE Device, WDFCMRESLIST ResourcesTranslated)
{
	VSP_DEVICE *dev = VspGetDevice(Device);

	UNREFERENCED_PARAMETER(ResourcesTranslated);
	/* The queue is stopped by now; no command can be running. */
	while (!IsListEmpty(&dev->Channels))
		VspChannelClose(CONTAINING_RECORD(dev->Channels.Flink, VSP_CHANNEL, Link));
	if (dev->KmclValid) {
		VspKmcl = NULL;
		dev->Kmcl.InterfaceDereference(dev->Kmcl.Context);
		dev->KmclValid = FALSE;
	}
	return STATUS_SUCCESS;
}

/* Copies the command text out of a request's input buffer and parses it. */
static NTSTATUS VspReadCommand(WDFREQUEST Request, struct sample_command *Cmd)
{
	PVOID buffer;
	size_t length;
	NTSTATUS status;

	status = WdfRequestRetrieveInputBuffer(Request, 1, &buffer, &length);
	if (!NT_SUCCESS(status))
		return status;
	if (length > SAMPLE_COMMAND_MAX)
		return STATUS_INVALID_PARAMETER;
	if (sample_parse_command((const char *)buffer, (sp_u32)length, Cmd) != 0)
		return STATUS_INVALID_PARAMETER;
	return STATUS_SUCCESS;
}

/*
 * Runs in the thread of the process that sent the request. For "open ...
 * handle=H" this is the only place where H means anything: convert it to a
 * kernel handle now and carry that in the request's context.
 */
static VOID VspEvtIoInCallerContext(WDFDEVICE Device, WDFREQUEST Request)
{
	WDF_REQUEST_PARAMETERS params;
	WDF_OBJECT_ATTRIBUTES attributes;
	struct sample_command cmd;
	VSP_REQUEST_CONTEXT *ctx;
	NTSTATUS status;

	WDF_REQUEST_PARAMETERS_INIT(&params);
	WdfRequestGetParameters(Request, &params);
	if (params.Type == WdfRequestTypeDeviceControl &&
	    params.Parameters.DeviceIoControl.IoControlCode == IOCTL_SAMPLE_COMMAND &&
	    NT_SUCCESS(VspReadCommand(Request, &cmd)) && cmd.verb == SAMPLE_CMD_OPEN &&
	    !cmd.loopback) {
		if (VspKmcl == NULL) {
			WdfRequestComplete(Request, STATUS_DEVICE_NOT_READY);
			return;
		}
		WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attributes, VSP_REQUEST_CONTEXT);
		status = WdfObjectAllocateContext(Request, &attributes, (PVOID *)&ctx);
		if (NT_SUCCESS(status))
			status = VspKmcl->VmbConvertVmbusHandleToKernelHandle(
				(HANDLE)(ULONG_PTR)cmd.handle, &ctx->KernelHandle);
		if (!NT_SUCCESS(status)) {
			WdfRequestComplete(Request, status);
			return;
		}
	}
	status = WdfDeviceEnqueueRequest(Device, Request);
	if (!NT_SUCCESS(status))
		WdfRequestComplete(Request, status);
}

/*
 * Writes "trace_seq=N" (the seq of the last trace event written: the bench marks
 * its own events with it), then the counters of every channel, one
 * "name=value ..." line each.
 */
static NTSTATUS VspWriteCounters(VSP_DEVICE *Dev, char *Out, size_t Size, size_t *Written)
{
	static const char *const names[] = {
		"ch", "requests_received", "requests_completed", "deferred", "held",
		"notifies_received", "damaged", "failed", "transactions_sent",
		"notifies_sent", "completions", "completion_mismatch", "cancelled",
		"saved", "restored", "in_flight", "in_flight_bytes", "save_blob_bytes",
		"next_tx",
	};
	static const char *const seqName[] = { "trace_seq" };
	const sp_u64 seq[1] = { VspTraceLastSeq() };
	size_t n;
	PLIST_ENTRY e;

	n = sample_format_counters(Out, (sp_u32)Size, seqName, seq, 1);
	if (n == 0)
		return STATUS_BUFFER_TOO_SMALL;
	for (e = Dev->Channels.Flink; e != &Dev->Channels; e = e->Flink) {
		VSP_CHANNEL *vc = CONTAINING_RECORD(e, VSP_CHANNEL, Link);
		const VSP_COUNTERS *c = &vc->Counters;
		const sp_u64 values[ARRAYSIZE(names)] = {
			vc->Ch, (sp_u64)c->RequestsReceived, (sp_u64)c->RequestsCompleted,
			(sp_u64)c->Deferred, (sp_u64)c->HeldNow, (sp_u64)c->NotifiesReceived,
			(sp_u64)c->Damaged, (sp_u64)c->Failed, (sp_u64)c->TransactionsSent,
			(sp_u64)c->NotifiesSent, (sp_u64)c->Completions,
			(sp_u64)c->CompletionMismatch, (sp_u64)c->Cancelled,
			(sp_u64)c->Saved, (sp_u64)c->Restored, (sp_u64)c->InFlight,
			(sp_u64)c->InFlightBytes, vc->SaveBlobSize, vc->NextTx,
		};
		sp_u32 line = sample_format_counters(Out + n, (sp_u32)(Size - n), names,
						     values, ARRAYSIZE(names));

		if (line == 0)
			return STATUS_BUFFER_TOO_SMALL;
		n += line;
	}
	*Written = n;
	return STATUS_SUCCESS;
}

static NTSTATUS VspRunCommand(VSP_DEVICE *Dev, WDFREQUEST Request)
{
	VSP_REQUEST_CONTEXT *ctx = VspGetRequestContext(Request);
	struct sample_command cmd;
	VSP_CHANNEL *vc = NULL;
	HANDLE handle = NULL;
	NTSTATUS status;

	/* A handle converted in the caller's context is ours: used or closed here. */
	if (ctx != NULL) {
		handle = ctx->KernelHandle;
		ctx->KernelHandle = NULL;
	}
	status = VspReadCommand(Request, &cmd);
	if (NT_SUCCESS(status) && VspKmcl == NULL)
		status = STATUS_DEVICE_NOT_READY;
	if (NT_SUCCESS(status) && cmd.verb == SAMPLE_CMD_OPEN)
		return VspChannelOpen(Dev, &cmd, handle); /* takes the handle */
	if (handle != NULL)
		ZwClose(handle);
	if (!NT_SUCCESS(status))
		return status;
	if (cmd.has_ch) {
		vc = VspChannelFind(Dev, cmd.ch);
		if (vc == NULL)
			return STATUS_NOT_FOUND;
	}

	switch (cmd.verb) {
	case SAMPLE_CMD_TRANSACT:
	case SAMPLE_CMD_NOTIFY:
		if (vc == NULL)
			return STATUS_INVALID_PARAMETER; /* the host names its channel */
		return VspSendMany(vc,
				   (UINT16)(cmd.verb == SAMPLE_CMD_TRANSACT ?
					    SP_MSG_HOST_TRANSACTION : SP_MSG_NOTIFY),
				   cmd.count, cmd.length, cmd.hold_ms);
	case SAMPLE_CMD_RELEASE:
		if (vc != NULL) {
			VspChannelReleaseHeld(vc);
		} else {
			PLIST_ENTRY e;

			for (e = Dev->Channels.Flink; e != &Dev->Channels; e = e->Flink)
				VspChannelReleaseHeld(CONTAINING_RECORD(e, VSP_CHANNEL, Link));
		}
		return STATUS_SUCCESS;
	case SAMPLE_CMD_SAVE:
		return VspChannelSave(vc);
	case SAMPLE_CMD_RESTORE:
		return VspChannelRestore(vc);
	case SAMPLE_CMD_DETACH:
		return VspChannelDetach(vc);
	case SAMPLE_CMD_PAUSE:
		/*
		 * Channel-level pause and nothing else: what a loopback job does for a
		 * scenario's pause step (no VM to suspend). resume ch=N starts it again.
		 */
		if (vc->Channel == NULL || vc->Unoffered)
			return STATUS_INVALID_DEVICE_STATE;
		VspKmcl->VmbChannelPause(vc->Channel);
		vc->Paused = TRUE;
		vc->Suspended = TRUE; /* also where no Suspend runs (a channel its guest closed) */
		return STATUS_SUCCESS;
	case SAMPLE_CMD_DISCARD:
		return VspChannelDiscard(vc);
	case SAMPLE_CMD_RESCIND:
		return VspChannelRescind(vc);
	case SAMPLE_CMD_RESUME:
		return VspChannelResume(vc);
	case SAMPLE_CMD_CLOSE:
		VspChannelClose(vc);
		return STATUS_SUCCESS;
	default:
		/* send, hold, trace-clear are guest commands. */
		return STATUS_INVALID_DEVICE_REQUEST;
	}
}

static VOID VspEvtIoDeviceControl(WDFQUEUE Queue, WDFREQUEST Request,
				  size_t OutputBufferLength, size_t InputBufferLength,
				  ULONG IoControlCode)
{
	VSP_DEVICE *dev = VspGetDevice(WdfIoQueueGetDevice(Queue));
	size_t written = 0;
	NTSTATUS status;
	PVOID out;

	UNREFERENCED_PARAMETER(InputBufferLength);
	switch (IoControlCode) {
	case IOCTL_SAMPLE_COMMAND:
		status = VspRunCommand(dev, Request);
		break;
	case IOCTL_SAMPLE_COUNTERS:
		status = WdfRequestRetrieveOutputBuffer(Request, 1, &out, &OutputBufferLength);
		if (NT_SUCCESS(status))
			status = VspWriteCounters(dev, (char *)out, OutputBufferLength, &written);
		break;
	case IOCTL_SAMPLE_VSP_EXPORT:
		status = VspStateExport(dev, Request, &written);
		break;
	case IOCTL_SAMPLE_VSP_IMPORT:
		status = VspStateImport(dev, Request);
		break;
	case IOCTL_SAMPLE_READ_TRACE:
		status = STATUS_NOT_SUPPORTED; /* the VSP traces through ETW */
		break;
	default:
		status = STATUS_INVALID_DEVICE_REQUEST;
		break;
	}
	WdfRequestCompleteWithInformation(Request, status, written);
}
