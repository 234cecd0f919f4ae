// SPDX-License-Identifier: GPL-2.0
/*
 * Sample guest driver for the bench's sample VMBus device: the guest role of
 * lab/drivers/PROTOCOL.md on Linux.
 *
 * It binds to channels offered with the protocol's interface type GUID, opens
 * each with the protocol's ring sizes, sends Requests (completion requested)
 * and Notifies when the bench asks, and completes every HostTransaction after
 * the hold the host put in it (or the one the bench set). Every protocol and
 * state event is written to the JSON Lines trace (sample_guest_ctl.c).
 *
 * Rescind and re-offer: when the host rescinds the offer, the VMBus core
 * unregisters the device and calls our remove; a new offer calls probe again.
 * remove therefore has to leave nothing behind (held work, outstanding
 * requests), and probe starts from nothing. The trace buffer is module-wide,
 * so one trace covers both incarnations of the channel.
 *
 * Locking: sg_channels_lock (a mutex) guards the list of channels and
 * serialises the control commands that send. Each channel's spinlock guards
 * its held list and the closing flag and, because sends and their trace lines
 * happen under it, keeps pkt.send ahead of its pkt.completion in the trace.
 * The channel callback runs in softirq context, hence the _bh variants in
 * process context.
 */
#include <linux/delay.h>
#include <linux/jiffies.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/version.h>

#include "sample_guest.h"

static unsigned int ring_pages = SP_DEFAULT_RING_PAGES;
module_param(ring_pages, uint, 0444);
MODULE_PARM_DESC(ring_pages, "Ring size per direction in 4 KiB data pages (default 4)");

/* How long a send keeps retrying while the host leaves the ring full. */
#define SG_SEND_TIMEOUT_MS 5000
/* Room for the VMBus packet descriptor in front of the largest message. */
#define SG_PKT_OVERHEAD 64

static LIST_HEAD(sg_channels);
static DEFINE_MUTEX(sg_channels_lock);

/* -1: hold each HostTransaction for its arg0 ms; otherwise for this many ms. */
static atomic_long_t sg_hold_override = ATOMIC_LONG_INIT(-1);

static const struct hv_vmbus_device_id sg_id_table[] = {
	{ .guid = SP_APPLY(GUID_INIT, SP_INTERFACE_TYPE_GUID_FIELDS) },
	{ },
};
MODULE_DEVICE_TABLE(vmbus, sg_id_table);

static void sg_trace_state(struct sg_channel *sgc, const char *state)
{
	struct sp_trace_event ev = {
		.kind = SP_EV_CH_STATE, .ch = sgc->ch, .state = state,
	};

	sg_trace(&ev);
}

/* Sends a completion payload back and traces pkt.complete. */
static int sg_complete(struct sg_channel *sgc, u64 trans_id, u64 tx,
		       const u8 *completion)
{
	struct sp_trace_event ev = {
		.kind = SP_EV_PKT_COMPLETE, .ch = sgc->ch, .tx = tx,
		.dir = SP_DIR_H2G, .len = SP_COMPLETION_SIZE,
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
	sg_trace(&ev);
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
	struct sp_trace_event ev = {
		.kind = SP_EV_PKT_COMPLETION, .ch = sgc->ch, .dir = SP_DIR_G2H,
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
	sg_trace(&ev);
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
	struct sp_trace_event ev = {
		.kind = SP_EV_PKT_RECV, .ch = sgc->ch, .dir = SP_DIR_H2G,
	};
	struct sp_header h = { 0 };
	struct sg_held *held;
	long hold_ms;
	int intact = 0;

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
	ev.digest = sp_message_digest(data, len, &h);
	sg_trace(&ev);

	if (!want_completion)
		return; /* a Notify: checked, nothing goes back */

	held = kzalloc(sizeof(*held), GFP_ATOMIC);
	if (!held) {
		/* Without memory we cannot hold it: complete it right away. */
		u8 completion[SP_COMPLETION_SIZE];

		sp_encode_completion(completion, data, len, &h, sp_status_for(h.tx, intact));
		sg_complete(sgc, trans_id, h.tx, completion);
		return;
	}
	held->sgc = sgc;
	held->vmbus_trans_id = trans_id;
	held->tx = h.tx;
	INIT_DELAYED_WORK(&held->work, sg_held_work);
	sp_encode_completion(held->completion, data, len, &h, sp_status_for(h.tx, intact));

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

static void sg_on_channel(void *context)
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
	struct sp_trace_event ev = {
		.kind = SP_EV_PKT_SEND, .ch = sgc->ch, .dir = SP_DIR_G2H,
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
			sg_trace(&ev);
		}
		spin_unlock_bh(&sgc->lock);
		if (ret != -EAGAIN || time_after(jiffies, deadline))
			break;
		/* Ring full: the host is holding. Unlike KMCL, Linux does not queue. */
		atomic64_inc(&sgc->counters.send_retries);
		usleep_range(500, 1000);
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

int sg_print_counters(char *buf, size_t size)
{
	struct sg_channel *sgc;
	int n = 0;

	mutex_lock(&sg_channels_lock);
	list_for_each_entry(sgc, &sg_channels, node) {
		struct sg_counters *c = &sgc->counters;

		n += scnprintf(buf + n, size - n,
			       "ch=%u requests_sent=%lld notifies_sent=%lld completions=%lld completion_mismatch=%lld received=%lld completed=%lld damaged=%lld held=%lld send_retries=%lld dropped_on_close=%lld next_tx=%llu\n",
			       sgc->ch, atomic64_read(&c->requests_sent),
			       atomic64_read(&c->notifies_sent), atomic64_read(&c->completions),
			       atomic64_read(&c->completion_mismatch),
			       atomic64_read(&c->received), atomic64_read(&c->completed),
			       atomic64_read(&c->damaged), atomic64_read(&c->held),
			       atomic64_read(&c->send_retries),
			       atomic64_read(&c->dropped_on_close), sgc->next_tx);
	}
	mutex_unlock(&sg_channels_lock);
	return n;
}

static int sg_open(struct sg_channel *sgc)
{
	u32 ring = VMBUS_RING_SIZE(ring_pages * SP_PAGE_SIZE);
	int ret;

	/*
	 * Linux copies each incoming packet out of the ring into a buffer of
	 * max_pkt_size bytes (4 KiB unless told otherwise) and cuts longer ones:
	 * make room for the protocol's largest message before opening.
	 */
	sgc->chan->max_pkt_size = SP_MAX_MESSAGE_SIZE + SG_PKT_OVERHEAD;
	ret = vmbus_open(sgc->chan, ring, ring, NULL, 0, sg_on_channel, sgc);
	if (ret)
		return ret;
	spin_lock_bh(&sgc->lock);
	sgc->closing = false;
	spin_unlock_bh(&sgc->lock);
	/* Linux delivers as soon as the channel is open: Started and Active at once. */
	sg_trace_state(sgc, "Opened");
	sg_trace_state(sgc, "Started");
	sg_trace_state(sgc, "Active");
	return 0;
}

/*
 * Stops traffic, forgets every held or outstanding packet and closes the channel.
 * Held work is cancelled before vmbus_close, because a completion sent after it
 * would write into rings that vmbus_close has freed. Once closing is set, nothing
 * new is held and nothing new is sent, so the order is safe.
 */
static void sg_close(struct sg_channel *sgc)
{
	struct sg_outstanding *o;
	struct sg_held *h;
	unsigned long tx;
	bool done;

	spin_lock_bh(&sgc->lock);
	sgc->closing = true;
	spin_unlock_bh(&sgc->lock);
	sg_trace_state(sgc, "Paused");
	for (;;) {
		spin_lock_bh(&sgc->lock);
		h = list_first_entry_or_null(&sgc->held, struct sg_held, node);
		if (h)
			list_del(&h->node);
		spin_unlock_bh(&sgc->lock);
		if (!h)
			break;
		cancel_delayed_work_sync(&h->work);
		spin_lock_bh(&sgc->lock);
		done = h->done;
		spin_unlock_bh(&sgc->lock);
		atomic64_dec(&sgc->counters.held);
		if (!done)
			atomic64_inc(&sgc->counters.dropped_on_close);
		kfree(h);
	}
	/* After vmbus_close the callback cannot run any more. */
	vmbus_close(sgc->chan);
	xa_for_each(&sgc->outstanding, tx, o) {
		xa_erase_bh(&sgc->outstanding, tx);
		kfree(o);
	}
	sg_trace_state(sgc, "Closed");
}

static int sg_probe(struct hv_device *hdev, const struct hv_vmbus_device_id *id)
{
	struct sg_channel *sgc;
	int ret;

	sgc = kzalloc(sizeof(*sgc), GFP_KERNEL);
	if (!sgc)
		return -ENOMEM;
	sgc->hdev = hdev;
	sgc->chan = hdev->channel;
	sgc->ch = sp_channel_number(hdev->dev_instance.b);
	spin_lock_init(&sgc->lock);
	INIT_LIST_HEAD(&sgc->held);
	xa_init_flags(&sgc->outstanding, XA_FLAGS_LOCK_BH);
	hv_set_drvdata(hdev, sgc);

	ret = sg_open(sgc);
	if (ret) {
		dev_err(&hdev->device, "vmbus_open failed: %d\n", ret);
		hv_set_drvdata(hdev, NULL);
		kfree(sgc);
		return ret;
	}
	mutex_lock(&sg_channels_lock);
	list_add_tail(&sgc->node, &sg_channels);
	mutex_unlock(&sg_channels_lock);
	dev_info(&hdev->device, "sample channel %u open (%u ring pages)\n", sgc->ch, ring_pages);
	return 0;
}

/* Also the rescind path: the VMBus core removes the device when the host rescinds. */
static void sg_teardown(struct hv_device *hdev)
{
	struct sg_channel *sgc = hv_get_drvdata(hdev);

	/* Unlinked first: control commands stop seeing it (and we wait for theirs). */
	mutex_lock(&sg_channels_lock);
	list_del(&sgc->node);
	mutex_unlock(&sg_channels_lock);
	sg_close(sgc);
	sg_trace_state(sgc, "Disabled");
	xa_destroy(&sgc->outstanding);
	hv_set_drvdata(hdev, NULL);
	kfree(sgc);
}

/* .remove returns int before 6.3 and void from 6.3 on. */
#if KERNEL_VERSION(6, 3, 0) <= LINUX_VERSION_CODE
static void sg_remove(struct hv_device *hdev)
{
	sg_teardown(hdev);
}
#else
static int sg_remove(struct hv_device *hdev)
{
	sg_teardown(hdev);
	return 0;
}
#endif

/* Hibernation of the guest: close the channel, and open it again on resume. */
static int sg_suspend(struct hv_device *hdev)
{
	struct sg_channel *sgc = hv_get_drvdata(hdev);

	mutex_lock(&sg_channels_lock);
	sg_close(sgc);
	mutex_unlock(&sg_channels_lock);
	return 0;
}

static int sg_resume(struct hv_device *hdev)
{
	struct sg_channel *sgc = hv_get_drvdata(hdev);
	int ret;

	mutex_lock(&sg_channels_lock);
	ret = sg_open(sgc);
	mutex_unlock(&sg_channels_lock);
	return ret;
}

static struct hv_driver sg_driver = {
	.name = KBUILD_MODNAME,
	.id_table = sg_id_table,
	.probe = sg_probe,
	.remove = sg_remove,
	.suspend = sg_suspend,
	.resume = sg_resume,
	.driver = {
		.probe_type = PROBE_PREFER_ASYNCHRONOUS,
	},
};

static int __init sg_init(void)
{
	int ret;

	if (ring_pages == 0 || ring_pages > 1024)
		return -EINVAL;
	ret = sg_ctl_init();
	if (ret)
		return ret;
	ret = vmbus_driver_register(&sg_driver);
	if (ret)
		sg_ctl_exit();
	return ret;
}

static void __exit sg_exit(void)
{
	vmbus_driver_unregister(&sg_driver);
	sg_ctl_exit();
}

module_init(sg_init);
module_exit(sg_exit);

MODULE_DESCRIPTION("Sample guest driver of the VMBus save/restore bench");
MODULE_LICENSE("GPL");
