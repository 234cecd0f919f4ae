/*
 * STAND-IN for the WDK's ntddk.h: NOT the Windows Driver Kit header.
 * Declares only the NT types and kernel routines the sample drivers use, so CI can
 * type-check them with clang on Linux. See ../README.md. Never used in a real build.
 */
#pragma once

#include <stddef.h>
#include <stdarg.h>

#define STANDIN_WDK 1

/* ---- Base types (LLP64) -------------------------------------------------- */
typedef void VOID, *PVOID;
typedef const void *PCVOID;
typedef char CHAR, *PCHAR;
typedef const char *PCSTR, *PCCHAR;
typedef char *PSTR;
typedef unsigned char UCHAR, *PUCHAR, BOOLEAN, *PBOOLEAN, UINT8;
typedef unsigned short USHORT, *PUSHORT, UINT16, *PUINT16, WCHAR, *PWCH, *PWSTR;
typedef const unsigned short *PCWSTR;
typedef short SHORT;
typedef int INT, LONG32;
typedef long LONG, *PLONG;
typedef unsigned long ULONG, *PULONG;
typedef unsigned int UINT32, *PUINT32, UINT;
typedef __int64 LONGLONG, LONG64, INT64, *PLONG64, *PLONGLONG;
typedef unsigned __int64 ULONGLONG, ULONG64, UINT64, *PULONG64, *PUINT64, DWORD64;
typedef unsigned __int64 ULONG_PTR, SIZE_T, *PSIZE_T, *PULONG_PTR;
typedef __int64 LONG_PTR;
typedef LONG NTSTATUS;
typedef PVOID HANDLE, *PHANDLE;
typedef UCHAR KIRQL;
typedef ULONG_PTR KSPIN_LOCK;
typedef ULONG ACCESS_MASK;
typedef ULONG64 PFN_NUMBER, *PPFN_NUMBER;

#define TRUE 1
#define FALSE 0
#ifndef NULL
#define NULL ((void *)0)
#endif

#define VOID void
#define FORCEINLINE static __inline
#define NTAPI __stdcall
#define FASTCALL /* no calling-convention change on x64 */
#define DECLSPEC_ALIGN(x) __declspec(align(x))
#define UNREFERENCED_PARAMETER(P) ((void)(P))
#define ARRAYSIZE(a) (sizeof(a) / sizeof((a)[0]))
#define FIELD_OFFSET(type, field) ((LONG)offsetof(type, field))
#define CONTAINING_RECORD(address, type, field) \
	((type *)((PCHAR)(address) - (ULONG_PTR)(&((type *)0)->field)))

/*
 * SAL annotations. The WDK's analysis tools (PREfast, SDV) read them; clang cannot.
 * Two kinds here:
 * - _Must_inspect_result_ becomes clang's warn_unused_result, so a build with
 *   -Werror=unused-result refuses a driver that ignores such a result, as PREfast
 *   would warn. (clang checks it on a function or on a struct member that points to
 *   one, so the KMCL tables carry it on their members.)
 * - The IRQL and allocation annotations expand to nothing for clang. They stay in the
 *   declarations as data: the emulator's kernel shim (src/devices/wasm/irql.ts) keeps
 *   the same IRQL rules, and a test holds the two to each other.
 */
#define _In_
#define _In_opt_
#define _Out_
#define _Out_opt_
#define _Inout_
#define _Inout_opt_
#define _In_reads_bytes_(n)
#define _In_reads_bytes_opt_(n)
#define _Out_writes_bytes_(n)
#define _Out_writes_bytes_opt_(n)
#define _Out_writes_bytes_to_(n, m)
#define _Out_writes_bytes_to_opt_(n, m)
#define _Must_inspect_result_ __attribute__((warn_unused_result))
#define _IRQL_requires_(x)
#define _IRQL_requires_max_(x)
#define _IRQL_requires_min_(x)
#define _IRQL_raises_(x)
#define _When_(condition, annotation)
#define _Success_(expr)
#define __drv_allocatesMem(kind)
#define __drv_freesMem(kind)
#define __drv_aliasesMem
#define _Use_decl_annotations_
#define _Function_class_(x)
#define _Requires_lock_held_(x)
#define _Requires_lock_not_held_(x)

typedef struct _GUID {
	ULONG Data1;
	USHORT Data2;
	USHORT Data3;
	UCHAR Data4[8];
} GUID, *LPGUID;
typedef const GUID *LPCGUID;
typedef const GUID *REFGUID;

typedef union _LARGE_INTEGER {
	struct {
		ULONG LowPart;
		LONG HighPart;
	};
	LONGLONG QuadPart;
} LARGE_INTEGER, *PLARGE_INTEGER;

typedef struct _UNICODE_STRING {
	USHORT Length;
	USHORT MaximumLength;
	PWCH Buffer;
} UNICODE_STRING, *PUNICODE_STRING;
typedef const UNICODE_STRING *PCUNICODE_STRING;

/* Like the WDK's macro: a counted string over a wide literal. */
#define RTL_CONSTANT_STRING(s) \
	{ sizeof(s) - sizeof((s)[0]), sizeof(s), (PWCH)(s) }
#define DECLARE_CONST_UNICODE_STRING(name, s) \
	const UNICODE_STRING name = RTL_CONSTANT_STRING(s)

typedef struct _LIST_ENTRY {
	struct _LIST_ENTRY *Flink;
	struct _LIST_ENTRY *Blink;
} LIST_ENTRY, *PLIST_ENTRY;

/* The WDK defines these inline too. */
FORCEINLINE VOID InitializeListHead(PLIST_ENTRY head)
{
	head->Flink = head->Blink = head;
}

FORCEINLINE BOOLEAN IsListEmpty(const LIST_ENTRY *head)
{
	return (BOOLEAN)(head->Flink == head);
}

FORCEINLINE BOOLEAN RemoveEntryList(PLIST_ENTRY entry)
{
	PLIST_ENTRY next = entry->Flink, prev = entry->Blink;

	prev->Flink = next;
	next->Blink = prev;
	return (BOOLEAN)(next == prev);
}

FORCEINLINE PLIST_ENTRY RemoveHeadList(PLIST_ENTRY head)
{
	PLIST_ENTRY entry = head->Flink;

	RemoveEntryList(entry);
	return entry;
}

FORCEINLINE VOID InsertTailList(PLIST_ENTRY head, PLIST_ENTRY entry)
{
	PLIST_ENTRY prev = head->Blink;

	entry->Flink = head;
	entry->Blink = prev;
	prev->Flink = entry;
	head->Blink = entry;
}

/* ---- Status codes used --------------------------------------------------- */
#define NT_SUCCESS(s) (((NTSTATUS)(s)) >= 0)
#define STATUS_SUCCESS ((NTSTATUS)0x00000000L)
#define STATUS_PENDING ((NTSTATUS)0x00000103L)
#define STATUS_BUFFER_OVERFLOW ((NTSTATUS)0x80000005L)
#define STATUS_UNSUCCESSFUL ((NTSTATUS)0xC0000001L)
#define STATUS_NOT_IMPLEMENTED ((NTSTATUS)0xC0000002L)
#define STATUS_INVALID_PARAMETER ((NTSTATUS)0xC000000DL)
#define STATUS_INVALID_DEVICE_REQUEST ((NTSTATUS)0xC0000010L)
#define STATUS_MORE_PROCESSING_REQUIRED ((NTSTATUS)0xC0000016L)
#define STATUS_BUFFER_TOO_SMALL ((NTSTATUS)0xC0000023L)
#define STATUS_DATA_ERROR ((NTSTATUS)0xC000003EL)
#define STATUS_INSUFFICIENT_RESOURCES ((NTSTATUS)0xC000009AL)
#define STATUS_DEVICE_NOT_READY ((NTSTATUS)0xC00000A3L)
#define STATUS_NOT_SUPPORTED ((NTSTATUS)0xC00000BBL)
#define STATUS_CANCELLED ((NTSTATUS)0xC0000120L)
#define STATUS_INVALID_DEVICE_STATE ((NTSTATUS)0xC0000184L)
#define STATUS_NOT_FOUND ((NTSTATUS)0xC0000225L)
#define STATUS_DEVICE_REMOVED ((NTSTATUS)0xC00002B6L)

/* ---- IRQL, time, memory, interlocked ------------------------------------- */
#define PASSIVE_LEVEL 0
#define APC_LEVEL 1
#define DISPATCH_LEVEL 2

KIRQL KeGetCurrentIrql(void);
ULONGLONG KeQueryInterruptTime(void);

typedef ULONG64 POOL_FLAGS;
#define POOL_FLAG_NON_PAGED 0x0000000000000040ULL
#define POOL_FLAG_PAGED 0x0000000000000100ULL
_IRQL_requires_max_(DISPATCH_LEVEL) __drv_allocatesMem(Mem)
PVOID ExAllocatePool2(POOL_FLAGS Flags, SIZE_T NumberOfBytes, ULONG Tag);
_IRQL_requires_max_(DISPATCH_LEVEL)
VOID ExFreePoolWithTag(__drv_freesMem(Mem) PVOID P, ULONG Tag);

void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
#define RtlCopyMemory(d, s, n) memcpy((d), (s), (n))
#define RtlZeroMemory(d, n) memset((d), 0, (n))
#define RtlEqualMemory(a, b, n) (memcmp((a), (b), (n)) == 0)

/* Compiler intrinsics on the MSVC target; the WDK maps the Interlocked names to them. */
long _InterlockedIncrement(long volatile *Addend);
long _InterlockedDecrement(long volatile *Addend);
long long _InterlockedIncrement64(long long volatile *Addend);
long long _InterlockedExchangeAdd64(long long volatile *Addend, long long Value);
#define InterlockedIncrement _InterlockedIncrement
#define InterlockedDecrement _InterlockedDecrement
#define InterlockedIncrement64 _InterlockedIncrement64
#define InterlockedExchangeAdd64 _InterlockedExchangeAdd64

/* ---- Objects and handles ------------------------------------------------- */
typedef struct _DEVICE_OBJECT *PDEVICE_OBJECT;
typedef struct _DRIVER_OBJECT *PDRIVER_OBJECT;
typedef struct _MDL *PMDL;
typedef struct _IRP *PIRP;

_IRQL_requires_max_(PASSIVE_LEVEL)
NTSTATUS ZwClose(HANDLE Handle);

/* ---- Driver-defined interfaces (IRP_MN_QUERY_INTERFACE) ------------------ */
typedef VOID (*PINTERFACE_REFERENCE)(PVOID Context);
typedef VOID (*PINTERFACE_DEREFERENCE)(PVOID Context);

typedef struct _INTERFACE {
	USHORT Size;
	USHORT Version;
	PVOID Context;
	PINTERFACE_REFERENCE InterfaceReference;
	PINTERFACE_DEREFERENCE InterfaceDereference;
} INTERFACE, *PINTERFACE;

/* ---- I/O control codes --------------------------------------------------- */
#define CTL_CODE(DeviceType, Function, Method, Access) \
	(((DeviceType) << 16) | ((Access) << 14) | ((Function) << 2) | (Method))
#define FILE_DEVICE_UNKNOWN 0x00000022
#define METHOD_BUFFERED 0
#define FILE_ANY_ACCESS 0
#define FILE_READ_ACCESS 0x0001
#define FILE_WRITE_ACCESS 0x0002

/* ---- Debug output -------------------------------------------------------- */
#define DPFLTR_IHVDRIVER_ID 77
#define DPFLTR_ERROR_LEVEL 0
#define DPFLTR_INFO_LEVEL 3
ULONG DbgPrintEx(ULONG ComponentId, ULONG Level, PCSTR Format, ...);

/* The driver's entry point, as the WDK declares its role type. */
typedef NTSTATUS DRIVER_INITIALIZE(PDRIVER_OBJECT DriverObject,
				   PUNICODE_STRING RegistryPath);
