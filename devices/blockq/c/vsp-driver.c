/*
 * The blockq VSP driver object: DriverEntry, the device, the KMCL server interface
 * (queried in EvtDevicePrepareHardware from the lower stack, as the sample VSP does)
 * and the control interface (\\.\BlockqVsp, blockq-control.h). Commands run on a
 * sequential queue at PASSIVE_LEVEL, one at a time: that queue serialises the channel
 * list and each channel's send counter. The one thing done before the queue is an
 * `open ... handle=H`'s conversion of H, which means something only in the process
 * that sent it (a lab's handle broker holding the VM's VMBus handle).
 */
#include <TraceLoggingProvider.h>

#include "vsp.h"

DRIVER_INITIALIZE DriverEntry;
static EVT_WDF_DRIVER_DEVICE_ADD BqEvtDeviceAdd;
static EVT_WDF_DRIVER_UNLOAD BqEvtDriverUnload;
static EVT_WDF_DEVICE_PREPARE_HARDWARE BqEvtPrepareHardware;
static EVT_WDF_DEVICE_RELEASE_HARDWARE BqEvtReleaseHardware;
static EVT_WDF_IO_IN_CALLER_CONTEXT BqEvtIoInCallerContext;
static EVT_WDF_IO_QUEUE_IO_DEVICE_CONTROL BqEvtIoDeviceControl;

PKMCL_SERVER_INTERFACE_V1 BqKmcl;

NTSTATUS DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
	WDF_DRIVER_CONFIG config;
	NTSTATUS status;

	status = BqTraceRegister();
	if (!NT_SUCCESS(status))
		return status;
	WDF_DRIVER_CONFIG_INIT(&config, BqEvtDeviceAdd);
	config.EvtDriverUnload = BqEvtDriverUnload;
	status = WdfDriverCreate(DriverObject, RegistryPath, WDF_NO_OBJECT_ATTRIBUTES, &config,
				 WDF_NO_HANDLE);
	if (!NT_SUCCESS(status))
		BqTraceUnregister();
	return status;
}

static VOID BqEvtDriverUnload(WDFDRIVER Driver)
{
	UNREFERENCED_PARAMETER(Driver);
	BqTraceUnregister();
}

static NTSTATUS BqEvtDeviceAdd(WDFDRIVER Driver, PWDFDEVICE_INIT DeviceInit)
{
	DECLARE_CONST_UNICODE_STRING(dosName, BLOCKQ_VSP_DOS_NAME);
	WDF_PNPPOWER_EVENT_CALLBACKS pnp;
	WDF_OBJECT_ATTRIBUTES attributes;
	WDF_IO_QUEUE_CONFIG queueConfig;
	WDFDEVICE device;
	BQ_DEVICE *dev;
	NTSTATUS status;

	UNREFERENCED_PARAMETER(Driver);
	WDF_PNPPOWER_EVENT_CALLBACKS_INIT(&pnp);
	pnp.EvtDevicePrepareHardware = BqEvtPrepareHardware;
	pnp.EvtDeviceReleaseHardware = BqEvtReleaseHardware;
	WdfDeviceInitSetPnpPowerEventCallbacks(DeviceInit, &pnp);
	WdfDeviceInitSetIoInCallerContextCallback(DeviceInit, BqEvtIoInCallerContext);

	WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attributes, BQ_DEVICE);
	status = WdfDeviceCreate(&DeviceInit, &attributes, &device);
	if (!NT_SUCCESS(status))
		return status;
	dev = BqGetDevice(device);
	dev->Device = device;
	InitializeListHead(&dev->Channels);
	status = WdfDeviceCreateSymbolicLink(device, &dosName);
	if (!NT_SUCCESS(status))
		return status;
	WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&queueConfig, WdfIoQueueDispatchSequential);
	queueConfig.EvtIoDeviceControl = BqEvtIoDeviceControl;
	/* Commands allocate, pause, save and clean up channels: PASSIVE_LEVEL only. */
	WDF_OBJECT_ATTRIBUTES_INIT(&attributes);
	attributes.ExecutionLevel = WdfExecutionLevelPassive;
	return WdfIoQueueCreate(device, &queueConfig, &attributes, WDF_NO_HANDLE);
}

static NTSTATUS BqEvtPrepareHardware(WDFDEVICE Device, WDFCMRESLIST ResourcesRaw,
				     WDFCMRESLIST ResourcesTranslated)
{
	BQ_DEVICE *dev = BqGetDevice(Device);
	NTSTATUS status;

	UNREFERENCED_PARAMETER(ResourcesRaw);
	UNREFERENCED_PARAMETER(ResourcesTranslated);
	status = WdfFdoQueryForInterface(Device, &KMCL_SERVER_INTERFACE_TYPE,
					 (PINTERFACE)&dev->Kmcl, sizeof(KMCL_SERVER_INTERFACE_V1),
					 KMCL_SERVER_INTERFACE_VERSION_V1, NULL);
	if (!NT_SUCCESS(status))
		return status;
	dev->KmclValid = TRUE;
	BqKmcl = &dev->Kmcl;
	return STATUS_SUCCESS;
}

static NTSTATUS BqEvtReleaseHardware(WDFDEVICE Device, WDFCMRESLIST ResourcesTranslated)
{
	BQ_DEVICE *dev = BqGetDevice(Device);

	UNREFERENCED_PARAMETER(ResourcesTranslated);
	while (!IsListEmpty(&dev->Channels))
		BqChannelClose(CONTAINING_RECORD(dev->Channels.Flink, BQ_CHANNEL, Link));
	if (dev->KmclValid) {
		BqKmcl = NULL;
		dev->Kmcl.InterfaceDereference(dev->Kmcl.Context);
		dev->KmclValid = FALSE;
	}
	return STATUS_SUCCESS;
}

/* "trace_seq=N", then one line of counters per channel. */
static NTSTATUS BqWriteCounters(BQ_DEVICE *Dev, char *Out, size_t Size, size_t *Written)
{
	static const char *const names[] = {
		"ch", "requests_received", "answered", "deferred", "outstanding",
		"notes_received", "failed", "events_sent", "notes_sent", "replies",
		"cancelled", "saved", "restored", "in_flight", "in_flight_bytes",
		"save_blob_bytes", "next_tx",
	};
	static const char *const seqName[] = { "trace_seq" };
	const bq_u64 seq[1] = { BqTraceLastSeq() };
	PLIST_ENTRY e;
	size_t n;

	n = bq_format_counters(Out, (bq_u32)Size, seqName, seq, 1);
	if (n == 0)
		return STATUS_BUFFER_TOO_SMALL;
	for (e = Dev->Channels.Flink; e != &Dev->Channels; e = e->Flink) {
		BQ_CHANNEL *vc = CONTAINING_RECORD(e, BQ_CHANNEL, Link);
		const BQ_COUNTERS *c = &vc->Counters;
		const bq_u64 values[ARRAYSIZE(names)] = {
			vc->Ch, (bq_u64)c->RequestsReceived, (bq_u64)c->Answered,
			(bq_u64)c->Deferred, (bq_u64)c->Outstanding, (bq_u64)c->NotesReceived,
			(bq_u64)c->Failed, (bq_u64)c->EventsSent, (bq_u64)c->NotesSent,
			(bq_u64)c->Replies, (bq_u64)c->Cancelled, (bq_u64)c->Saved,
			(bq_u64)c->Restored, (bq_u64)c->InFlight, (bq_u64)c->InFlightBytes,
			vc->SaveBlobSize, vc->NextTx,
		};
		bq_u32 line = bq_format_counters(Out + n, (bq_u32)(Size - n), names, values,
						 ARRAYSIZE(names));

		if (line == 0)
			return STATUS_BUFFER_TOO_SMALL;
		n += line;
	}
	*Written = n;
	return STATUS_SUCCESS;
}

/* The request's command line, parsed: STATUS_INVALID_PARAMETER when it is not one. */
static NTSTATUS BqReadCommand(WDFREQUEST Request, struct bq_command *Cmd)
{
	PVOID text;
	size_t length;
	NTSTATUS status;

	status = WdfRequestRetrieveInputBuffer(Request, 1, &text, &length);
	if (!NT_SUCCESS(status))
		return status;
	if (length > BLOCKQ_COMMAND_MAX ||
	    bq_parse_command((const char *)text, (bq_u32)length, Cmd) != 0)
		return STATUS_INVALID_PARAMETER;
	return STATUS_SUCCESS;
}

/*
 * Runs in the thread of the process that sent the request: for `open ... handle=H`,
 * converts H to a kernel handle into the request's context, then queues the request.
 */
static VOID BqEvtIoInCallerContext(WDFDEVICE Device, WDFREQUEST Request)
{
	WDF_REQUEST_PARAMETERS params;
	WDF_OBJECT_ATTRIBUTES attributes;
	struct bq_command cmd;
	BQ_REQUEST_CONTEXT *ctx;
	NTSTATUS status;

	WDF_REQUEST_PARAMETERS_INIT(&params);
	WdfRequestGetParameters(Request, &params);
	if (params.Type == WdfRequestTypeDeviceControl &&
	    params.Parameters.DeviceIoControl.IoControlCode == IOCTL_BLOCKQ_COMMAND &&
	    NT_SUCCESS(BqReadCommand(Request, &cmd)) && cmd.verb == BQ_CMD_OPEN &&
	    !cmd.loopback) {
		if (BqKmcl == NULL) {
			WdfRequestComplete(Request, STATUS_DEVICE_NOT_READY);
			return;
		}
		WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attributes, BQ_REQUEST_CONTEXT);
		status = WdfObjectAllocateContext(Request, &attributes, (PVOID *)&ctx);
		if (NT_SUCCESS(status))
			status = BqKmcl->VmbConvertVmbusHandleToKernelHandle(
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

static NTSTATUS BqRunCommand(BQ_DEVICE *Dev, WDFREQUEST Request)
{
	BQ_REQUEST_CONTEXT *ctx = BqGetRequestContext(Request);
	struct bq_command cmd;
	BQ_CHANNEL *vc = NULL;
	HANDLE handle = NULL;
	NTSTATUS status;

	/* A handle converted in the caller's context is ours: used or closed here. */
	if (ctx != NULL) {
		handle = ctx->KernelHandle;
		ctx->KernelHandle = NULL;
	}
	status = BqReadCommand(Request, &cmd);
	if (NT_SUCCESS(status) && BqKmcl == NULL)
		status = STATUS_DEVICE_NOT_READY;
	if (NT_SUCCESS(status) && cmd.verb == BQ_CMD_OPEN)
		return BqChannelOpen(Dev, &cmd, handle); /* takes the handle */
	if (handle != NULL)
		ZwClose(handle);
	if (!NT_SUCCESS(status))
		return status;
	if (cmd.has_ch) {
		vc = BqChannelFind(Dev, cmd.ch);
		if (vc == NULL)
			return STATUS_NOT_FOUND;
	}
	switch (cmd.verb) {
	case BQ_CMD_EVENT:
		return BqSendMany(vc, BQ_MSG_EVENT, cmd.count, cmd.length, cmd.hold_ms);
	case BQ_CMD_NOTE:
		return BqSendMany(vc, BQ_MSG_NOTE, cmd.count, cmd.length, 0);
	case BQ_CMD_ANSWER:
		if (vc != NULL) {
			BqAnswerAll(vc);
		} else {
			PLIST_ENTRY e;

			for (e = Dev->Channels.Flink; e != &Dev->Channels; e = e->Flink)
				BqAnswerAll(CONTAINING_RECORD(e, BQ_CHANNEL, Link));
		}
		return STATUS_SUCCESS;
	case BQ_CMD_SAVE:
		return BqChannelSave(vc);
	case BQ_CMD_DETACH:
		return BqChannelGiveUp(vc, FALSE);
	case BQ_CMD_DISCARD:
		return BqChannelGiveUp(vc, TRUE);
	case BQ_CMD_RESTORE:
		return BqChannelRestore(vc);
	case BQ_CMD_RESUME:
		return BqChannelResume(vc);
	case BQ_CMD_CLOSE:
		BqChannelClose(vc);
		return STATUS_SUCCESS;
	case BQ_CMD_RESCIND:
		return BqChannelRescind(vc);
	default:
		return STATUS_INVALID_DEVICE_REQUEST;
	}
}

static VOID BqEvtIoDeviceControl(WDFQUEUE Queue, WDFREQUEST Request, size_t OutputBufferLength,
				 size_t InputBufferLength, ULONG IoControlCode)
{
	BQ_DEVICE *dev = BqGetDevice(WdfIoQueueGetDevice(Queue));
	size_t written = 0;
	NTSTATUS status;
	PVOID out;

	UNREFERENCED_PARAMETER(InputBufferLength);
	switch (IoControlCode) {
	case IOCTL_BLOCKQ_COMMAND:
		status = BqRunCommand(dev, Request);
		break;
	case IOCTL_BLOCKQ_COUNTERS:
		status = WdfRequestRetrieveOutputBuffer(Request, 1, &out, &OutputBufferLength);
		if (NT_SUCCESS(status))
			status = BqWriteCounters(dev, (char *)out, OutputBufferLength, &written);
		break;
	case IOCTL_BLOCKQ_EXPORT:
		status = BqStateExport(dev, Request, &written);
		break;
	case IOCTL_BLOCKQ_IMPORT:
		status = BqStateImport(dev, Request);
		break;
	default:
		status = STATUS_INVALID_DEVICE_REQUEST;
		break;
	}
	WdfRequestCompleteWithInformation(Request, status, written);
}
