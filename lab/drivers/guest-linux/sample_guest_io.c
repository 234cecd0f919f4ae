// SPDX-License-Identifier: GPL-2.0
/*
 * Traffic of the sample guest driver: the host's messages and our completions
 * for them (held for the scenario's time), our Requests and Notifies and the
 * completions the host sends back. Channel lifetime is in sample_guest_main.c.
 *
 * The channel callback runs in softirq context; the senders run in process
 * context under sg_channels_lock, which serialises them, and take the channel's
 * spinlock with the _bh variants.
 */
#include <linux/delay.h>
#include <linux/jiffies.h>
#include <linux/mutex.h>
#include <linux/slab.h>

#include "sample_guest.h"

/* How long a send keeps retrying while the host leaves the ring full. */
#define SG_SEND_TIMEOUT_MS 5000

/* -1: hold each HostTransaction for its arg0 ms; otherwise for this many ms. */
static atomic_long_t sg_hold_override = ATOMIC_LONG_INIT(-1);

/* Sends a completion payload back and traces pkt.complete. */
static int sg_complete(struct sg_channel *sgc, u64 trans_id, u64 tx,
		       const u8 *completion)
{
	struct vbt_event ev = {
		.kind = VBT_PKT_COMPLETE, .ch = sgc->ch, .tx = tx,
		.dir = VBT_H2G, .len = SP_COMPLETION_SIZE,
	};
	struct sp_completion c;
	int ret;

	ret = vmbus_sendpacket(sgc->chan, (void *)completion, SP_COMPLETION_SIZE,
			       trans_id, VM_PKT_COMP, 0);
	if (ret)
		return ret;
	sp_decode_completion(completion, SP_COMPLETION_SIZE, &c);
	ev.status = c.status;
	ev.digest = sp_fnv1a64(completion, SP_COMPLETION_SIZE);
	vgd_trace(&ev);
	atomic64_inc(&sgc->counters.completed);
	return 0;
}

static void sg_held_work(struct work_struct *work)
{
	struct sg_held *h = container_of(to_delayed_work(work), struct sg_held, work);
	struct sg_channel *sgc = h->sgc;
	int ret;

	ret = sg_complete(sgc, h->vmbus_trans_id, h->tx, h->completion);
	if (ret == -EAGAIN) {
		/* The host has not drained its incoming ring yet: try again shortly. */
		atomic64_inc(&sgc->counters.send_retries);
		schedule_delayed_work(&h->work, msecs_to_jiffies(1));
		return;
	}
	spin_lock_bh(&sgc->lock);
	if (sgc->closing) {
		/* sg_close is waiting for us and frees the entry itself. */
		h->done = ret == 0;
		spin_unlock_bh(&sgc->lock);
		return;
	}
	list_del(&h->node);
	spin_unlock_bh(&sgc->lock);
	atomic64_dec(&sgc->counters.held);
	kfree(h);
}

/* A completion for one of our Requests. Softirq context. */
static void sg_on_completion(struct sg_channel *sgc, const u8 *data, u32 len)
{
	struct vbt_event ev = {
		.kind = VBT_PKT_COMPLETION, .ch = sgc->ch, .dir = VBT_G2H,
	};
	struct sg_outstanding *o;
	struct sp_completion c;

	if (sp_decode_completion(data, len, &c)) {
		atomic64_inc(&sgc->counters.completion_mismatch);
		return;
	}
	o = xa_erase(&sgc->outstanding, c.tx);
	ev.tx = c.tx;
	ev.status = c.status;
	ev.digest = sp_fnv1a64(data, SP_COMPLETION_SIZE);
	spin_lock(&sgc->lock);
	vgd_trace(&ev);
	spin_unlock(&sgc->lock);
	atomic64_inc(&sgc->counters.completions);
	if (!o || o->digest != c.request_digest)
		atomic64_inc(&sgc->counters.completion_mismatch);
	kfree(o);
}

/* A message from the host. Softirq context. */
static void sg_on_message(struct sg_channel *sgc, u64 trans_id, bool want_completion,
			  const u8 *data, u32 len)
{
	struct vbt_event ev = {
		.kind = VBT_PKT_RECV, .ch = sgc->ch, .dir = VBT_H2G,
	};
	struct sp_header h = { 0 };
	struct sg_held *held;
	long hold_ms;
	int intact = 0;
	u64 digest;

	if (sp_decode_header(data, len, &h) == 0)
		intact = sp_is_intact(data, len, &h);
	else
		h.length = len;
	/* Only HostTransactions and Notifies travel host to guest. */
	if (h.type != SP_MSG_HOST_TRANSACTION && h.type != SP_MSG_NOTIFY)
		intact = 0;
	atomic64_inc(&sgc->counters.received);
	if (!intact)
		atomic64_inc(&sgc->counters.damaged);

	ev.tx = h.tx;
	ev.len = h.length;
	/* Hashed once: the completion below carries the same digest. */
	digest = sp_message_digest(data, len, &h);
	ev.digest = digest;
	vgd_trace(&ev);

	if (!want_completion)
		return; /* a Notify: checked, nothing goes back */

	held = kzalloc(sizeof(*held), GFP_ATOMIC);
	if (!held) {
		/* Without memory we cannot hold it: complete it right away. */
		u8 completion[SP_COMPLETION_SIZE];

		sp_encode_completion_digest(completion, &h, sp_status_for(h.tx, intact),
					    digest);
		sg_complete(sgc, trans_id, h.tx, completion);
		return;
	}
	held->sgc = sgc;
	held->vmbus_trans_id = trans_id;
	held->tx = h.tx;
	INIT_DELAYED_WORK(&held->work, sg_held_work);
	sp_encode_completion_digest(held->completion, &h, sp_status_for(h.tx, intact),
				    digest);

	hold_ms = atomic_long_read(&sg_hold_override);
	if (hold_ms < 0)
		hold_ms = intact ? h.arg0 : 0;
	if (hold_ms == 0 &&
	    sg_complete(sgc, trans_id, h.tx, held->completion) != -EAGAIN) {
		kfree(held);
		return;
	}

	spin_lock(&sgc->lock);
	if (sgc->closing) {
		spin_unlock(&sgc->lock);
		atomic64_inc(&sgc->counters.dropped_on_close);
		kfree(held);
		return;
	}
	list_add_tail(&held->node, &sgc->held);
	atomic64_inc(&sgc->counters.held);
	schedule_delayed_work(&held->work, msecs_to_jiffies(hold_ms ? hold_ms : 1));
	spin_unlock(&sgc->lock);
}

void sg_on_channel(void *context)
{
	struct sg_channel *sgc = context;
	struct vmpacket_descriptor *desc;

	foreach_vmbus_pkt(desc, sgc->chan) {
		/* The ring rounds lengths up to 8 bytes; the header knows the exact one. */
		const u8 *data = hv_pkt_data(desc);
		u32 len = hv_pkt_datalen(desc);

		switch (desc->type) {
		case VM_PKT_COMP:
			sg_on_completion(sgc, data, len);
			break;
		case VM_PKT_DATA_INBAND:
			sg_on_message(sgc, desc->trans_id,
				      desc->flags & VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED,
				      data, len);
			break;
		default:
			atomic64_inc(&sgc->counters.damaged);
			break;
		}
	}
}

/*
 * Sends one message and traces pkt.send. Called with sg_channels_lock held,
 * which serialises senders, so next_tx only moves when a send succeeded and
 * the ids stay dense.
 */
static int sg_send_one(struct sg_channel *sgc, u16 type, u32 length, u32 arg0,
		       u32 arg1, u8 *buf)
{
	bool want = type == SP_MSG_REQUEST;
	unsigned long deadline = jiffies + msecs_to_jiffies(SG_SEND_TIMEOUT_MS);
	struct vbt_event ev = {
		.kind = VBT_PKT_SEND, .ch = sgc->ch, .dir = VBT_G2H,
		.len = length, .want_completion = want,
	};
	u32 flags = want ? VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED : 0;
	struct sg_outstanding *o = NULL;
	u64 tx = sgc->next_tx + 1;
	int ret;

	if (sp_encode_message(buf, length, type, tx, length, arg0, arg1))
		return -EINVAL;
	ev.tx = tx;
	ev.digest = sp_fnv1a64(buf, length);
	if (want) {
		/* Registered before the send: the completion may come at once. */
		o = kmalloc(sizeof(*o), GFP_KERNEL);
		if (!o)
			return -ENOMEM;
		o->digest = ev.digest;
		ret = xa_insert_bh(&sgc->outstanding, tx, o, GFP_KERNEL);
		if (ret) {
			kfree(o);
			return ret;
		}
	}
	for (;;) {
		spin_lock_bh(&sgc->lock);
		if (sgc->closing)
			ret = -ENODEV;
		else
			ret = vmbus_sendpacket(sgc->chan, buf, length, tx,
					       VM_PKT_DATA_INBAND, flags);
		if (ret == 0) {
			sgc->next_tx = tx;
			vgd_trace(&ev);
		}
		spin_unlock_bh(&sgc->lock);
		if (ret != -EAGAIN || time_after(jiffies, deadline))
			break;
		/* Ring full: the host is holding. Unlike KMCL, Linux does not queue. */
		atomic64_inc(&sgc->counters.send_retries);
		usleep_range(500, 1000);
	}
	if (ret == -EAGAIN) {
		/*
		 * Given up: the ring stayed full for the whole timeout. Traced, so a
		 * reader can tell it from a send that was lost; tx stays unused.
		 */
		ev.kind = VBT_PKT_TIMEOUT;
		spin_lock_bh(&sgc->lock);
		vgd_trace(&ev);
		spin_unlock_bh(&sgc->lock);
	}
	if (ret && o) {
		xa_erase_bh(&sgc->outstanding, tx);
		kfree(o);
	}
	if (!ret)
		atomic64_inc(want ? &sgc->counters.requests_sent : &sgc->counters.notifies_sent);
	return ret;
}

static int sg_send_many(u16 type, u32 count, u32 length, u32 arg0, u32 arg1, long only_ch)
{
	struct sg_channel *sgc;
	int ret = 0, matched = 0;
	u32 i;
	u8 *buf;

	if (length < SP_HEADER_SIZE || length > SP_MAX_MESSAGE_SIZE)
		return -EINVAL;
	buf = kmalloc(length, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	mutex_lock(&sg_channels_lock);
	list_for_each_entry(sgc, &sg_channels, node) {
		if (only_ch >= 0 && sgc->ch != only_ch)
			continue;
		matched++;
		for (i = 0; i < count && !ret; i++)
			ret = sg_send_one(sgc, type, length, arg0, arg1, buf);
		if (ret)
			break;
	}
	mutex_unlock(&sg_channels_lock);
	kfree(buf);
	return ret ? ret : (matched ? 0 : -ENODEV);
}

int sg_send_requests(u32 count, u32 length, u32 mode, u32 hold_ms, long only_ch)
{
	if (mode > SP_MODE_HOLD)
		return -EINVAL;
	return sg_send_many(SP_MSG_REQUEST, count, length, mode,
			    mode == SP_MODE_HOLD ? hold_ms : 0, only_ch);
}

int sg_send_notifies(u32 count, u32 length, long only_ch)
{
	return sg_send_many(SP_MSG_NOTIFY, count, length, 0, 0, only_ch);
}

void sg_set_hold_override(long hold_ms)
{
	atomic_long_set(&sg_hold_override, hold_ms);
}

/* Completes every held HostTransaction now instead of at the end of its hold. */
void sg_release_held(long only_ch)
{
	struct sg_channel *sgc;
	struct sg_held *h;

	mutex_lock(&sg_channels_lock);
	list_for_each_entry(sgc, &sg_channels, node) {
		if (only_ch >= 0 && sgc->ch != only_ch)
			continue;
		spin_lock_bh(&sgc->lock);
		list_for_each_entry(h, &sgc->held, node)
			mod_delayed_work(system_wq, &h->work, 0);
		spin_unlock_bh(&sgc->lock);
	}
	mutex_unlock(&sg_channels_lock);
}

