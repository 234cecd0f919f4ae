/*
 * WDF structure marshalling for drivers compiled to wasm32: each WDF call that takes a
 * structure reads the members the shim needs and passes them to the shim
 * (src/devices/wasm/wdf-shim.ts) as plain arguments, so the TypeScript side never
 * depends on the structures' layout. WDF calls with plain arguments go to the shim
 * directly as imports. Not a driver source; linked beside one.
 */
#include <wdf.h>
#include <wdmsec.h>

/* wdmsec.lib's definition, which a control device's WdfControlDeviceInitAllocate takes. */
const UNICODE_STRING SDDL_DEVOBJ_SYS_ALL_ADM_ALL = RTL_CONSTANT_STRING(L"D:P(A;;GA;;;SY)(A;;GA;;;BA)");

#define SHIM(name) __attribute__((import_module("wdf"), import_name(#name)))

SHIM(DriverCreate) NTSTATUS shim_driver_create(PFN_WDF_DRIVER_DEVICE_ADD Add,
					       PFN_WDF_DRIVER_UNLOAD Unload, WDFDRIVER *Driver);
SHIM(SetPnpPower) VOID shim_set_pnp(PWDFDEVICE_INIT Init, PFN_WDF_DEVICE_PREPARE_HARDWARE Prepare,
				    PFN_WDF_DEVICE_RELEASE_HARDWARE Release);
SHIM(ObjectCreate) NTSTATUS shim_object_create(UINT32 Kind, WDFOBJECT Parent, PVOID Callback,
					       UINT32 Period, UINT32 ExecutionLevel,
					       PCWDF_OBJECT_CONTEXT_TYPE_INFO Type, UINT32 ContextSize,
					       PVOID Init, WDFOBJECT *Out);
SHIM(ObjectAllocateContext) NTSTATUS shim_allocate_context(WDFOBJECT Object,
							   PCWDF_OBJECT_CONTEXT_TYPE_INFO Type,
							   UINT32 ContextSize, PVOID *Context);
SHIM(RequestGetParameters) VOID shim_request_parameters(WDFREQUEST Request, PVOID Type,
							PVOID OutputLength, PVOID InputLength,
							PVOID IoControlCode);
SHIM(RegistryQueryULong) NTSTATUS shim_registry_query(WDFKEY Key, PCWSTR Name, UINT32 Bytes,
						      PULONG Value);
SHIM(ObjectSetCleanup) VOID shim_set_cleanup(WDFOBJECT Object, PFN_WDF_OBJECT_CONTEXT_CLEANUP Cleanup);
SHIM(DeviceInitAssignName) NTSTATUS shim_assign_name(PWDFDEVICE_INIT Init, PCWSTR Name, UINT32 Bytes);
SHIM(CreateSymbolicLink) NTSTATUS shim_symbolic_link(WDFDEVICE Device, PCWSTR Name, UINT32 Bytes);

/* Object kinds, as wdf-shim.ts numbers them. */
#define KIND_DEVICE 1
#define KIND_QUEUE 2
#define KIND_TIMER 3
#define KIND_WORKITEM 4
#define KIND_SPINLOCK 5
#define KIND_WAITLOCK 10

static PCWDF_OBJECT_CONTEXT_TYPE_INFO TypeOf(PWDF_OBJECT_ATTRIBUTES A)
{
	return A != NULL ? A->ContextTypeInfo : NULL;
}

static UINT32 SizeOf(PWDF_OBJECT_ATTRIBUTES A)
{
	if (A == NULL || A->ContextTypeInfo == NULL)
		return 0;
	return (UINT32)(A->ContextSizeOverride != 0 ? A->ContextSizeOverride :
						       A->ContextTypeInfo->ContextSize);
}

static UINT32 LevelOf(PWDF_OBJECT_ATTRIBUTES A)
{
	return A != NULL ? (UINT32)A->ExecutionLevel : (UINT32)WdfExecutionLevelInheritFromParent;
}

static WDFOBJECT ParentOf(PWDF_OBJECT_ATTRIBUTES A)
{
	return A != NULL ? A->ParentObject : NULL;
}

/* An object just created: its EvtCleanupCallback, if the attributes name one. */
static NTSTATUS Created(NTSTATUS Status, WDFOBJECT Object, PWDF_OBJECT_ATTRIBUTES A)
{
	if (NT_SUCCESS(Status) && A != NULL && A->EvtCleanupCallback != NULL)
		shim_set_cleanup(Object, A->EvtCleanupCallback);
	return Status;
}

NTSTATUS WdfDriverCreate(PDRIVER_OBJECT DriverObject, PCUNICODE_STRING RegistryPath,
			 PWDF_OBJECT_ATTRIBUTES DriverAttributes,
			 PWDF_DRIVER_CONFIG DriverConfig, WDFDRIVER *Driver)
{
	UNREFERENCED_PARAMETER(DriverObject);
	UNREFERENCED_PARAMETER(RegistryPath);
	UNREFERENCED_PARAMETER(DriverAttributes);
	return shim_driver_create(DriverConfig->EvtDriverDeviceAdd, DriverConfig->EvtDriverUnload,
				  Driver);
}

VOID WdfDeviceInitSetPnpPowerEventCallbacks(PWDFDEVICE_INIT DeviceInit,
					    PWDF_PNPPOWER_EVENT_CALLBACKS Callbacks)
{
	shim_set_pnp(DeviceInit, Callbacks->EvtDevicePrepareHardware,
		     Callbacks->EvtDeviceReleaseHardware);
}

NTSTATUS WdfDeviceCreate(PWDFDEVICE_INIT *DeviceInit, PWDF_OBJECT_ATTRIBUTES DeviceAttributes,
			 WDFDEVICE *Device)
{
	NTSTATUS status = shim_object_create(KIND_DEVICE, NULL, NULL, 0, LevelOf(DeviceAttributes),
					     TypeOf(DeviceAttributes), SizeOf(DeviceAttributes),
					     *DeviceInit, (WDFOBJECT *)Device);

	if (NT_SUCCESS(status))
		*DeviceInit = NULL; /* WDF owns the init structure from here on */
	return Created(status, *Device, DeviceAttributes);
}

NTSTATUS WdfIoQueueCreate(WDFDEVICE Device, PWDF_IO_QUEUE_CONFIG Config,
			  PWDF_OBJECT_ATTRIBUTES QueueAttributes, WDFQUEUE *Queue)
{
	WDFOBJECT q = NULL;
	NTSTATUS status = shim_object_create(KIND_QUEUE, Device, Config->EvtIoDeviceControl,
					     (UINT32)Config->DispatchType, LevelOf(QueueAttributes),
					     TypeOf(QueueAttributes), SizeOf(QueueAttributes),
					     NULL, &q);

	if (NT_SUCCESS(status) && Queue != NULL)
		*Queue = (WDFQUEUE)q;
	return Created(status, q, QueueAttributes);
}

NTSTATUS WdfTimerCreate(PWDF_TIMER_CONFIG Config, PWDF_OBJECT_ATTRIBUTES Attributes,
			WDFTIMER *Timer)
{
	NTSTATUS status = shim_object_create(KIND_TIMER, ParentOf(Attributes), Config->EvtTimerFunc,
					     Config->Period, LevelOf(Attributes), TypeOf(Attributes),
					     SizeOf(Attributes), NULL, (WDFOBJECT *)Timer);

	return Created(status, *Timer, Attributes);
}

NTSTATUS WdfWorkItemCreate(PWDF_WORKITEM_CONFIG Config, PWDF_OBJECT_ATTRIBUTES Attributes,
			   WDFWORKITEM *WorkItem)
{
	NTSTATUS status = shim_object_create(KIND_WORKITEM, ParentOf(Attributes),
					     Config->EvtWorkItemFunc, 0, LevelOf(Attributes),
					     TypeOf(Attributes), SizeOf(Attributes), NULL,
					     (WDFOBJECT *)WorkItem);

	return Created(status, *WorkItem, Attributes);
}

NTSTATUS WdfSpinLockCreate(PWDF_OBJECT_ATTRIBUTES SpinLockAttributes, WDFSPINLOCK *SpinLock)
{
	NTSTATUS status = shim_object_create(KIND_SPINLOCK, ParentOf(SpinLockAttributes), NULL, 0,
					     LevelOf(SpinLockAttributes),
					     TypeOf(SpinLockAttributes),
					     SizeOf(SpinLockAttributes), NULL, (WDFOBJECT *)SpinLock);

	return Created(status, *SpinLock, SpinLockAttributes);
}

NTSTATUS WdfWaitLockCreate(PWDF_OBJECT_ATTRIBUTES LockAttributes, WDFWAITLOCK *Lock)
{
	NTSTATUS status = shim_object_create(KIND_WAITLOCK, ParentOf(LockAttributes), NULL, 0,
					     LevelOf(LockAttributes), TypeOf(LockAttributes),
					     SizeOf(LockAttributes), NULL, (WDFOBJECT *)Lock);

	return Created(status, *Lock, LockAttributes);
}

NTSTATUS WdfDeviceInitAssignName(PWDFDEVICE_INIT DeviceInit, PCUNICODE_STRING DeviceName)
{
	return shim_assign_name(DeviceInit, DeviceName->Buffer, DeviceName->Length);
}

NTSTATUS WdfDeviceCreateSymbolicLink(WDFDEVICE Device, PCUNICODE_STRING SymbolicLinkName)
{
	return shim_symbolic_link(Device, SymbolicLinkName->Buffer, SymbolicLinkName->Length);
}

NTSTATUS WdfObjectAllocateContext(WDFOBJECT Handle, PWDF_OBJECT_ATTRIBUTES ContextAttributes,
				  PVOID *Context)
{
	return shim_allocate_context(Handle, TypeOf(ContextAttributes), SizeOf(ContextAttributes),
				     Context);
}

VOID WdfRequestGetParameters(WDFREQUEST Request, PWDF_REQUEST_PARAMETERS Parameters)
{
	shim_request_parameters(Request, &Parameters->Type,
				&Parameters->Parameters.DeviceIoControl.OutputBufferLength,
				&Parameters->Parameters.DeviceIoControl.InputBufferLength,
				&Parameters->Parameters.DeviceIoControl.IoControlCode);
}

NTSTATUS WdfRegistryQueryULong(WDFKEY Key, PCUNICODE_STRING ValueName, PULONG Value)
{
	return shim_registry_query(Key, ValueName->Buffer, ValueName->Length, Value);
}
