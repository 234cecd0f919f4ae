/*
 * The Windows guest driver object: DriverEntry and unload, and its PnP devices,
 * one per VMBus channel offer, each with its KMCL client channel. The control
 * device (\\.\VmbusSampleGuest) is guest-control.c's.
 *
 * Registry parameters: RingPages (default 4) under each device's hardware key,
 * read when the device is added; TraceKiB (default 4096) under the driver's
 * Parameters key, read in DriverEntry (the trace is the driver's). The INF sets
 * both; reg.exe changes them before the device or the driver starts.
 */
#include "guest.h"

GUEST_DRIVER GuestDriver;

DRIVER_INITIALIZE DriverEntry;
static EVT_WDF_DRIVER_UNLOAD GuestEvtDriverUnload;
static EVT_WDF_DRIVER_DEVICE_ADD GuestEvtDeviceAdd;
static EVT_WDF_DEVICE_PREPARE_HARDWARE GuestEvtPrepareHardware;
static EVT_WDF_DEVICE_RELEASE_HARDWARE GuestEvtReleaseHardware;
static EVT_WDF_OBJECT_CONTEXT_CLEANUP GuestEvtDeviceCleanup;

static ULONG GuestQueryULong(WDFKEY Key, PCUNICODE_STRING Name, ULONG Default)
{
	ULONG value = Default;

	if (!NT_SUCCESS(WdfRegistryQueryULong(Key, Name, &value)) || value == 0)
		value = Default;
	return value;
}

NTSTATUS DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
	DECLARE_CONST_UNICODE_STRING(traceKibName, L"TraceKiB");
	WDF_OBJECT_ATTRIBUTES attributes;
	WDF_DRIVER_CONFIG config;
	ULONG traceKib = GUEST_DEFAULT_TRACE_KIB;
	WDFDRIVER driver;
	NTSTATUS status;
	WDFKEY key;

	InitializeListHead(&GuestDriver.Devices);
	InitializeListHead(&GuestDriver.Marks);
	GuestDriver.HoldOverrideMs = -1;
	WDF_DRIVER_CONFIG_INIT(&config, GuestEvtDeviceAdd);
	config.EvtDriverUnload = GuestEvtDriverUnload;
	status = WdfDriverCreate(DriverObject, RegistryPath, WDF_NO_OBJECT_ATTRIBUTES, &config,
				 &driver);
	if (!NT_SUCCESS(status))
		return status;
	/* Parented to the driver: the framework deletes them after EvtDriverUnload. */
	WDF_OBJECT_ATTRIBUTES_INIT(&attributes);
	attributes.ParentObject = driver;
	status = WdfWaitLockCreate(&attributes, &GuestDriver.DevicesLock);
	if (!NT_SUCCESS(status))
		return status;
	if (NT_SUCCESS(WdfDriverOpenParametersRegistryKey(driver, KEY_READ,
							  WDF_NO_OBJECT_ATTRIBUTES, &key))) {
		traceKib = GuestQueryULong(key, &traceKibName, GUEST_DEFAULT_TRACE_KIB);
		WdfRegistryClose(key);
	}
	status = GuestTraceInit(driver, traceKib);
	if (!NT_SUCCESS(status))
		GuestTraceFree(); /* DriverEntry failed: no unload callback follows */
	return status;
}

/* Every device is gone (the last one deleted the control device): the driver's own. */
static VOID GuestEvtDriverUnload(WDFDRIVER Driver)
{
	UNREFERENCED_PARAMETER(Driver);
	GuestFreeMarks();
	GuestTraceFree();
}

static ULONG GuestReadParameter(WDFDEVICE Device, PCUNICODE_STRING Name, ULONG Default)
{
	ULONG value = Default;
	WDFKEY key;

	if (NT_SUCCESS(WdfDeviceOpenRegistryKey(Device, PLUGPLAY_REGKEY_DEVICE, KEY_READ,
						WDF_NO_OBJECT_ATTRIBUTES, &key))) {
		value = GuestQueryULong(key, Name, Default);
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
	DECLARE_CONST_UNICODE_STRING(ringPagesName, L"RingPages");
	WDF_PNPPOWER_EVENT_CALLBACKS pnp;
	WDF_OBJECT_ATTRIBUTES attributes;
	GUEST_DEVICE *dev;
	WDFDEVICE device;
	NTSTATUS status;

	WDF_PNPPOWER_EVENT_CALLBACKS_INIT(&pnp);
	pnp.EvtDevicePrepareHardware = GuestEvtPrepareHardware;
	pnp.EvtDeviceReleaseHardware = GuestEvtReleaseHardware;
	WdfDeviceInitSetPnpPowerEventCallbacks(DeviceInit, &pnp);

	WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attributes, GUEST_DEVICE);
	/* Counts the device out, and deletes the control device after the last one. */
	attributes.EvtCleanupCallback = GuestEvtDeviceCleanup;
	status = WdfDeviceCreate(&DeviceInit, &attributes, &device);
	if (!NT_SUCCESS(status))
		return status;
	dev = GuestGetDevice(device);
	dev->Device = device;
	InitializeListHead(&dev->Held);
	dev->RingPages = GuestReadParameter(device, &ringPagesName, SP_DEFAULT_RING_PAGES);

	/* Counted from here: a failure below deletes the device, and its cleanup counts it out. */
	WdfWaitLockAcquire(GuestDriver.DevicesLock, NULL);
	dev->HoldOverrideMs = GuestDriver.HoldOverrideMs;
	InsertTailList(&GuestDriver.Devices, &dev->Link);
	dev->Linked = TRUE; /* commands skip it until Opened names its channel */
	GuestDriver.DeviceCount++;
	if (GuestDriver.ControlDevice == NULL)
		status = GuestControlCreate(Driver);
	WdfWaitLockRelease(GuestDriver.DevicesLock);
	if (!NT_SUCCESS(status))
		return status;
	return GuestCreateChildObjects(dev);
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

/*
 * The device goes (its channel was rescinded, the guest disabled it, or the
 * driver unloads): unlinked first, so no command reaches it; then the channel
 * closes, tracing its end into the driver's trace; its next tx is kept for the
 * channel's next device.
 */
static NTSTATUS GuestEvtReleaseHardware(WDFDEVICE Device, WDFCMRESLIST ResourcesTranslated)
{
	GUEST_DEVICE *dev = GuestGetDevice(Device);

	UNREFERENCED_PARAMETER(ResourcesTranslated);
	WdfWaitLockAcquire(GuestDriver.DevicesLock, NULL);
	if (dev->Linked) {
		RemoveEntryList(&dev->Link);
		dev->Linked = FALSE;
	}
	if (dev->KmclValid) {
		GuestChannelDestroy(dev);
		dev->Kmcl.InterfaceDereference(dev->Kmcl.Context);
		dev->KmclValid = FALSE;
	}
	GuestMarkTx(dev);
	WdfWaitLockRelease(GuestDriver.DevicesLock);
	return STATUS_SUCCESS;
}

static VOID GuestEvtDeviceCleanup(WDFOBJECT Object)
{
	GUEST_DEVICE *dev = GuestGetDevice((WDFDEVICE)Object);

	WdfWaitLockAcquire(GuestDriver.DevicesLock, NULL);
	if (dev->Linked) {
		RemoveEntryList(&dev->Link);
		dev->Linked = FALSE;
	}
	if (--GuestDriver.DeviceCount == 0)
		GuestControlDelete();
	WdfWaitLockRelease(GuestDriver.DevicesLock);
}
