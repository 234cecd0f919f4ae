/* SPDX-License-Identifier: GPL-2.0 */
/*
 * blockq's guest driver (Linux): the guest side of ../../PROTOCOL.md.
 *
 * One struct bqg_channel per offered channel. bq_guest_main.c owns the channels'
 * lifetime (probe, open, close, remove), bq_guest_io.c their traffic, and
 * bq_guest_ctl.c the debugfs control interface and the JSON Lines trace buffer the
 * bench reads (over SSH on a lab, through the kernel shim on the emulator).
 */
#ifndef BQ_GUEST_H
#define BQ_GUEST_H

#include <linux/atomic.h>
#include <linux/hyperv.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include "blockq-protocol.h"
#include <vmbus_bench_trace.h>
#include <guest-debugfs.h>

/* What a Request still outstanding when its channel closes ends with (STATUS_CANCELLED). */
#define BQG_STATUS_CANCELLED 0xC0000120u

/*
 * What each channel counts; the bench reads these through debugfs "counters".
 * requests_sent - completions + held is what the channel still has in flight.
 */
struct bqg_counters {
	atomic64_t requests_sent;	/* Requests sent (each wants a reply) */
	atomic64_t notes_sent;		/* g2h Notes sent */
	atomic64_t completions;		/* replies received for our Requests */
	atomic64_t completion_mismatch;	/* ... for no Request of ours, or another digest */
	atomic64_t received;		/* h2g messages received */
	atomic64_t completed;		/* Events answered */
	atomic64_t damaged;		/* h2g messages that were not intact */
	atomic64_t held;		/* Events waiting for their answer */
	atomic64_t send_retries;	/* ring full, send tried again */
	atomic64_t dropped_on_close;	/* held when the channel closed */
};

struct bqg_channel {
	struct list_head node;		/* in bqg_channels, under bqg_channels_lock */
	struct hv_device *hdev;
	struct vmbus_channel *chan;
	u32 ch;				/* the trace's channel number */

	/*
	 * lock orders the trace: a send and its trace line are written under it, and so
	 * is the handling of its reply, so pkt.completion never comes before pkt.send.
	 * It also guards held and closing.
	 */
	spinlock_t lock;
	/*
	 * struct bqg_held, soonest due first; equal dues in arrival order.
	 * Invariant: an Event that wants a reply is in held from its arrival until it is
	 * answered (or its channel closes), once; answer_work is armed for the head.
	 */
	struct list_head held;
	struct delayed_work answer_work;
	struct xarray outstanding;	/* tx -> struct bqg_outstanding */
	u64 next_tx;			/* last g2h tx used; the next is +1 */
	bool closing;			/* remove/suspend started: no new work */

	struct bqg_counters counters;
};

/* A host Event waiting for its answer: hold + d(tx) ms after it arrived. */
struct bqg_held {
	struct list_head node;
	unsigned long due;		/* jiffies */
	u64 vmbus_trans_id;		/* what VMBus wants back in the completion */
	u64 tx;				/* the protocol's id, for the trace */
	u32 status;
	u32 reply_len;
	u8 reply[BQ_REPLY_MAX];
};

/* A Request of ours that waits for its reply. */
struct bqg_outstanding {
	u64 digest;			/* FNV-1a of the message as sent */
};

/* bq_guest_main.c: the channels, under bqg_channels_lock. */
extern struct list_head bqg_channels;
extern struct mutex bqg_channels_lock;
int bqg_print_counters(char *buf, size_t size);

/* bq_guest_io.c: traffic; the send and answer calls serve the control interface. */
void bqg_on_channel(void *context);
void bqg_answer_work(struct work_struct *work);
int bqg_send_requests(u32 count, u32 length, u32 mode, u32 hold_ms, long only_ch);
int bqg_send_notes(u32 count, u32 length, long only_ch);
void bqg_answer_now(long only_ch);

/* bq_guest_ctl.c: control commands; the trace is vgd_trace (lab/drivers/common/guest-debugfs.h). */
void bqg_trace_state(struct bqg_channel *c, const char *state);
int bqg_ctl_init(void);
void bqg_ctl_exit(void);

#endif /* BQ_GUEST_H */
