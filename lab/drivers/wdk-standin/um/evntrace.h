/*
 * STAND-IN for the Windows SDK's evntrace.h and evntcons.h: NOT the real headers.
 * The ETW consumer subset used to read a captured .etl (OpenTrace, ProcessTrace,
 * EVENT_RECORD), leading members only. See ../README.md.
 */
#pragma once

#include <windows.h>

typedef ULONG64 TRACEHANDLE, PROCESSTRACE_HANDLE;
#define INVALID_PROCESSTRACE_HANDLE ((PROCESSTRACE_HANDLE)-1)
#define PROCESS_TRACE_MODE_EVENT_RECORD 0x10000000

typedef struct _EVENT_DESCRIPTOR {
	USHORT Id;
	UCHAR Version;
	UCHAR Channel;
	UCHAR Level;
	UCHAR Opcode;
	USHORT Task;
	ULONGLONG Keyword;
} EVENT_DESCRIPTOR;

typedef struct _EVENT_HEADER {
	USHORT Size;
	USHORT HeaderType;
	USHORT Flags;
	USHORT EventProperty;
	ULONG ThreadId;
	ULONG ProcessId;
	LARGE_INTEGER TimeStamp;
	GUID ProviderId;
	EVENT_DESCRIPTOR EventDescriptor;
	ULONG64 ProcessorTime;
	GUID ActivityId;
} EVENT_HEADER;

typedef struct _ETW_BUFFER_CONTEXT {
	UCHAR ProcessorNumber;
	UCHAR Alignment;
	USHORT LoggerId;
} ETW_BUFFER_CONTEXT;

typedef struct _EVENT_RECORD {
	EVENT_HEADER EventHeader;
	ETW_BUFFER_CONTEXT BufferContext;
	USHORT ExtendedDataCount;
	USHORT UserDataLength;
	PVOID ExtendedData;
	PVOID UserData;
	PVOID UserContext;
} EVENT_RECORD, *PEVENT_RECORD;

typedef VOID(WINAPI *PEVENT_RECORD_CALLBACK)(PEVENT_RECORD EventRecord);

/* Leading members; the real structure continues with logfile and buffer details. */
typedef struct _EVENT_TRACE_LOGFILEA {
	char *LogFileName;
	char *LoggerName;
	LONGLONG CurrentTime;
	ULONG BuffersRead;
	ULONG ProcessTraceMode;
	PEVENT_RECORD_CALLBACK EventRecordCallback;
	PVOID Context;
} EVENT_TRACE_LOGFILEA, *PEVENT_TRACE_LOGFILEA;

PROCESSTRACE_HANDLE WINAPI OpenTraceA(PEVENT_TRACE_LOGFILEA Logfile);
ULONG WINAPI ProcessTrace(PROCESSTRACE_HANDLE *HandleArray, ULONG HandleCount,
			  FILETIME *StartTime, FILETIME *EndTime);
ULONG WINAPI CloseTrace(PROCESSTRACE_HANDLE TraceHandle);
