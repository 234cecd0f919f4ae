/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Sample guest driver for the bench's sample VMBus device (Linux side).
 *
 * One struct sg_channel per offered channel. sample_guest_main.c owns the
 * channels' lifetime (probe, open, close, remove), sample_guest_io.c their
 * traffic, and sample_guest_ctl.c the debugfs control interface and the JSON
 * Lines trace buffer that the bench reads over SSH.
 */
#ifndef SAMPLE_GUEST_H
#define SAMPLE_GUEST_H

#include <linux/atomic.h>
#include <linux/hyperv.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include "sample-protocol.h"
#include "../trace-lib/vmbus_bench_trace.h"
#include "guest-debugfs.h"

/* What each channel counts; the bench reads these through debugfs "counters". */
struct sg_counters {
	atomic64_t requests_sent;	/* g2h Requests sent */
	atomic64_t notifies_sent;	/* g2h Notifies sent */
	atomic64_t completions;		/* completions received for our Requests */
	atomic64_t completion_mismatch;	/* ... whose digest or tx we did not expect */
	atomic64_t received;		/* h2g messages received */
	atomic64_t completed;		/* h2g transactions completed */
	atomic64_t damaged;		/* h2g messages that were not intact */
	atomic64_t held;		/* h2g transactions currently held */
	atomic64_t send_retries;	/* ring full, send tried again */
	atomic64_t dropped_on_close;	/* held when the channel went away */
};

struct sg_channel {
	struct list_head node;		/* in sg_channels, under sg_channels_lock */
	struct hv_device *hdev;
	struct vmbus_channel *chan;
	u32 ch;				/* the trace's channel number */

	/*
	 * lock orders the trace: a send and its trace line are written under it,
	 * and so is the handling of the completion for it, so pkt.completion can
	 * never appear in the trace before its pkt.send.
	 */
	spinlock_t lock;
	struct list_head held;		/* struct sg_held, under lock */
	struct xarray outstanding;	/* tx -> struct sg_outstanding */
	u64 next_tx;			/* last g2h tx used; the next is +1 */
	bool closing;			/* remove/suspend started: no new work */

	struct sg_counters counters;
};

/* A host transaction the guest is holding before it completes it. */
struct sg_held {
	struct list_head node;
	struct delayed_work work;
	struct sg_channel *sgc;
	u64 vmbus_trans_id;		/* what VMBus wants back in the completion */
	u64 tx;				/* the protocol's id, for the trace */
	bool done;			/* completed while sg_close was waiting */
	u8 completion[SP_COMPLETION_SIZE];
};

/* A Request of ours that waits for its completion. */
struct sg_outstanding {
	u64 digest;			/* FNV-1a of the message as sent */
};

/* sample_guest_main.c: the channels, under sg_channels_lock. */
extern struct list_head sg_channels;
extern struct mutex sg_channels_lock;
int sg_print_counters(char *buf, size_t size);

/* sample_guest_io.c: traffic; the send and hold calls serve the control interface. */
void sg_on_channel(void *context);
int sg_send_requests(u32 count, u32 length, u32 mode, u32 hold_ms, long only_ch);
int sg_send_notifies(u32 count, u32 length, long only_ch);
void sg_release_held(long only_ch);
void sg_set_hold_override(long hold_ms);

/* sample_guest_ctl.c: control commands; the trace is vgd_trace (common/guest-debugfs.h). */
void sg_trace_state(struct sg_channel *sgc, const char *state);
int sg_ctl_init(void);
void sg_ctl_exit(void);

#endif /* SAMPLE_GUEST_H */
