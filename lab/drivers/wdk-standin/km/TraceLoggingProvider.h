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

/* Field macros: each takes (value, "fieldName") like the real ones. */
int _TlgStandInUInt64(ULONGLONG value, const char *name);
int _TlgStandInUInt32(ULONG value, const char *name);
int _TlgStandInString(const char *value, const char *name);
int _TlgStandInBoolean(BOOLEAN value, const char *name);
#define TraceLoggingUInt64(value, name) _TlgStandInUInt64((value), name "")
#define TraceLoggingUInt32(value, name) _TlgStandInUInt32((value), name "")
#define TraceLoggingString(value, name) _TlgStandInString((value), name "")
#define TraceLoggingBoolean(value, name) _TlgStandInBoolean((value), name "")

void _TlgStandInWrite(TraceLoggingHProvider hProvider, const char *eventName, int first, ...);
#define TraceLoggingWrite(hProvider, eventName, ...) \
	_TlgStandInWrite((hProvider), eventName "", __VA_ARGS__)
