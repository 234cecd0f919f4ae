/*
 * Sample guest driver for Windows: the guest role of lab/drivers/PROTOCOL.md as a
 * KMDF function driver for the VMBus child device of the protocol's interface type,
 * using the KMCL client interface.
 *
 * One WDFDEVICE per offered channel (on Windows each VMBus channel offer is a
 * PnP device of its own): the channel's packets and held transactions are in its
 * GUEST_DEVICE. What outlives a device is the driver's (GUEST_DRIVER, GuestDriver):
 * the trace buffer (allocated in DriverEntry, freed in EvtDriverUnload), so a
 * device's removal (a rescind, the guest's own close) is traced and read after;
 * the next tx of each channel, so a re-offer's device goes on numbering; and one
 * control device (\\.\VmbusSampleGuest), which takes the same commands as the
 * Linux guest's debugfs file, `ch=N` naming the channel's device, and returns the
 * trace as the same JSON Lines, written by the same trace library
 * (trace-lib/vmbus_bench_trace.h).
 */
#pragma once

#include <ntddk.h>
#include <wdf.h>
#include <wdmsec.h>
#include <vmbuskernelmodeclientlibapi.h>

#include "../common/sample-protocol.h"
#include "../common/sample-command.h"
#include "../common/sample-control.h"
#include "../trace-lib/vmbus_bench_trace.h"

#define GUEST_POOL_TAG 'gSmV'
#define GUEST_HOLD_TICK_MS 5
#define GUEST_DEFAULT_TRACE_KIB 4096
/* The control device's name; its symbolic link is SAMPLE_GUEST_DOS_NAME. */
#define SAMPLE_GUEST_NT_NAME L"\\Device\\VmbusSampleGuest"

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
	LONG64 DroppedOnClose;	/* held when the channel closed: the host ended them */
} GUEST_COUNTERS;

typedef struct _GUEST_DEVICE {
	LIST_ENTRY Link;		/* in GuestDriver.Devices, under DevicesLock */
	BOOLEAN Linked;
	BOOLEAN ChKnown;		/* Opened ran: Ch names the channel, commands reach it */
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

	GUEST_COUNTERS Counters;
} GUEST_DEVICE;
WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(GUEST_DEVICE, GuestGetDevice)

/* The tx a removed channel's device reached: its next device goes on from there. */
typedef struct _GUEST_TX_MARK {
	LIST_ENTRY Link;
	UINT32 Ch;
	ULONGLONG NextTx;
} GUEST_TX_MARK;

/*
 * What the driver holds beside its devices, from DriverEntry to EvtDriverUnload.
 * DevicesLock (PASSIVE_LEVEL) serialises the control device's commands with the
 * devices' arrival and removal: a command never reaches a device being removed.
 */
typedef struct _GUEST_DRIVER {
	WDFWAITLOCK DevicesLock;	/* guards Devices, DeviceCount, Marks, ControlDevice */
	LIST_ENTRY Devices;		/* GUEST_DEVICE, in the order they were added */
	ULONG DeviceCount;		/* PnP devices not yet cleaned up */
	LIST_ENTRY Marks;		/* GUEST_TX_MARK */
	WDFDEVICE ControlDevice;	/* \\.\VmbusSampleGuest while any device exists */
	LONG HoldOverrideMs;		/* the `hold` command's, for devices to come too */

	WDFSPINLOCK TraceLock;		/* guards Trace */
	char *TraceMemory;		/* Trace's storage, from nonpaged pool */
	struct vbt_buffer Trace;
	LONG64 TraceDropped;
	/*
	 * EvtVmbChannelClosed calls that came while the channel's device was not being
	 * removed (the host's end went first: a rescind KMCL acts on before PnP removes
	 * the device). Driver-wide, so it outlives the device it counts.
	 */
	LONG64 ClosedOutsideRemoval;
} GUEST_DRIVER;

extern GUEST_DRIVER GuestDriver;

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
VOID GuestDropHeld(GUEST_DEVICE *Dev);
NTSTATUS GuestSendMany(GUEST_DEVICE *Dev, UINT16 Type, UINT32 Count, UINT32 Length,
		       UINT32 Mode, UINT32 HoldMs);

/* guest-control.c: the control device and the command routing */
NTSTATUS GuestControlCreate(WDFDRIVER Driver);
VOID GuestControlDelete(VOID);
VOID GuestMarkTx(GUEST_DEVICE *Dev);
ULONGLONG GuestMarkedTx(UINT32 Ch);
VOID GuestFreeMarks(VOID);

/* guest-trace.c: the driver-wide trace */
NTSTATUS GuestTraceInit(WDFDRIVER Driver, ULONG Kib);
VOID GuestTraceFree(VOID);
VOID GuestTrace(GUEST_DEVICE *Dev, struct vbt_event *Event);
VOID GuestTraceState(GUEST_DEVICE *Dev, const char *State);
VOID GuestTraceClear(VOID);
ULONG GuestTraceRead(ULONGLONG Offset, char *Out, ULONG Size);
