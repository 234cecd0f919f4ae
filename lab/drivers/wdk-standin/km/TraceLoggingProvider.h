/*
 * STAND-IN for the Windows SDK/WDK TraceLoggingProvider.h: NOT the real header.
 * Only the macros the sample VSP uses, shaped so clang checks what matters: the
 * provider is a declared handle, event names are string literals, and each field's
 * value has the field macro's type. Nothing is traced. See ../README.md.
 */
#pragma once

#include <ntddk.h>

typedef const struct _TlgProvider_t *TraceLoggingHProvider;

/* The real macro defines the provider's storage; here: a handle object. */
#define TRACELOGGING_DECLARE_PROVIDER(handle) extern const TraceLoggingHProvider handle
#define TRACELOGGING_DEFINE_PROVIDER(handle, name, id) \
	extern const TraceLoggingHProvider handle;     \
	const TraceLoggingHProvider handle = (TraceLoggingHProvider)(name "")

NTSTATUS TraceLoggingRegister(TraceLoggingHProvider hProvider);
VOID TraceLoggingUnregister(TraceLoggingHProvider hProvider);

/*
 * Field macros: each takes (value, "fieldName") like the real ones, and, as the real
 * ones do (they become EVENT_DATA_DESCRIPTORs), stands for a descriptor of the field
 * rather than a call: TraceLoggingWrite gathers them into an array and makes one call,
 * as the real macro makes one EtwWriteTransfer. The value is assigned to the member of
 * its form, so clang checks its type as it would an argument's.
 */
#define _TLG_STANDIN_UINT64 1
#define _TLG_STANDIN_UINT32 2
#define _TLG_STANDIN_STRING 3
#define _TLG_STANDIN_BOOLEAN 4
/* The real header's hex ones: the same numbers, with ETW's hex out-type. */
#define _TLG_STANDIN_HEXUINT64 5
#define _TLG_STANDIN_HEXUINT32 6
struct _TlgStandInField {
	ULONG Kind; /* _TLG_STANDIN_* */
	const char *Name;
	union {
		ULONGLONG UInt64;	/* also HexUInt64 */
		ULONG UInt32;		/* also HexUInt32 */
		const char *String;
		BOOLEAN Boolean;
	} Value;
};
#ifdef __wasm32__
/* The emulator's shim (src/devices/wasm/trace-shim.ts) reads this layout. */
_Static_assert(sizeof(struct _TlgStandInField) == 16, "trace-shim.ts reads 16-byte fields");
#endif
#define TraceLoggingUInt64(value, name) { _TLG_STANDIN_UINT64, name "", { .UInt64 = (value) } }
#define TraceLoggingUInt32(value, name) { _TLG_STANDIN_UINT32, name "", { .UInt32 = (value) } }
#define TraceLoggingString(value, name) { _TLG_STANDIN_STRING, name "", { .String = (value) } }
#define TraceLoggingBoolean(value, name) { _TLG_STANDIN_BOOLEAN, name "", { .Boolean = (value) } }
#define TraceLoggingHexUInt64(value, name) { _TLG_STANDIN_HEXUINT64, name "", { .UInt64 = (value) } }
#define TraceLoggingHexUInt32(value, name) { _TLG_STANDIN_HEXUINT32, name "", { .UInt32 = (value) } }

void _TlgStandInWrite(TraceLoggingHProvider hProvider, const char *eventName,
		      const struct _TlgStandInField *Fields, ULONG Count);
#define TraceLoggingWrite(hProvider, eventName, ...)					\
	do {										\
		const struct _TlgStandInField _tlgFields[] = { __VA_ARGS__ };		\
		_TlgStandInWrite((hProvider), eventName "", _tlgFields,			\
				 sizeof(_tlgFields) / sizeof(_tlgFields[0]));		\
	} while (0)
