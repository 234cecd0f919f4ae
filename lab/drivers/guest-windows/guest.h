/*
 * Sample guest driver for Windows: the guest role of lab/drivers/PROTOCOL.md as a
 * KMDF function driver for the VMBus child device of the protocol's interface type,
 * using the KMCL client interface.
 *
 * One device per offered channel. The channel's packets, held transactions and
 * the trace are in GUEST_DEVICE. Control (\\.\VmbusSampleGuest) takes the same
 * commands as the Linux guest's debugfs file and returns the trace as the same
 * JSON Lines, written by the same trace library (trace-lib/vmbus_bench_trace.h).
 */
#pragma once

#include <ntddk.h>
#include <wdf.h>
#include <vmbuskernelmodeclientlibapi.h>

#include "../common/sample-protocol.h"
#include "../common/sample-command.h"
#include "../common/sample-control.h"
#include "../trace-lib/vmbus_bench_trace.h"

#define GUEST_POOL_TAG 'gSmV'
#define GUEST_HOLD_TICK_MS 5
#define GUEST_DEFAULT_TRACE_KIB 4096

typedef struct _GUEST_COUNTERS {
	LONG64 RequestsSent;
	LONG64 NotifiesSent;
	LONG64 Completions;
	LONG64 CompletionMismatch;
	LONG64 Cancelled;
	LONG64 Received;
	LONG64 Completed;
	LONG64 Damaged;
	LONG64 Failed;
	LONG64 HeldNow;
	LONG64 TraceDropped;
} GUEST_COUNTERS;

typedef struct _GUEST_DEVICE {
	WDFDEVICE Device;
	KMCL_CLIENT_INTERFACE_V1 Kmcl;
	BOOLEAN KmclValid;
	VMBCHANNEL Channel;
	UINT32 Ch;			/* trace channel number, known once opened */
	UINT32 RingPages;		/* registry RingPages, default 4 */
	BOOLEAN Stopping;		/* ReleaseHardware began: do not re-enable */
	BOOLEAN Suspended;		/* EvtVmbChannelSuspend ran, Started not since: no sends */
	BOOLEAN EnabledUntraced;	/* enabled before its channel number was known: traced at Opened */

	WDFSPINLOCK Lock;		/* guards Held, the tx handshake flags, Hold* */
	LIST_ENTRY Held;		/* GUEST_HELD: host transactions being held */
	LONG HoldOverrideMs;		/* -1: use each transaction's arg0 */
	ULONGLONG NextTx;		/* last g2h tx sent; queue-serialised */
	WDFTIMER HoldTimer;
	WDFWORKITEM ReenableWork;	/* after a rescind: wait for the next offer */

	WDFSPINLOCK TraceLock;		/* guards Trace */
	char *TraceMemory;		/* Trace's storage, from nonpaged pool */
	struct vbt_buffer Trace;

	GUEST_COUNTERS Counters;
} GUEST_DEVICE;
WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(GUEST_DEVICE, GuestGetDevice)

typedef struct _GUEST_OBJECT_CONTEXT {
	GUEST_DEVICE *Dev;
} GUEST_OBJECT_CONTEXT;
WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(GUEST_OBJECT_CONTEXT, GuestGetObjectContext)

/* A host transaction held before completion. */
typedef struct _GUEST_HELD {
	LIST_ENTRY Link;
	VMBPACKETCOMPLETION Packet;
	ULONGLONG Tx;
	ULONGLONG DueTime;
	UCHAR Completion[SP_COMPLETION_SIZE];
} GUEST_HELD;

/*
 * A Request of ours, reachable from its VMBPACKET. The completion routine can
 * run before VmbPacketSend has returned and pkt.send is in the trace; it then
 * parks its result here and the sender writes both lines in order.
 */
typedef struct _GUEST_TX {
	GUEST_DEVICE *Dev;
	UINT16 Type;
	ULONGLONG Tx;
	ULONGLONG Digest;
	BOOLEAN SendTraced;
	BOOLEAN CompletionParked;	/* the routine ran first: the sender finishes */
	BOOLEAN ParkedCancelled;	/* ... and no completion arrived (cancelled) */
	struct vbt_event Parked;
	BOOLEAN ParkedMismatch;
	UCHAR Message[1];
} GUEST_TX;

/* guest-channel.c. GuestKmcl: the client table for callbacks that only get a
 * VMBCHANNEL or VMBPACKET; every device gets the same one from vmbkmcl.
 */
extern KMCL_CLIENT_INTERFACE_V1 GuestKmcl;
NTSTATUS GuestChannelCreate(GUEST_DEVICE *Dev);
VOID GuestChannelDestroy(GUEST_DEVICE *Dev);
GUEST_DEVICE *GuestFromChannel(VMBCHANNEL Channel);
EVT_WDF_WORKITEM GuestEvtReenable;

/* guest-io.c */
EVT_VMB_CHANNEL_PROCESS_PACKET GuestEvtProcessPacket;
EVT_WDF_TIMER GuestEvtHoldTimer;
VOID GuestReleaseHeld(GUEST_DEVICE *Dev);
NTSTATUS GuestSendMany(GUEST_DEVICE *Dev, UINT16 Type, UINT32 Count, UINT32 Length,
		       UINT32 Mode, UINT32 HoldMs);

/* guest-trace.c */
NTSTATUS GuestTraceInit(GUEST_DEVICE *Dev, ULONG Kib);
VOID GuestTraceFree(GUEST_DEVICE *Dev);
VOID GuestTrace(GUEST_DEVICE *Dev, struct vbt_event *Event);
VOID GuestTraceState(GUEST_DEVICE *Dev, const char *State);
VOID GuestTraceClear(GUEST_DEVICE *Dev);
ULONG GuestTraceRead(GUEST_DEVICE *Dev, ULONGLONG Offset, char *Out, ULONG Size);
