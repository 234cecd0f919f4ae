/*
 * blockq VSP: the host side of ../PROTOCOL.md as a KMDF driver using the KMCL server
 * interface (vmbkmclr.sys). A second device for the bench, written like a device
 * author's own driver: it shares no code with the sample's (lab/drivers), only the
 * stand-in WDK headers, the trace library and the save helper any VSP may use
 * (lab/drivers/common/vsp-save-helper.h).
 *
 * One BQ_DEVICE owns any number of BQ_CHANNELs, one per offered channel, created and
 * torn down by control commands that a sequential queue runs one at a time at
 * PASSIVE_LEVEL. Unlike the sample VSP it answers no request on arrival: each guest
 * Request waits in its channel's Outstanding list, sorted by when it is due (its hold
 * plus 0 to 3 ms by tx), and a one-shot timer answers whatever is due. So several are
 * outstanding at once, and the replies, of varying size, leave in another order.
 */
#pragma once

#include <ntddk.h>
#include <wdf.h>
#include <vmbuskernelmodeclientlibapi.h>
#include <vmbus_bench_trace.h>
#include <vsp-save-helper.h>

#include "blockq-protocol.h"
#include "blockq-command.h"
#include "blockq-control.h"

#define BQ_GUID_INIT(d1, d2, d3, b0, b1, b2, b3, b4, b5, b6, b7) \
	{ d1, d2, d3, { b0, b1, b2, b3, b4, b5, b6, b7 } }

#define BQ_POOL_TAG 'qBmV'
#define BQ_PAGE_SIZE 4096u

/* What each channel counts; IOCTL_BLOCKQ_COUNTERS prints them. */
typedef struct _BQ_COUNTERS {
	LONG64 RequestsReceived;	/* g2h Requests (once per message) */
	LONG64 Answered;		/* replies given to Requests */
	LONG64 Deferred;		/* Requests deferred to passive */
	LONG64 Outstanding;		/* Requests waiting for their answer now */
	LONG64 NotesReceived;
	LONG64 Failed;			/* packets failed with VmbChannelPacketFail */
	LONG64 EventsSent;
	LONG64 NotesSent;
	LONG64 Replies;			/* replies received for Events */
	LONG64 Cancelled;		/* Events that ended without a reply */
	LONG64 Saved;
	LONG64 Restored;
	LONG64 InFlight;		/* h2g packets sent and not yet completed */
	LONG64 InFlightBytes;		/* their size in the ring */
} BQ_COUNTERS;

typedef struct _BQ_DEVICE BQ_DEVICE;

typedef struct _BQ_CHANNEL {
	LIST_ENTRY Link;		/* in BQ_DEVICE.Channels (queue-serialised) */
	BQ_DEVICE *Device;
	VMBCHANNEL Channel;		/* NULL between a save's detach and restore */
	UINT32 Ch;
	GUID Instance;
	UINT32 RingPages;		/* the guest's incoming ring, for the queue estimate */

	WDFSPINLOCK Lock;		/* guards the three lists and InFlightBytes */
	/*
	 * BQ_REQUEST, soonest due first, arrival order among equals.
	 * Invariant: a Request is here from its arrival until it is answered, once (by
	 * the timer, `answer`, or the Suspend before a save or a close).
	 */
	LIST_ENTRY Outstanding;
	LIST_ENTRY Deferred;		/* BQ_DEFERRED: txs deferred, awaiting redelivery */
	LIST_ENTRY InFlight;		/* BQ_TX sent, not yet completed */
	WDFTIMER AnswerTimer;		/* one-shot, armed for the head of Outstanding */
	BOOLEAN Abandoning;		/* torn down after a save: completions are not news */
	BOOLEAN Discarding;		/* its VM is gone unsaved: nothing of it is traced */
	BOOLEAN Unoffered;		/* restored, not yet enabled: `resume` offers it */
	BOOLEAN Suspended;		/* EvtVmbChannelSuspend ran, Started not since: no sends */

	ULONGLONG NextTx;		/* last h2g tx sent; queue-serialised */
	PUCHAR SaveBlob;		/* SaveContinue outputs, each a ULONG length and bytes */
	ULONG SaveBlobSize;
	BQ_COUNTERS Counters;
	/*
	 * How it is offered: loopback (the client end in the host), or into the VM whose
	 * VMBus handle `open ... handle=H` brought (converted in the caller's context,
	 * vsp-driver.c; closed with the channel). Last, so explore's key offsets of the
	 * fields above (vsp-key.ts) stay; neither is keyed: both are fixed at `open`.
	 */
	BOOLEAN Loopback;
	HANDLE VmbusHandle;
	/*
	 * Rescind and guest close (../PROTOCOL.md "Rescind and guest close"), after the
	 * fields explore keys for the same reason. Disabling: inside our own
	 * VmbChannelDisable, so its Closed is not the guest's. Retiring: rescinded, or
	 * closed by its guest: a cancelled Event ends as pkt.cancel. Rescinded: the offer
	 * was revoked, `open` offers the new instance. Unopened: no guest has the channel
	 * open (closed by its guest): sends wait in KMCL, inferred queued.
	 */
	BOOLEAN Disabling;
	BOOLEAN Retiring;
	BOOLEAN Rescinded;
	BOOLEAN Unopened;
	LIST_ENTRY Abandoned;		/* BQ_TX of a restore that failed (packets freed), for the rescind */
} BQ_CHANNEL;

/* A guest Request waiting for its answer; its reply is made on arrival. */
typedef struct _BQ_REQUEST {
	LIST_ENTRY Link;
	VMBPACKETCOMPLETION Packet;
	ULONGLONG Tx;
	ULONGLONG Due;			/* KeQueryInterruptTime units (100 ns) */
	UINT32 ReplyLength;
	UINT32 Status;
	UCHAR Reply[BQ_REPLY_MAX];
} BQ_REQUEST;

/* A Request deferred to passive: its redelivery is not a second arrival. */
typedef struct _BQ_DEFERRED {
	LIST_ENTRY Link;
	ULONGLONG Tx;
} BQ_DEFERRED;

/* A host-to-guest message: reachable from its VMBPACKET (VmbPacketSetPointer). */
typedef struct _BQ_TX {
	LIST_ENTRY Link;		/* in BQ_CHANNEL.InFlight */
	BQ_CHANNEL *Vc;
	VMBPACKET Packet;
	struct bq_event Event;		/* what EvtVmbChannelSavePacket writes */
	ULONG RingBytes;
	UCHAR Message[1];		/* Event.length bytes, kept until completion */
} BQ_TX;

struct _BQ_DEVICE {
	WDFDEVICE Device;
	KMCL_SERVER_INTERFACE_V1 Kmcl;
	BOOLEAN KmclValid;
	LIST_ENTRY Channels;
};
WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(BQ_DEVICE, BqGetDevice)

typedef struct _BQ_TIMER_CONTEXT {
	BQ_CHANNEL *Vc;
} BQ_TIMER_CONTEXT;
WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(BQ_TIMER_CONTEXT, BqGetTimerContext)

/* An `open ... handle=H` request: H as a kernel handle, converted in the caller's context. */
typedef struct _BQ_REQUEST_CONTEXT {
	HANDLE KernelHandle;
} BQ_REQUEST_CONTEXT;
WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(BQ_REQUEST_CONTEXT, BqGetRequestContext)

/* The KMCL server table, for callbacks (they receive only a VMBCHANNEL or VMBPACKET). */
extern PKMCL_SERVER_INTERFACE_V1 BqKmcl;

/* vsp-channel.c */
NTSTATUS BqChannelOpen(BQ_DEVICE *Dev, const struct bq_command *Cmd, HANDLE KernelHandle);
NTSTATUS BqChannelCreate(BQ_DEVICE *Dev, UINT32 Ch, const UCHAR Instance[16], UINT32 RingPages,
			 BQ_CHANNEL **Out);
NTSTATUS BqChannelConfigure(BQ_CHANNEL *Vc);
VOID BqChannelClose(BQ_CHANNEL *Vc);
NTSTATUS BqChannelRescind(BQ_CHANNEL *Vc);
VOID BqEndAbandoned(BQ_CHANNEL *Vc, BOOLEAN Trace);
NTSTATUS BqChannelGiveUp(BQ_CHANNEL *Vc, BOOLEAN Discard);
NTSTATUS BqChannelResume(BQ_CHANNEL *Vc);
BQ_CHANNEL *BqChannelFind(BQ_DEVICE *Dev, UINT32 Ch);
BQ_CHANNEL *BqFromChannel(VMBCHANNEL Channel);

/* vsp-receive.c */
EVT_VMB_CHANNEL_PROCESS_PACKET BqEvtProcessPacket;
EVT_WDF_TIMER BqEvtAnswerTimer;
VOID BqAnswerAll(BQ_CHANNEL *Vc);

/* vsp-send.c */
NTSTATUS BqSendMany(BQ_CHANNEL *Vc, UINT16 Type, UINT32 Count, UINT32 Length, UINT32 HoldMs);
EVT_VMB_PACKET_COMPLETION_ROUTINE BqEvtPacketCompletion;
ULONG BqRingBytes(UINT32 Length);

/* vsp-save.c */
EVT_VMB_CHANNEL_SAVE_PACKET BqEvtSavePacket;
EVT_VMB_CHANNEL_RESTORE_PACKET BqEvtRestorePacket;
NTSTATUS BqChannelSave(BQ_CHANNEL *Vc);
NTSTATUS BqChannelRestore(BQ_CHANNEL *Vc);

/* vsp-state.c */
NTSTATUS BqStateExport(BQ_DEVICE *Dev, WDFREQUEST Request, size_t *Written);
NTSTATUS BqStateImport(BQ_DEVICE *Dev, WDFREQUEST Request);

/* vsp-trace.c */
NTSTATUS BqTraceRegister(VOID);
VOID BqTraceUnregister(VOID);
ULONGLONG BqTraceReserveSeq(VOID);
ULONGLONG BqTraceLastSeq(VOID);
VOID BqTrace(struct vbt_event *Event);
VOID BqTraceState(BQ_CHANNEL *Vc, const char *State);
VOID BqTraceCancel(BQ_CHANNEL *Vc, ULONGLONG Tx, NTSTATUS Status);
