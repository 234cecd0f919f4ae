/*
 * The VSP's trace: one TraceLogging (ETW) event per trace-schema event, written
 * by the trace library (trace-lib/vmbus_bench_trace.h, vbt_tracelogging_write).
 *
 * The event name is the schema's "ev" and every field carries the schema's name,
 * digests and statuses as hex numbers (TraceLoggingHexUInt64/HexUInt32), so
 * converting a captured .etl to JSON Lines (vsp/tool: sample-ctl etl2jsonl) is a
 * field-for-field copy, those written as the schema's hex digits, plus the
 * constant "v", "src" and "side". seq is assigned here, not by ETW: events from
 * several CPUs may reach the .etl out of order, and the tool sorts by seq.
 */
#include <TraceLoggingProvider.h>

#define VBT_WITH_TRACELOGGING
#include "vsp.h"

TRACELOGGING_DEFINE_PROVIDER(VspTraceProvider, SAMPLE_VSP_PROVIDER_NAME,
			     (SAMPLE_VSP_PROVIDER_GUID_FIELDS));

static volatile LONG64 VspTraceSeq;

NTSTATUS VspTraceRegister(VOID)
{
	return TraceLoggingRegister(VspTraceProvider);
}

VOID VspTraceUnregister(VOID)
{
	TraceLoggingUnregister(VspTraceProvider);
}

ULONGLONG VspTraceReserveSeq(VOID)
{
	return (ULONGLONG)InterlockedIncrement64(&VspTraceSeq);
}

/* The seq of the last event written (0 before the first), for the counters. */
ULONGLONG VspTraceLastSeq(VOID)
{
	return (ULONGLONG)InterlockedExchangeAdd64(&VspTraceSeq, 0);
}

VOID VspTraceState(VSP_CHANNEL *Vc, const char *State)
{
	struct vbt_event ev;

	if (Vc->Discarding)
		return;
	RtlZeroMemory(&ev, sizeof(ev));
	ev.kind = VBT_CH_STATE;
	ev.ch = Vc->Ch;
	ev.state = State;
	VspTrace(&ev);
}

/* Writes one event; Event->seq is taken from VspTraceReserveSeq when 0. */
VOID VspTrace(struct vbt_event *Event)
{
	if (Event->seq == 0)
		Event->seq = VspTraceReserveSeq();
	vbt_tracelogging_write(VspTraceProvider, Event);
}
