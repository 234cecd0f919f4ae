/*
 * The VSP's trace: one TraceLogging (ETW) event per trace-schema event.
 *
 * The event name is the schema's "ev" and every field carries the schema's name
 * and representation (digests and statuses as hex text, numbers as numbers), so
 * converting a captured .etl to JSON Lines (vsp/tool: sample-ctl etl2jsonl) is a
 * field-for-field copy plus the constant "v", "src" and "side". seq is assigned
 * here, not by ETW: events from several CPUs may reach the .etl out of order,
 * and the tool sorts by seq.
 */
#include <TraceLoggingProvider.h>

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

VOID VspTraceState(VSP_CHANNEL *Vc, const char *State)
{
	struct sp_trace_event ev;

	if (Vc->Discarding)
		return;
	RtlZeroMemory(&ev, sizeof(ev));
	ev.kind = SP_EV_CH_STATE;
	ev.ch = Vc->Ch;
	ev.state = State;
	VspTrace(&ev);
}

/* Writes one event; Event->seq is taken from VspTraceReserveSeq when 0. */
VOID VspTrace(struct sp_trace_event *Event)
{
	const char *dir = Event->dir == SP_DIR_H2G ? "h2g" : "g2h";
	char digest[17], saveDigest[17], status[9];

	if (Event->seq == 0)
		Event->seq = VspTraceReserveSeq();
	sp_digest_hex(Event->digest, digest);
	sp_digest_hex(Event->save_digest, saveDigest);
	sp_status_hex(Event->status, status);

	switch (Event->kind) {
	case SP_EV_CH_STATE:
		TraceLoggingWrite(VspTraceProvider, "ch.state",
				  TraceLoggingUInt64(Event->seq, "seq"),
				  TraceLoggingUInt32(Event->ch, "ch"),
				  TraceLoggingString(Event->state, "state"));
		break;
	case SP_EV_PKT_SEND:
		TraceLoggingWrite(VspTraceProvider, "pkt.send",
				  TraceLoggingUInt64(Event->seq, "seq"),
				  TraceLoggingUInt32(Event->ch, "ch"),
				  TraceLoggingUInt64(Event->tx, "tx"),
				  TraceLoggingString(dir, "dir"),
				  TraceLoggingUInt32(Event->len, "len"),
				  TraceLoggingString(digest, "digest"),
				  TraceLoggingBoolean((BOOLEAN)(Event->want_completion != 0),
						      "wantCompletion"));
		break;
	case SP_EV_PKT_QUEUED:
		/* Inferred, not observed: see "pkt.queued" in vsp/README.md. */
		TraceLoggingWrite(VspTraceProvider, "pkt.queued",
				  TraceLoggingUInt64(Event->seq, "seq"),
				  TraceLoggingUInt32(Event->ch, "ch"),
				  TraceLoggingUInt64(Event->tx, "tx"),
				  TraceLoggingString(dir, "dir"),
				  TraceLoggingBoolean((BOOLEAN)(Event->inferred != 0), "inferred"));
		break;
	case SP_EV_PKT_RECV:
		TraceLoggingWrite(VspTraceProvider, "pkt.recv",
				  TraceLoggingUInt64(Event->seq, "seq"),
				  TraceLoggingUInt32(Event->ch, "ch"),
				  TraceLoggingUInt64(Event->tx, "tx"),
				  TraceLoggingString(dir, "dir"),
				  TraceLoggingUInt32(Event->len, "len"),
				  TraceLoggingString(digest, "digest"));
		break;
	case SP_EV_PKT_COMPLETE:
		TraceLoggingWrite(VspTraceProvider, "pkt.complete",
				  TraceLoggingUInt64(Event->seq, "seq"),
				  TraceLoggingUInt32(Event->ch, "ch"),
				  TraceLoggingUInt64(Event->tx, "tx"),
				  TraceLoggingString(dir, "dir"),
				  TraceLoggingString(status, "status"),
				  TraceLoggingUInt32(Event->len, "len"),
				  TraceLoggingString(digest, "digest"));
		break;
	case SP_EV_PKT_COMPLETION:
		TraceLoggingWrite(VspTraceProvider, "pkt.completion",
				  TraceLoggingUInt64(Event->seq, "seq"),
				  TraceLoggingUInt32(Event->ch, "ch"),
				  TraceLoggingUInt64(Event->tx, "tx"),
				  TraceLoggingString(dir, "dir"),
				  TraceLoggingString(status, "status"),
				  TraceLoggingString(digest, "digest"));
		break;
	case SP_EV_PKT_SAVE:
		TraceLoggingWrite(VspTraceProvider, "pkt.save",
				  TraceLoggingUInt64(Event->seq, "seq"),
				  TraceLoggingUInt32(Event->ch, "ch"),
				  TraceLoggingUInt64(Event->tx, "tx"),
				  TraceLoggingString(dir, "dir"),
				  TraceLoggingUInt32(Event->lib_len, "libLen"),
				  TraceLoggingUInt32(Event->save_len, "saveLen"),
				  TraceLoggingString(saveDigest, "saveDigest"));
		break;
	case SP_EV_PKT_RESTORE:
		TraceLoggingWrite(VspTraceProvider, "pkt.restore",
				  TraceLoggingUInt64(Event->seq, "seq"),
				  TraceLoggingUInt32(Event->ch, "ch"),
				  TraceLoggingUInt64(Event->tx, "tx"),
				  TraceLoggingString(dir, "dir"),
				  TraceLoggingString(saveDigest, "saveDigest"));
		break;
	case SP_EV_PKT_FAIL:
		TraceLoggingWrite(VspTraceProvider, "pkt.fail",
				  TraceLoggingUInt64(Event->seq, "seq"),
				  TraceLoggingUInt32(Event->ch, "ch"),
				  TraceLoggingUInt64(Event->tx, "tx"),
				  TraceLoggingString(dir, "dir"),
				  TraceLoggingString(status, "status"));
		break;
	}
}
