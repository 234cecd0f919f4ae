// SPDX-License-Identifier: GPL-2.0
/*
 * Traffic of blockq's guest driver: the host's Events and Notes, our answers to the
 * Events (each hold + d(tx) ms after it arrived, so out of order), our Requests and
 * Notes and the replies the host sends back. Channel lifetime is in bq_guest_main.c.
 *
 * The channel callback runs in softirq context; the senders run in process context
 * under bqg_channels_lock, which serialises them, and take the channel's spinlock
 * with the _bh variants. One delayed work per channel answers what is due, armed for
 * the soonest held Event (the VSP does the same with one WDF timer).
 */
#include <linux/delay.h>
#include <linux/jiffies.h>
#include <linux/mutex.h>
#include <linux/slab.h>

#include "bq_guest.h"

/* How long a send keeps retrying while the host leaves the ring full. */
#define BQG_SEND_TIMEOUT_MS 5000

/* Arms the answer work for the head of held (or leaves it). Under c->lock. */
static void bqg_arm(struct bqg_channel *c)
{
	struct bqg_held *h = list_first_entry_or_null(&c->held, struct bqg_held, node);

	if (!h || c->closing)
		return;
	mod_delayed_work(system_wq, &c->answer_work,
			 time_after(h->due, jiffies) ? h->due - jiffies : 0);
}

/* Sends an Event's answer; once it is in the ring, traces pkt.complete. Under c->lock. */
static int bqg_send_answer(struct bqg_channel *c, const struct bqg_held *h)
{
	struct vbt_event ev = {
		.kind = VBT_PKT_COMPLETE, .ch = c->ch, .tx = h->tx, .dir = VBT_H2G,
		.status = h->status, .len = h->reply_len,
		.digest = bq_fnv1a64(h->reply, h->reply_len),
	};
	int ret;

	ret = vmbus_sendpacket(c->chan, (void *)h->reply, h->reply_len, h->vmbus_trans_id,
			       VM_PKT_COMP, 0);
	if (ret == 0) {
		vgd_trace(&ev);
		atomic64_inc(&c->counters.completed);
	}
	return ret;
}

/*
 * Answers every held Event that is due, soonest first, each traced as pkt.complete
 * once its reply is in the ring. A full ring: tried again 1 ms later.
 */
void bqg_answer_work(struct work_struct *work)
{
	struct bqg_channel *c = container_of(to_delayed_work(work), struct bqg_channel,
					     answer_work);
	struct bqg_held *h;
	int ret;

	for (;;) {
		spin_lock_bh(&c->lock);
		h = list_first_entry_or_null(&c->held, struct bqg_held, node);
		if (!h || c->closing || time_after(h->due, jiffies)) {
			bqg_arm(c);
			spin_unlock_bh(&c->lock);
			return;
		}
		ret = bqg_send_answer(c, h);
		if (ret == -EAGAIN) {
			/* The host has not drained its incoming ring yet. */
			atomic64_inc(&c->counters.send_retries);
			if (!c->closing)
				mod_delayed_work(system_wq, &c->answer_work, msecs_to_jiffies(1));
			spin_unlock_bh(&c->lock);
			return;
		}
		list_del(&h->node);
		spin_unlock_bh(&c->lock);
		atomic64_dec(&c->counters.held);
		kfree(h);
	}
}

/* A little-endian u64 of a message. */
static u64 bqg_le64(const u8 *b)
{
	u64 v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = v << 8 | b[i];
	return v;
}

/* A reply to one of our Requests. Softirq context. */
static void bqg_on_reply(struct bqg_channel *c, u64 trans_id, const u8 *data, u32 len)
{
	struct vbt_event ev = {
		.kind = VBT_PKT_COMPLETION, .ch = c->ch, .tx = trans_id, .dir = VBT_G2H,
		.status = bq_reply_status(data, len),
		.digest = bq_fnv1a64(data, bq_reply_length(data, len)),
	};
	struct bqg_outstanding *o;
	struct bq_header h;

	/* We send each Request with its tx as the VMBus transaction id. */
	o = xa_erase(&c->outstanding, trans_id);
	if (!o) {
		/* Not ours: nothing to trace; the checker sees the pair missing. */
		atomic64_inc(&c->counters.completion_mismatch);
		return;
	}
	spin_lock(&c->lock);
	vgd_trace(&ev);
	spin_unlock(&c->lock);
	atomic64_inc(&c->counters.completions);
	/* The reply names our tx; after its status, the digest of the Request as sent. */
	if (bq_decode_header(data, len, &h) || h.tx != trans_id || len < BQ_HEADER_SIZE + 12 ||
	    bqg_le64(data + BQ_HEADER_SIZE + 4) != o->digest)
		atomic64_inc(&c->counters.completion_mismatch);
	kfree(o);
}

/* Held in due order: after every entry due no later than it. Under c->lock. */
static void bqg_hold(struct bqg_channel *c, struct bqg_held *held)
{
	struct bqg_held *h;

	list_for_each_entry(h, &c->held, node)
		if (time_after(h->due, held->due))
			break;
	/* Before h, or at the tail when the loop ran off the end (h->node is the head). */
	list_add_tail(&held->node, &h->node);
	atomic64_inc(&c->counters.held);
	if (list_first_entry_or_null(&c->held, struct bqg_held, node) == held)
		bqg_arm(c);
}

/* A message from the host. Softirq context. */
static void bqg_on_message(struct bqg_channel *c, u64 trans_id, bool want_reply,
			   const u8 *data, u32 len)
{
	struct vbt_event ev = {
		.kind = VBT_PKT_RECV, .ch = c->ch, .dir = VBT_H2G,
	};
	struct bq_header h = { 0 };
	struct bqg_held *held;
	bool header;
	int intact = 0;

	header = bq_decode_header(data, len, &h) == 0;
	if (header)
		intact = bq_is_intact(data, len, &h);
	atomic64_inc(&c->counters.received);
	if (!intact)
		atomic64_inc(&c->counters.damaged);
	/* The ring rounds lengths up to 8 bytes; the header knows the exact one. */
	ev.tx = h.tx;
	ev.len = header && h.length < len ? h.length : len;
	ev.digest = bq_fnv1a64(data, ev.len);
	vgd_trace(&ev);

	if (!want_reply)
		return; /* a Note: checked, nothing goes back */

	held = kzalloc(sizeof(*held), GFP_ATOMIC);
	if (!held) {
		/* Without memory it cannot be held: answered at once instead, early. */
		struct bqg_held now = { .vmbus_trans_id = trans_id, .tx = h.tx };

		now.status = header ? bq_status_for(h.tx, intact) : BQ_STATUS_DEVICE_DATA_ERROR;
		now.reply_len = header ? bq_encode_reply(now.reply, &h, now.status, ev.digest) : 0;
		spin_lock(&c->lock);
		bqg_send_answer(c, &now);
		spin_unlock(&c->lock);
		return;
	}
	held->vmbus_trans_id = trans_id;
	held->tx = h.tx;
	held->status = header ? bq_status_for(h.tx, intact) : BQ_STATUS_DEVICE_DATA_ERROR;
	held->reply_len = header ? bq_encode_reply(held->reply, &h, held->status, ev.digest) : 0;
	held->due = jiffies + msecs_to_jiffies(bq_answer_delay(h.tx, h.type == BQ_MSG_EVENT ?
							       h.hold : 0));
	spin_lock(&c->lock);
	if (c->closing) {
		spin_unlock(&c->lock);
		atomic64_inc(&c->counters.dropped_on_close);
		kfree(held);
		return;
	}
	bqg_hold(c, held);
	spin_unlock(&c->lock);
}

void bqg_on_channel(void *context)
{
	struct bqg_channel *c = context;
	struct vmpacket_descriptor *desc;

	foreach_vmbus_pkt(desc, c->chan) {
		const u8 *data = hv_pkt_data(desc);
		u32 len = hv_pkt_datalen(desc);

		switch (desc->type) {
		case VM_PKT_COMP:
			bqg_on_reply(c, desc->trans_id, data, len);
			break;
		case VM_PKT_DATA_INBAND:
			bqg_on_message(c, desc->trans_id,
				       desc->flags & VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED,
				       data, len);
			break;
		default:
			atomic64_inc(&c->counters.damaged);
			break;
		}
	}
}

/*
 * Sends one message and traces pkt.send. Called with bqg_channels_lock held, which
 * serialises senders, so next_tx only moves when a send succeeded and the ids stay
 * dense.
 */
static int bqg_send_one(struct bqg_channel *c, u16 type, u32 length, u16 mode, u32 hold,
			u8 *buf)
{
	bool want = type == BQ_MSG_REQUEST;
	unsigned long deadline = jiffies + msecs_to_jiffies(BQG_SEND_TIMEOUT_MS);
	struct vbt_event ev = {
		.kind = VBT_PKT_SEND, .ch = c->ch, .dir = VBT_G2H,
		.len = length, .want_completion = want,
	};
	u32 flags = want ? VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED : 0;
	struct bqg_outstanding *o = NULL;
	u64 tx = c->next_tx + 1;
	int ret;

	if (bq_encode_message(buf, type, tx, length, mode, hold))
		return -EINVAL;
	ev.tx = tx;
	ev.digest = bq_fnv1a64(buf, length);
	if (want) {
		/* Registered before the send: the reply may come at once. */
		o = kmalloc(sizeof(*o), GFP_KERNEL);
		if (!o)
			return -ENOMEM;
		o->digest = ev.digest;
		ret = xa_insert_bh(&c->outstanding, tx, o, GFP_KERNEL);
		if (ret) {
			kfree(o);
			return ret;
		}
	}
	for (;;) {
		spin_lock_bh(&c->lock);
		if (c->closing)
			ret = -ENODEV;
		else
			ret = vmbus_sendpacket(c->chan, buf, length, tx, VM_PKT_DATA_INBAND, flags);
		if (ret == 0) {
			c->next_tx = tx;
			vgd_trace(&ev);
		}
		spin_unlock_bh(&c->lock);
		if (ret != -EAGAIN || time_after(jiffies, deadline))
			break;
		/* Ring full: the host is behind. Unlike KMCL, Linux does not queue. */
		atomic64_inc(&c->counters.send_retries);
		usleep_range(500, 1000);
	}
	if (ret == -EAGAIN) {
		/*
		 * Given up: the ring stayed full for the whole timeout. Traced, so a
		 * reader can tell it from a send that was lost; tx stays unused.
		 */
		ev.kind = VBT_PKT_TIMEOUT;
		spin_lock_bh(&c->lock);
		vgd_trace(&ev);
		spin_unlock_bh(&c->lock);
	}
	if (ret && o) {
		xa_erase_bh(&c->outstanding, tx);
		kfree(o);
	}
	if (!ret)
		atomic64_inc(want ? &c->counters.requests_sent : &c->counters.notes_sent);
	return ret;
}

static int bqg_send_many(u16 type, u32 count, u32 length, u16 mode, u32 hold, long only_ch)
{
	struct bqg_channel *c;
	int ret = 0, matched = 0;
	u32 i;
	u8 *buf;

	if (length < BQ_HEADER_SIZE || length > BQ_MAX_MESSAGE_SIZE)
		return -EINVAL;
	buf = kmalloc(length, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	mutex_lock(&bqg_channels_lock);
	list_for_each_entry(c, &bqg_channels, node) {
		if (only_ch >= 0 && c->ch != only_ch)
			continue;
		matched++;
		for (i = 0; i < count && !ret; i++)
			ret = bqg_send_one(c, type, length, mode, hold, buf);
		if (ret)
			break;
	}
	mutex_unlock(&bqg_channels_lock);
	kfree(buf);
	return ret ? ret : (matched ? 0 : -ENODEV);
}

int bqg_send_requests(u32 count, u32 length, u32 mode, u32 hold_ms, long only_ch)
{
	if (mode > BQ_MODE_HOLD)
		return -EINVAL;
	return bqg_send_many(BQ_MSG_REQUEST, count, length, (u16)mode,
			     mode == BQ_MODE_HOLD ? hold_ms : 0, only_ch);
}

int bqg_send_notes(u32 count, u32 length, long only_ch)
{
	return bqg_send_many(BQ_MSG_NOTE, count, length, 0, 0, only_ch);
}

/* Answers every held Event now instead of when it is due. */
void bqg_answer_now(long only_ch)
{
	struct bqg_channel *c;
	struct bqg_held *h;

	mutex_lock(&bqg_channels_lock);
	list_for_each_entry(c, &bqg_channels, node) {
		if (only_ch >= 0 && c->ch != only_ch)
			continue;
		spin_lock_bh(&c->lock);
		list_for_each_entry(h, &c->held, node)
			h->due = jiffies;
		bqg_arm(c);
		spin_unlock_bh(&c->lock);
	}
	mutex_unlock(&bqg_channels_lock);
}
