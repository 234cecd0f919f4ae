/*
 * Sample VSP: the host side of lab/drivers/PROTOCOL.md as a KMDF driver using
 * the KMCL server interface of vmbkmclr.sys.
 *
 * One VSP_DEVICE (a root-enumerated device, see vmbus_sample_vsp.inf) owns any
 * number of VSP_CHANNELs, one per offered channel. Channels are created and torn
 * down only by control commands, which a sequential WDF queue runs one at a time
 * at PASSIVE_LEVEL; that queue is what serialises the channel list and each
 * channel's send counter. Everything KMCL calls back into (packets, completions,
 * state changes, save/restore) finds its VSP_CHANNEL through VmbChannelGetPointer
 * and its per-transaction VSP_TX through VmbPacketGetPointer.
 */
#pragma once

#include <ntddk.h>
#include <wdf.h>
#include <vmbuskernelmodeclientlibapi.h>

#include "../common/sample-protocol.h"
#include "../common/sample-command.h"
#include "../common/sample-control.h"
#include "../common/vsp-save-helper.h"
#include "../trace-lib/vmbus_bench_trace.h"

/* A GUID initialiser from the eleven fields of sample-protocol.h. */
#define VSP_GUID_INIT(d1, d2, d3, b0, b1, b2, b3, b4, b5, b6, b7) \
	{ d1, d2, d3, { b0, b1, b2, b3, b4, b5, b6, b7 } }

#define VSP_POOL_TAG 'pSmV'
/* How often the hold timer looks for held requests that are due, in ms. */
#define VSP_HOLD_TICK_MS 5

/* What each channel counts; IOCTL_SAMPLE_COUNTERS prints them. */
typedef struct _VSP_COUNTERS {
	LONG64 RequestsReceived;	/* g2h Requests seen (once per message) */
	LONG64 RequestsCompleted;
	LONG64 Deferred;		/* Requests deferred to passive */
	LONG64 HeldNow;			/* Requests currently held */
	LONG64 NotifiesReceived;
	LONG64 Damaged;			/* g2h messages that were not intact */
	LONG64 Failed;			/* packets failed with VmbChannelPacketFail */
	LONG64 TransactionsSent;	/* h2g HostTransactions sent */
	LONG64 NotifiesSent;
	LONG64 Completions;		/* completions received for HostTransactions */
	LONG64 CompletionMismatch;	/* ... whose tx or digest was not the one sent */
	LONG64 Cancelled;		/* transactions that ended without a completion */
	LONG64 Saved;			/* packets written by EvtVmbChannelSavePacket */
	LONG64 Restored;		/* packets rebuilt by EvtVmbChannelRestorePacket */
	LONG64 InFlight;		/* h2g packets sent and not yet completed */
	LONG64 InFlightBytes;		/* their size in the ring (see vsp-send.c) */
} VSP_COUNTERS;

typedef struct _VSP_DEVICE VSP_DEVICE;

typedef struct _VSP_CHANNEL {
	LIST_ENTRY Link;		/* in VSP_DEVICE.Channels (queue-serialised) */
	VSP_DEVICE *Device;
	VMBCHANNEL Channel;		/* NULL between a save's teardown and restore */
	UINT32 Ch;			/* the trace's channel number */
	GUID Instance;
	BOOLEAN Loopback;
	BOOLEAN ForceNewChannel; /* open ... force-new-channel */
	HANDLE VmbusHandle;		/* kernel handle from the worker process, or NULL */
	UINT32 RingPages;		/* the guest's ring size, for the queue estimate */

	WDFSPINLOCK Lock;		/* guards the lists and InFlightBytes below */
	LIST_ENTRY Held;		/* VSP_HELD_REQUEST, due for completion */
	LIST_ENTRY Deferred;		/* VSP_DEFERRED: txs deferred, awaiting redelivery */
	LIST_ENTRY InFlight;		/* VSP_TX sent, not yet completed */
	BOOLEAN Abandoning;		/* torn down after a save: completions are not news */
	BOOLEAN Discarding;		/* its VM is gone unsaved: nothing of it is traced */
	BOOLEAN Unoffered;		/* restored, not yet enabled: `resume` offers it */
	BOOLEAN Suspended;		/* EvtVmbChannelSuspend ran, Started not since: no sends */
	BOOLEAN Paused;			/* our own VmbChannelPause, no VmbChannelStart since */
	BOOLEAN Disabling;		/* inside our own VmbChannelDisable: its Closed is not the guest's */
	BOOLEAN Retiring;		/* rescinded, or closed by its guest: cancels end transactions */
	BOOLEAN Rescinded;		/* the offer was revoked: `open` offers the new instance */
	BOOLEAN Unopened;		/* offered, and no guest has it open: KMCL queues every send */
	LIST_ENTRY Abandoned;		/* VSP_TX of a restore that failed (packets freed), for the rescind */

	ULONGLONG NextTx;		/* last h2g tx sent; queue-serialised */
	WDFTIMER HoldTimer;

	/*
	 * The saved state: the SaveContinue outputs, each kept as one segment
	 * (a ULONG length, then the bytes) because RestoreFromBuffer must be fed
	 * whole chunks and their framing is KMCL's own (SPEC-NOTES 6.2, 13.7).
	 */
	PUCHAR SaveBlob;
	ULONG SaveBlobSize;

	VSP_COUNTERS Counters;
} VSP_CHANNEL;

/* A host-to-guest transaction: reachable from its VMBPACKET (VmbPacketSetPointer). */
typedef struct _VSP_TX {
	LIST_ENTRY Link;		/* in VSP_CHANNEL.InFlight */
	VSP_CHANNEL *Vc;
	VMBPACKET Packet;		/* its packet object, freed with it (NULL once abandoned) */
	struct sp_saved_tx Saved;	/* exactly what EvtVmbChannelSavePacket writes */
	ULONG RingBytes;
	UCHAR Message[1];		/* Saved.length bytes, kept until completion */
} VSP_TX;

/* A guest request the VSP holds (completion mode Hold). */
typedef struct _VSP_HELD_REQUEST {
	LIST_ENTRY Link;
	VMBPACKETCOMPLETION Packet;
	ULONGLONG Tx;
	ULONGLONG DueTime;		/* KeQueryInterruptTime units (100 ns) */
	UCHAR Completion[SP_COMPLETION_SIZE];
} VSP_HELD_REQUEST;

/* A Request deferred to passive: its redelivery is not a second receive. */
typedef struct _VSP_DEFERRED {
	LIST_ENTRY Link;
	ULONGLONG Tx;
} VSP_DEFERRED;

struct _VSP_DEVICE {
	WDFDEVICE Device;
	KMCL_SERVER_INTERFACE_V1 Kmcl;
	BOOLEAN KmclValid;
	LIST_ENTRY Channels;
};
WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(VSP_DEVICE, VspGetDevice)

typedef struct _VSP_TIMER_CONTEXT {
	VSP_CHANNEL *Vc;
} VSP_TIMER_CONTEXT;
WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(VSP_TIMER_CONTEXT, VspGetTimerContext)

/* A VMBus handle converted in the caller's process (EvtIoInCallerContext). */
typedef struct _VSP_REQUEST_CONTEXT {
	HANDLE KernelHandle;
} VSP_REQUEST_CONTEXT;
WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(VSP_REQUEST_CONTEXT, VspGetRequestContext)

/*
 * The KMCL server table of the one VSP device, for KMCL callbacks (they receive
 * only a VMBCHANNEL or VMBPACKET). Set in PrepareHardware before any channel
 * exists, cleared in ReleaseHardware after the last one is gone.
 */
extern PKMCL_SERVER_INTERFACE_V1 VspKmcl;

/* vsp-channel.c: lifetime and state callbacks */
NTSTATUS VspChannelInit(VSP_DEVICE *Dev, UINT32 Ch, const VOID *Instance, UINT32 RingPages,
			BOOLEAN Loopback, VSP_CHANNEL **Out);
NTSTATUS VspChannelOpen(VSP_DEVICE *Dev, const struct sample_command *Cmd,
			HANDLE KernelHandle);
NTSTATUS VspChannelRescind(VSP_CHANNEL *Vc);
VOID VspEndAbandoned(VSP_CHANNEL *Vc, BOOLEAN Trace);
NTSTATUS VspChannelConfigure(VSP_CHANNEL *Vc);
VOID VspChannelClose(VSP_CHANNEL *Vc);
NTSTATUS VspChannelDetach(VSP_CHANNEL *Vc);
NTSTATUS VspChannelDiscard(VSP_CHANNEL *Vc);
NTSTATUS VspChannelResume(VSP_CHANNEL *Vc);
VSP_CHANNEL *VspChannelFind(VSP_DEVICE *Dev, UINT32 Ch);
VSP_CHANNEL *VspFromChannel(VMBCHANNEL Channel);

/* vsp-receive.c: the guest's packets */
EVT_VMB_CHANNEL_PROCESS_PACKET VspEvtProcessPacket;
EVT_WDF_TIMER VspEvtHoldTimer;
VOID VspChannelReleaseHeld(VSP_CHANNEL *Vc);

/* vsp-send.c: host-to-guest traffic */
NTSTATUS VspSendMany(VSP_CHANNEL *Vc, UINT16 Type, UINT32 Count, UINT32 Length,
		     UINT32 HoldMs);
EVT_VMB_PACKET_COMPLETION_ROUTINE VspEvtPacketCompletion;

/* vsp-save.c: save and restore of in-flight packets */
EVT_VMB_CHANNEL_SAVE_PACKET VspEvtSavePacket;
EVT_VMB_CHANNEL_RESTORE_PACKET VspEvtRestorePacket;
NTSTATUS VspChannelSave(VSP_CHANNEL *Vc);
NTSTATUS VspChannelRestore(VSP_CHANNEL *Vc);

/* vsp-state.c: the saved state leaving with the VM and coming back */
NTSTATUS VspStateExport(VSP_DEVICE *Dev, WDFREQUEST Request, size_t *Written);
NTSTATUS VspStateImport(VSP_DEVICE *Dev, WDFREQUEST Request);

/* vsp-trace.c: ETW TraceLogging, one event per schema event */
NTSTATUS VspTraceRegister(VOID);
VOID VspTraceUnregister(VOID);
ULONGLONG VspTraceReserveSeq(VOID);
ULONGLONG VspTraceLastSeq(VOID);
VOID VspTrace(struct vbt_event *Event);
VOID VspTraceState(VSP_CHANNEL *Vc, const char *State);
