/*
 * STAND-IN for the WDK's wdf.h (KMDF): NOT the Windows Driver Kit header.
 * Declares the subset of KMDF the sample drivers use, with the public shapes of the
 * structures' leading members. In the real header the Wdf* calls are macros through
 * the framework's function table; here they are plain prototypes, which type-checks
 * the same arguments. See ../README.md. Never used in a real build.
 */
#pragma once

#include <ntddk.h>

/* ---- Handles -------------------------------------------------------------- */
typedef PVOID WDFOBJECT;
typedef struct WDFDRIVER__ *WDFDRIVER;
typedef struct WDFDEVICE__ *WDFDEVICE;
typedef struct WDFQUEUE__ *WDFQUEUE;
typedef struct WDFREQUEST__ *WDFREQUEST;
typedef struct WDFTIMER__ *WDFTIMER;
typedef struct WDFSPINLOCK__ *WDFSPINLOCK;
typedef struct WDFWAITLOCK__ *WDFWAITLOCK;
typedef struct WDFWORKITEM__ *WDFWORKITEM;
typedef struct WDFKEY__ *WDFKEY;
typedef struct WDFCMRESLIST__ *WDFCMRESLIST;
typedef struct WDFDEVICE_INIT *PWDFDEVICE_INIT;

#define WDF_NO_OBJECT_ATTRIBUTES NULL
#define WDF_NO_HANDLE NULL

/* Relative timeouts are negative 100 ns units. */
#define WDF_REL_TIMEOUT_IN_MS(ms) (-((LONGLONG)(ms) * 10 * 1000))

/* ---- Object attributes and typed contexts -------------------------------- */
/*
 * One type-info object per context type across the whole driver, as in the real
 * header (selectany): a context is found by that object's address, so every file
 * must see the same one.
 */
typedef enum _WDF_EXECUTION_LEVEL {
	WdfExecutionLevelInvalid = 0,
	WdfExecutionLevelInheritFromParent,
	WdfExecutionLevelPassive,
	WdfExecutionLevelDispatch,
} WDF_EXECUTION_LEVEL;

typedef enum _WDF_SYNCHRONIZATION_SCOPE {
	WdfSynchronizationScopeInvalid = 0,
	WdfSynchronizationScopeInheritFromParent,
	WdfSynchronizationScopeDevice,
	WdfSynchronizationScopeQueue,
	WdfSynchronizationScopeNone,
} WDF_SYNCHRONIZATION_SCOPE;

typedef VOID EVT_WDF_OBJECT_CONTEXT_CLEANUP(WDFOBJECT Object);
typedef EVT_WDF_OBJECT_CONTEXT_CLEANUP *PFN_WDF_OBJECT_CONTEXT_CLEANUP;
typedef VOID EVT_WDF_OBJECT_CONTEXT_DESTROY(WDFOBJECT Object);
typedef EVT_WDF_OBJECT_CONTEXT_DESTROY *PFN_WDF_OBJECT_CONTEXT_DESTROY;

typedef struct _WDF_OBJECT_CONTEXT_TYPE_INFO {
	ULONG Size;
	PCSTR ContextName;
	size_t ContextSize;
	const struct _WDF_OBJECT_CONTEXT_TYPE_INFO *UniqueType;
	PVOID EvtDriverGetUniqueContextType;
} WDF_OBJECT_CONTEXT_TYPE_INFO;
typedef const WDF_OBJECT_CONTEXT_TYPE_INFO *PCWDF_OBJECT_CONTEXT_TYPE_INFO;

typedef struct _WDF_OBJECT_ATTRIBUTES {
	ULONG Size;
	PFN_WDF_OBJECT_CONTEXT_CLEANUP EvtCleanupCallback;
	PFN_WDF_OBJECT_CONTEXT_DESTROY EvtDestroyCallback;
	WDF_EXECUTION_LEVEL ExecutionLevel;
	WDF_SYNCHRONIZATION_SCOPE SynchronizationScope;
	WDFOBJECT ParentObject;
	size_t ContextSizeOverride;
	PCWDF_OBJECT_CONTEXT_TYPE_INFO ContextTypeInfo;
} WDF_OBJECT_ATTRIBUTES, *PWDF_OBJECT_ATTRIBUTES;

FORCEINLINE VOID WDF_OBJECT_ATTRIBUTES_INIT(PWDF_OBJECT_ATTRIBUTES Attributes)
{
	RtlZeroMemory(Attributes, sizeof(WDF_OBJECT_ATTRIBUTES));
	Attributes->Size = sizeof(WDF_OBJECT_ATTRIBUTES);
	Attributes->ExecutionLevel = WdfExecutionLevelInheritFromParent;
	Attributes->SynchronizationScope = WdfSynchronizationScopeInheritFromParent;
}

PVOID WdfObjectGetTypedContextWorker(WDFOBJECT Handle,
				     PCWDF_OBJECT_CONTEXT_TYPE_INFO TypeInfo);
NTSTATUS WdfObjectAllocateContext(WDFOBJECT Handle,
				  PWDF_OBJECT_ATTRIBUTES ContextAttributes,
				  PVOID *Context);
VOID WdfObjectDelete(WDFOBJECT Object);

#define WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(_contexttype, _castingfunction)        \
	__declspec(selectany) extern const WDF_OBJECT_CONTEXT_TYPE_INFO             \
		WDF_##_contexttype##_TYPE_INFO = {                                   \
		sizeof(WDF_OBJECT_CONTEXT_TYPE_INFO), #_contexttype,                 \
		sizeof(_contexttype), &WDF_##_contexttype##_TYPE_INFO, NULL };       \
	FORCEINLINE _contexttype *_castingfunction(WDFOBJECT Handle)                \
	{                                                                            \
		return (_contexttype *)WdfObjectGetTypedContextWorker(               \
			Handle, WDF_##_contexttype##_TYPE_INFO.UniqueType);          \
	}

#define WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(_attributes, _contexttype) \
	do {                                                                 \
		WDF_OBJECT_ATTRIBUTES_INIT(_attributes);                     \
		(_attributes)->ContextTypeInfo =                             \
			WDF_##_contexttype##_TYPE_INFO.UniqueType;           \
	} while (0)

/* ---- Driver --------------------------------------------------------------- */
typedef NTSTATUS EVT_WDF_DRIVER_DEVICE_ADD(WDFDRIVER Driver, PWDFDEVICE_INIT DeviceInit);
typedef EVT_WDF_DRIVER_DEVICE_ADD *PFN_WDF_DRIVER_DEVICE_ADD;
typedef VOID EVT_WDF_DRIVER_UNLOAD(WDFDRIVER Driver);
typedef EVT_WDF_DRIVER_UNLOAD *PFN_WDF_DRIVER_UNLOAD;

typedef struct _WDF_DRIVER_CONFIG {
	ULONG Size;
	PFN_WDF_DRIVER_DEVICE_ADD EvtDriverDeviceAdd;
	PFN_WDF_DRIVER_UNLOAD EvtDriverUnload;
	ULONG DriverInitFlags;
	ULONG DriverPoolTag;
} WDF_DRIVER_CONFIG, *PWDF_DRIVER_CONFIG;

FORCEINLINE VOID WDF_DRIVER_CONFIG_INIT(PWDF_DRIVER_CONFIG Config,
					PFN_WDF_DRIVER_DEVICE_ADD EvtDriverDeviceAdd)
{
	RtlZeroMemory(Config, sizeof(WDF_DRIVER_CONFIG));
	Config->Size = sizeof(WDF_DRIVER_CONFIG);
	Config->EvtDriverDeviceAdd = EvtDriverDeviceAdd;
}

NTSTATUS WdfDriverCreate(PDRIVER_OBJECT DriverObject, PCUNICODE_STRING RegistryPath,
			 PWDF_OBJECT_ATTRIBUTES DriverAttributes,
			 PWDF_DRIVER_CONFIG DriverConfig, WDFDRIVER *Driver);
NTSTATUS WdfDriverOpenParametersRegistryKey(WDFDRIVER Driver, ACCESS_MASK DesiredAccess,
					   PWDF_OBJECT_ATTRIBUTES KeyAttributes, WDFKEY *Key);

/* ---- Device --------------------------------------------------------------- */
typedef NTSTATUS EVT_WDF_DEVICE_PREPARE_HARDWARE(WDFDEVICE Device,
						 WDFCMRESLIST ResourcesRaw,
						 WDFCMRESLIST ResourcesTranslated);
typedef EVT_WDF_DEVICE_PREPARE_HARDWARE *PFN_WDF_DEVICE_PREPARE_HARDWARE;
typedef NTSTATUS EVT_WDF_DEVICE_RELEASE_HARDWARE(WDFDEVICE Device,
						 WDFCMRESLIST ResourcesTranslated);
typedef EVT_WDF_DEVICE_RELEASE_HARDWARE *PFN_WDF_DEVICE_RELEASE_HARDWARE;

/* Leading members only; the stand-in never relies on the rest. */
typedef struct _WDF_PNPPOWER_EVENT_CALLBACKS {
	ULONG Size;
	PFN_WDF_DEVICE_PREPARE_HARDWARE EvtDevicePrepareHardware;
	PFN_WDF_DEVICE_RELEASE_HARDWARE EvtDeviceReleaseHardware;
} WDF_PNPPOWER_EVENT_CALLBACKS, *PWDF_PNPPOWER_EVENT_CALLBACKS;

FORCEINLINE VOID WDF_PNPPOWER_EVENT_CALLBACKS_INIT(PWDF_PNPPOWER_EVENT_CALLBACKS Callbacks)
{
	RtlZeroMemory(Callbacks, sizeof(WDF_PNPPOWER_EVENT_CALLBACKS));
	Callbacks->Size = sizeof(WDF_PNPPOWER_EVENT_CALLBACKS);
}

typedef VOID EVT_WDF_IO_IN_CALLER_CONTEXT(WDFDEVICE Device, WDFREQUEST Request);
typedef EVT_WDF_IO_IN_CALLER_CONTEXT *PFN_WDF_IO_IN_CALLER_CONTEXT;

VOID WdfDeviceInitSetPnpPowerEventCallbacks(PWDFDEVICE_INIT DeviceInit,
					    PWDF_PNPPOWER_EVENT_CALLBACKS Callbacks);
VOID WdfDeviceInitSetIoInCallerContextCallback(PWDFDEVICE_INIT DeviceInit,
					       PFN_WDF_IO_IN_CALLER_CONTEXT EvtIoInCallerContext);
NTSTATUS WdfDeviceCreate(PWDFDEVICE_INIT *DeviceInit,
			 PWDF_OBJECT_ATTRIBUTES DeviceAttributes, WDFDEVICE *Device);
NTSTATUS WdfDeviceCreateSymbolicLink(WDFDEVICE Device, PCUNICODE_STRING SymbolicLinkName);

/*
 * A control device: no PnP, no power; named (WdfDeviceInitAssignName), and not
 * sent I/O before WdfControlFinishInitializing. WdfDeviceInitFree gives back an
 * init structure WdfDeviceCreate did not take (it failed, or was never called).
 */
PWDFDEVICE_INIT WdfControlDeviceInitAllocate(WDFDRIVER Driver, const UNICODE_STRING *SDDLString);
NTSTATUS WdfDeviceInitAssignName(PWDFDEVICE_INIT DeviceInit, PCUNICODE_STRING DeviceName);
VOID WdfDeviceInitFree(PWDFDEVICE_INIT DeviceInit);
VOID WdfControlFinishInitializing(WDFDEVICE Device);
PDEVICE_OBJECT WdfDeviceWdmGetDeviceObject(WDFDEVICE Device);
NTSTATUS WdfDeviceEnqueueRequest(WDFDEVICE Device, WDFREQUEST Request);
NTSTATUS WdfFdoQueryForInterface(WDFDEVICE Fdo, LPCGUID InterfaceType,
				 PINTERFACE Interface, USHORT Size, USHORT Version,
				 PVOID InterfaceSpecificData);

#define PLUGPLAY_REGKEY_DEVICE 1
#define KEY_READ 0x20019
NTSTATUS WdfDeviceOpenRegistryKey(WDFDEVICE Device, ULONG DeviceInstanceKeyType,
				  ACCESS_MASK DesiredAccess,
				  PWDF_OBJECT_ATTRIBUTES KeyAttributes, WDFKEY *Key);
NTSTATUS WdfRegistryQueryULong(WDFKEY Key, PCUNICODE_STRING ValueName, PULONG Value);
VOID WdfRegistryClose(WDFKEY Key);

/* ---- Queues and requests -------------------------------------------------- */
typedef enum _WDF_IO_QUEUE_DISPATCH_TYPE {
	WdfIoQueueDispatchInvalid = 0,
	WdfIoQueueDispatchSequential,
	WdfIoQueueDispatchParallel,
	WdfIoQueueDispatchManual,
} WDF_IO_QUEUE_DISPATCH_TYPE;

typedef enum _WDF_TRI_STATE {
	WdfFalse = FALSE,
	WdfTrue = TRUE,
	WdfUseDefault = 2,
} WDF_TRI_STATE;

typedef VOID EVT_WDF_IO_QUEUE_IO_DEVICE_CONTROL(WDFQUEUE Queue, WDFREQUEST Request,
						size_t OutputBufferLength,
						size_t InputBufferLength,
						ULONG IoControlCode);
typedef EVT_WDF_IO_QUEUE_IO_DEVICE_CONTROL *PFN_WDF_IO_QUEUE_IO_DEVICE_CONTROL;

typedef struct _WDF_IO_QUEUE_CONFIG {
	ULONG Size;
	WDF_IO_QUEUE_DISPATCH_TYPE DispatchType;
	WDF_TRI_STATE PowerManaged;
	BOOLEAN AllowZeroLengthRequests;
	BOOLEAN DefaultQueue;
	PFN_WDF_IO_QUEUE_IO_DEVICE_CONTROL EvtIoDeviceControl;
} WDF_IO_QUEUE_CONFIG, *PWDF_IO_QUEUE_CONFIG;

FORCEINLINE VOID WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(PWDF_IO_QUEUE_CONFIG Config,
						       WDF_IO_QUEUE_DISPATCH_TYPE DispatchType)
{
	RtlZeroMemory(Config, sizeof(WDF_IO_QUEUE_CONFIG));
	Config->Size = sizeof(WDF_IO_QUEUE_CONFIG);
	Config->PowerManaged = WdfUseDefault;
	Config->DefaultQueue = TRUE;
	Config->DispatchType = DispatchType;
}

typedef enum _WDF_REQUEST_TYPE {
	WdfRequestTypeCreate = 0x0,
	WdfRequestTypeDeviceControl = 0xE,
	WdfRequestTypeOther = 0xFF,
} WDF_REQUEST_TYPE;

typedef struct _WDF_REQUEST_PARAMETERS {
	USHORT Size;
	UCHAR MinorFunction;
	WDF_REQUEST_TYPE Type;
	union {
		struct {
			size_t OutputBufferLength;
			size_t InputBufferLength;
			ULONG IoControlCode;
			PVOID Type3InputBuffer;
		} DeviceIoControl;
	} Parameters;
} WDF_REQUEST_PARAMETERS, *PWDF_REQUEST_PARAMETERS;

FORCEINLINE VOID WDF_REQUEST_PARAMETERS_INIT(PWDF_REQUEST_PARAMETERS Parameters)
{
	RtlZeroMemory(Parameters, sizeof(WDF_REQUEST_PARAMETERS));
	Parameters->Size = sizeof(WDF_REQUEST_PARAMETERS);
}

NTSTATUS WdfIoQueueCreate(WDFDEVICE Device, PWDF_IO_QUEUE_CONFIG Config,
			  PWDF_OBJECT_ATTRIBUTES QueueAttributes, WDFQUEUE *Queue);
WDFDEVICE WdfIoQueueGetDevice(WDFQUEUE Queue);
VOID WdfRequestGetParameters(WDFREQUEST Request, PWDF_REQUEST_PARAMETERS Parameters);
NTSTATUS WdfRequestRetrieveInputBuffer(WDFREQUEST Request, size_t MinimumRequiredLength,
				       PVOID *Buffer, size_t *Length);
NTSTATUS WdfRequestRetrieveOutputBuffer(WDFREQUEST Request, size_t MinimumRequiredSize,
					PVOID *Buffer, size_t *Length);
VOID WdfRequestComplete(WDFREQUEST Request, NTSTATUS Status);
VOID WdfRequestCompleteWithInformation(WDFREQUEST Request, NTSTATUS Status,
				       ULONG_PTR Information);

/* ---- Timers, work items, spin locks --------------------------------------- */
typedef VOID EVT_WDF_TIMER(WDFTIMER Timer);
typedef EVT_WDF_TIMER *PFN_WDF_TIMER;

typedef struct _WDF_TIMER_CONFIG {
	ULONG Size;
	PFN_WDF_TIMER EvtTimerFunc;
	ULONG Period;
	BOOLEAN AutomaticSerialization;
	ULONG TolerableDelay;
	BOOLEAN UseHighResolutionTimer;
} WDF_TIMER_CONFIG, *PWDF_TIMER_CONFIG;

FORCEINLINE VOID WDF_TIMER_CONFIG_INIT_PERIODIC(PWDF_TIMER_CONFIG Config,
						PFN_WDF_TIMER EvtTimerFunc, LONG Period)
{
	RtlZeroMemory(Config, sizeof(WDF_TIMER_CONFIG));
	Config->Size = sizeof(WDF_TIMER_CONFIG);
	Config->EvtTimerFunc = EvtTimerFunc;
	Config->Period = (ULONG)Period;
	Config->AutomaticSerialization = TRUE;
}

/* A one-shot timer: Period 0, fires once per WdfTimerStart. */
FORCEINLINE VOID WDF_TIMER_CONFIG_INIT(PWDF_TIMER_CONFIG Config, PFN_WDF_TIMER EvtTimerFunc)
{
	WDF_TIMER_CONFIG_INIT_PERIODIC(Config, EvtTimerFunc, 0);
}

NTSTATUS WdfTimerCreate(PWDF_TIMER_CONFIG Config, PWDF_OBJECT_ATTRIBUTES Attributes,
			WDFTIMER *Timer);
BOOLEAN WdfTimerStart(WDFTIMER Timer, LONGLONG DueTime);
BOOLEAN WdfTimerStop(WDFTIMER Timer, BOOLEAN Wait);
WDFOBJECT WdfTimerGetParentObject(WDFTIMER Timer);

typedef VOID EVT_WDF_WORKITEM(WDFWORKITEM WorkItem);
typedef EVT_WDF_WORKITEM *PFN_WDF_WORKITEM;

typedef struct _WDF_WORKITEM_CONFIG {
	ULONG Size;
	PFN_WDF_WORKITEM EvtWorkItemFunc;
	BOOLEAN AutomaticSerialization;
} WDF_WORKITEM_CONFIG, *PWDF_WORKITEM_CONFIG;

FORCEINLINE VOID WDF_WORKITEM_CONFIG_INIT(PWDF_WORKITEM_CONFIG Config,
					  PFN_WDF_WORKITEM EvtWorkItemFunc)
{
	RtlZeroMemory(Config, sizeof(WDF_WORKITEM_CONFIG));
	Config->Size = sizeof(WDF_WORKITEM_CONFIG);
	Config->EvtWorkItemFunc = EvtWorkItemFunc;
	Config->AutomaticSerialization = TRUE;
}

NTSTATUS WdfWorkItemCreate(PWDF_WORKITEM_CONFIG Config, PWDF_OBJECT_ATTRIBUTES Attributes,
			   WDFWORKITEM *WorkItem);
VOID WdfWorkItemEnqueue(WDFWORKITEM WorkItem);
VOID WdfWorkItemFlush(WDFWORKITEM WorkItem);
WDFOBJECT WdfWorkItemGetParentObject(WDFWORKITEM WorkItem);

NTSTATUS WdfSpinLockCreate(PWDF_OBJECT_ATTRIBUTES SpinLockAttributes,
			   WDFSPINLOCK *SpinLock);
VOID WdfSpinLockAcquire(WDFSPINLOCK SpinLock);
VOID WdfSpinLockRelease(WDFSPINLOCK SpinLock);

/* A wait lock: acquired at PASSIVE_LEVEL (Timeout NULL: waits as long as it takes). */
NTSTATUS WdfWaitLockCreate(PWDF_OBJECT_ATTRIBUTES LockAttributes, WDFWAITLOCK *Lock);
NTSTATUS WdfWaitLockAcquire(WDFWAITLOCK Lock, PLONGLONG Timeout);
VOID WdfWaitLockRelease(WDFWAITLOCK Lock);
