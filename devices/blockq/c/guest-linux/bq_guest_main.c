// SPDX-License-Identifier: GPL-2.0
/*
 * blockq's guest driver: the guest role of ../../PROTOCOL.md on Linux. This file: the
 * module and the channels' lifetime; their traffic is in bq_guest_io.c.
 *
 * It binds to channels offered with blockq's interface type GUID, opens each with
 * the module's ring size, sends Requests (each wants a reply) and Notes when the bench
 * asks, and answers every host Event hold + d(tx) ms after it arrived, out of order,
 * with a reply whose size depends on the tx. Every protocol and state event goes to
 * the JSON Lines trace (bq_guest_ctl.c).
 *
 * Rescind and re-offer: when the host rescinds the offer, the VMBus core removes the
 * device and calls our remove; a new offer calls probe again. remove leaves nothing
 * behind (held Events dropped, outstanding Requests each ended with pkt.cancel), and
 * probe starts from nothing but the channel's tx counter, which goes on across the
 * re-offer, so no tx of the old instance is used on the new one.
 *
 * Locking: bqg_channels_lock (a mutex) guards the list of channels and serialises
 * the control commands that send. Each channel's spinlock guards its held list and
 * the closing flag, and keeps pkt.send ahead of its pkt.completion in the trace. The
 * channel callback runs in softirq context, hence the _bh variants in process context.
 */
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/version.h>

#include "bq_guest.h"

static unsigned int ring_pages = 4;
module_param(ring_pages, uint, 0444);
MODULE_PARM_DESC(ring_pages, "Ring size per direction in 4 KiB data pages (default 4)");

/* Room for the VMBus packet descriptor in front of the largest message. */
#define BQG_PKT_OVERHEAD 64
#define BQG_PAGE_SIZE 4096u

/* Every open channel, under bqg_channels_lock. */
LIST_HEAD(bqg_channels);
/* Guards bqg_channels and serialises the control commands that send. */
DEFINE_MUTEX(bqg_channels_lock);

/* The last tx of each channel number whose device went away, under bqg_channels_lock. */
struct bqg_tx_mark {
	struct list_head node;
	u32 ch;
	u64 next_tx;
};

static LIST_HEAD(bqg_tx_marks);

static struct bqg_tx_mark *bqg_find_mark(u32 ch)
{
	struct bqg_tx_mark *m;

	list_for_each_entry(m, &bqg_tx_marks, node)
		if (m->ch == ch)
			return m;
	return NULL;
}

static const struct hv_vmbus_device_id bqg_id_table[] = {
	{ .guid = BQ_APPLY(GUID_INIT, BQ_INTERFACE_TYPE_GUID_FIELDS) },
	{ },
};
MODULE_DEVICE_TABLE(vmbus, bqg_id_table);

int bqg_print_counters(char *buf, size_t size)
{
	struct bqg_channel *c;
	int n = 0;

	mutex_lock(&bqg_channels_lock);
	list_for_each_entry(c, &bqg_channels, node) {
		struct bqg_counters *k = &c->counters;

		n += scnprintf(buf + n, size - n,
			       "ch=%u requests_sent=%lld notes_sent=%lld completions=%lld completion_mismatch=%lld received=%lld completed=%lld damaged=%lld held=%lld send_retries=%lld dropped_on_close=%lld next_tx=%llu\n",
			       c->ch, atomic64_read(&k->requests_sent),
			       atomic64_read(&k->notes_sent), atomic64_read(&k->completions),
			       atomic64_read(&k->completion_mismatch),
			       atomic64_read(&k->received), atomic64_read(&k->completed),
			       atomic64_read(&k->damaged), atomic64_read(&k->held),
			       atomic64_read(&k->send_retries),
			       atomic64_read(&k->dropped_on_close), c->next_tx);
	}
	mutex_unlock(&bqg_channels_lock);
	return n;
}

static int bqg_open(struct bqg_channel *c)
{
	u32 ring = VMBUS_RING_SIZE(ring_pages * BQG_PAGE_SIZE);
	int ret;

	/*
	 * Linux copies each incoming packet out of the ring into a buffer of
	 * max_pkt_size bytes (4 KiB unless told otherwise) and cuts longer ones: make
	 * room for the protocol's largest message before opening.
	 */
	c->chan->max_pkt_size = BQ_MAX_MESSAGE_SIZE + BQG_PKT_OVERHEAD;
	ret = vmbus_open(c->chan, ring, ring, NULL, 0, bqg_on_channel, c);
	if (ret)
		return ret;
	spin_lock_bh(&c->lock);
	c->closing = false;
	spin_unlock_bh(&c->lock);
	/* Linux delivers as soon as the channel is open: Active at once, no Started. */
	bqg_trace_state(c, "Opened");
	bqg_trace_state(c, "Active");
	return 0;
}

/*
 * Stops traffic, drops every held Event, ends every outstanding Request and closes
 * the channel. The answer work is cancelled before vmbus_close, because a reply sent
 * after it would write into rings vmbus_close has freed; once closing is set, the
 * work does not arm itself again and nothing new is held or sent.
 */
static void bqg_close(struct bqg_channel *c)
{
	struct bqg_outstanding *o;
	struct bqg_held *h, *next;
	LIST_HEAD(dropped);
	unsigned long tx;

	spin_lock_bh(&c->lock);
	c->closing = true;
	spin_unlock_bh(&c->lock);
	cancel_delayed_work_sync(&c->answer_work);
	/* After vmbus_close the callback cannot run any more. */
	vmbus_close(c->chan);
	bqg_trace_state(c, "Closed");
	spin_lock_bh(&c->lock);
	list_for_each_entry_safe(h, next, &c->held, node) {
		list_del(&h->node);
		list_add_tail(&h->node, &dropped);
	}
	spin_unlock_bh(&c->lock);
	list_for_each_entry_safe(h, next, &dropped, node) {
		list_del(&h->node);
		atomic64_dec(&c->counters.held);
		atomic64_inc(&c->counters.dropped_on_close);
		kfree(h);
	}
	/* Each Request still awaiting its reply ends here, in the order sent. */
	xa_for_each(&c->outstanding, tx, o) {
		struct vbt_event ev = {
			.kind = VBT_PKT_CANCEL, .ch = c->ch, .tx = tx,
			.dir = VBT_G2H, .status = BQG_STATUS_CANCELLED,
		};

		vgd_trace(&ev);
		xa_erase_bh(&c->outstanding, tx);
		kfree(o);
	}
}

static int bqg_probe(struct hv_device *hdev, const struct hv_vmbus_device_id *id)
{
	struct bqg_tx_mark *mark;
	struct bqg_channel *c;
	int ret;

	c = kzalloc(sizeof(*c), GFP_KERNEL);
	if (!c)
		return -ENOMEM;
	c->hdev = hdev;
	c->chan = hdev->channel;
	c->ch = vbt_channel_number(hdev->dev_instance.b);
	spin_lock_init(&c->lock);
	INIT_LIST_HEAD(&c->held);
	INIT_DELAYED_WORK(&c->answer_work, bqg_answer_work);
	xa_init_flags(&c->outstanding, XA_FLAGS_LOCK_BH);
	hv_set_drvdata(hdev, c);

	ret = bqg_open(c);
	if (ret) {
		dev_err(&hdev->device, "vmbus_open failed: %d\n", ret);
		hv_set_drvdata(hdev, NULL);
		kfree(c);
		return ret;
	}
	mutex_lock(&bqg_channels_lock);
	/* A re-offer goes on numbering where the removed device stopped. */
	mark = bqg_find_mark(c->ch);
	if (mark)
		c->next_tx = mark->next_tx;
	list_add_tail(&c->node, &bqg_channels);
	mutex_unlock(&bqg_channels_lock);
	dev_info(&hdev->device, "blockq channel %u open (%u ring pages)\n", c->ch, ring_pages);
	return 0;
}

/* Also the rescind path: the VMBus core removes the device when the host rescinds. */
static void bqg_teardown(struct hv_device *hdev)
{
	struct bqg_channel *c = hv_get_drvdata(hdev);
	struct bqg_tx_mark *mark;

	/* Unlinked first: control commands stop seeing it (and we wait for theirs). */
	mutex_lock(&bqg_channels_lock);
	list_del(&c->node);
	mutex_unlock(&bqg_channels_lock);
	bqg_close(c);
	mutex_lock(&bqg_channels_lock);
	mark = bqg_find_mark(c->ch);
	if (!mark) {
		mark = kzalloc(sizeof(*mark), GFP_KERNEL);
		if (mark) {
			mark->ch = c->ch;
			list_add_tail(&mark->node, &bqg_tx_marks);
		}
	}
	if (mark)
		mark->next_tx = c->next_tx;
	else
		dev_warn(&hdev->device, "channel %u: no memory to keep its tx\n", c->ch);
	mutex_unlock(&bqg_channels_lock);
	xa_destroy(&c->outstanding);
	hv_set_drvdata(hdev, NULL);
	kfree(c);
}

/* .remove returns int before 6.3 and void from 6.3 on. */
#if KERNEL_VERSION(6, 3, 0) <= LINUX_VERSION_CODE
static void bqg_remove(struct hv_device *hdev)
{
	bqg_teardown(hdev);
}
#else
static int bqg_remove(struct hv_device *hdev)
{
	bqg_teardown(hdev);
	return 0;
}
#endif

/* Hibernation of the guest: close the channel, and open it again on resume. */
static int bqg_suspend(struct hv_device *hdev)
{
	struct bqg_channel *c = hv_get_drvdata(hdev);

	mutex_lock(&bqg_channels_lock);
	bqg_close(c);
	mutex_unlock(&bqg_channels_lock);
	return 0;
}

static int bqg_resume(struct hv_device *hdev)
{
	struct bqg_channel *c = hv_get_drvdata(hdev);
	int ret;

	mutex_lock(&bqg_channels_lock);
	ret = bqg_open(c);
	mutex_unlock(&bqg_channels_lock);
	return ret;
}

static struct hv_driver bqg_driver = {
	.name = KBUILD_MODNAME,
	.id_table = bqg_id_table,
	.probe = bqg_probe,
	.remove = bqg_remove,
	.suspend = bqg_suspend,
	.resume = bqg_resume,
	.driver = {
		.probe_type = PROBE_PREFER_ASYNCHRONOUS,
	},
};

static int __init bqg_init(void)
{
	int ret;

	if (ring_pages == 0 || ring_pages > 1024)
		return -EINVAL;
	ret = bqg_ctl_init();
	if (ret)
		return ret;
	ret = vmbus_driver_register(&bqg_driver);
	if (ret)
		bqg_ctl_exit();
	return ret;
}

static void __exit bqg_exit(void)
{
	struct bqg_tx_mark *m, *next;

	vmbus_driver_unregister(&bqg_driver);
	list_for_each_entry_safe(m, next, &bqg_tx_marks, node) {
		list_del(&m->node);
		kfree(m);
	}
	bqg_ctl_exit();
}

module_init(bqg_init);
module_exit(bqg_exit);

MODULE_DESCRIPTION("blockq guest driver of the VMBus save/restore bench");
MODULE_LICENSE("GPL");
