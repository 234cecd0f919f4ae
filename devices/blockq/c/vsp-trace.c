/*
 * The blockq VSP's trace: one TraceLogging (ETW) event per trace-schema event, written
 * by the trace library (vmbus_bench_trace.h, vbt_tracelogging_write) under the
 * provider "VmbusBench.BlockqVsp". seq is the VSP's own, so a pkt.send can take its
 * place before VmbPacketSend, whose completion may be traced first.
 */
#include <TraceLoggingProvider.h>

#define VBT_WITH_TRACELOGGING
#include "vsp.h"

TRACELOGGING_DEFINE_PROVIDER(BqTraceProvider, BLOCKQ_VSP_PROVIDER_NAME,
			     (BLOCKQ_VSP_PROVIDER_GUID_FIELDS));

static volatile LONG64 BqTraceSeq;

NTSTATUS BqTraceRegister(VOID)
{
	return TraceLoggingRegister(BqTraceProvider);
}

VOID BqTraceUnregister(VOID)
{
	TraceLoggingUnregister(BqTraceProvider);
}

ULONGLONG BqTraceReserveSeq(VOID)
{
	return (ULONGLONG)InterlockedIncrement64(&BqTraceSeq);
}

ULONGLONG BqTraceLastSeq(VOID)
{
	return (ULONGLONG)InterlockedExchangeAdd64(&BqTraceSeq, 0);
}

VOID BqTraceState(BQ_CHANNEL *Vc, const char *State)
{
	struct vbt_event ev;

	if (Vc->Discarding)
		return; /* its VM is gone unsaved: nothing of it is traced */
	RtlZeroMemory(&ev, sizeof(ev));
	ev.kind = VBT_CH_STATE;
	ev.ch = Vc->Ch;
	ev.state = State;
	BqTrace(&ev);
}

/* An H2G Event ended without its reply (a rescind, the guest's close, a failed restore). */
VOID BqTraceCancel(BQ_CHANNEL *Vc, ULONGLONG Tx, NTSTATUS Status)
{
	struct vbt_event ev;

	RtlZeroMemory(&ev, sizeof(ev));
	ev.kind = VBT_PKT_CANCEL;
	ev.ch = Vc->Ch;
	ev.tx = Tx;
	ev.dir = VBT_H2G;
	ev.status = (UINT32)Status;
	BqTrace(&ev);
}

VOID BqTrace(struct vbt_event *Event)
{
	if (Event->seq == 0)
		Event->seq = BqTraceReserveSeq();
	vbt_tracelogging_write(BqTraceProvider, Event);
}
