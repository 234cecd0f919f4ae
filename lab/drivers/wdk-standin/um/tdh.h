/*
 * STAND-IN for the Windows SDK's tdh.h: NOT the real header. The Trace Data
 * Helper subset used to read TraceLogging event names and fields by name.
 * See ../README.md.
 */
#pragma once

#include <evntrace.h>

typedef struct _PROPERTY_DATA_DESCRIPTOR {
	ULONGLONG PropertyName; /* a PCWSTR, carried as an integer like the real header */
	ULONG ArrayIndex;
	ULONG Reserved;
} PROPERTY_DATA_DESCRIPTOR, *PPROPERTY_DATA_DESCRIPTOR;

typedef struct _TDH_CONTEXT *PTDH_CONTEXT;

/* Leading members up to the name offsets the tool reads. */
typedef struct _TRACE_EVENT_INFO {
	GUID ProviderGuid;
	GUID EventGuid;
	EVENT_DESCRIPTOR EventDescriptor;
	ULONG DecodingSource;
	ULONG ProviderNameOffset;
	ULONG LevelNameOffset;
	ULONG ChannelNameOffset;
	ULONG KeywordsNameOffset;
	ULONG TaskNameOffset;
	ULONG OpcodeNameOffset;
	ULONG EventMessageOffset;
	ULONG ProviderMessageOffset;
	ULONG BinaryXMLOffset;
	ULONG BinaryXMLSize;
	ULONG EventNameOffset;
} TRACE_EVENT_INFO, *PTRACE_EVENT_INFO;

ULONG WINAPI TdhGetEventInformation(PEVENT_RECORD Event, ULONG TdhContextCount,
				    PTDH_CONTEXT TdhContext, PTRACE_EVENT_INFO Buffer,
				    ULONG *BufferSize);
ULONG WINAPI TdhGetPropertySize(PEVENT_RECORD pEvent, ULONG TdhContextCount,
				PTDH_CONTEXT pTdhContext, ULONG PropertyDataCount,
				PPROPERTY_DATA_DESCRIPTOR pPropertyData, ULONG *pPropertySize);
ULONG WINAPI TdhGetProperty(PEVENT_RECORD pEvent, ULONG TdhContextCount,
			    PTDH_CONTEXT pTdhContext, ULONG PropertyDataCount,
			    PPROPERTY_DATA_DESCRIPTOR pPropertyData, ULONG BufferSize,
			    PBYTE pBuffer);
