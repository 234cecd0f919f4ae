// SPDX-License-Identifier: GPL-2.0
/*
 * Sample guest driver for the bench's sample VMBus device: the guest role of
 * lab/drivers/PROTOCOL.md on Linux. This file: the module and the channels'
 * lifetime; their traffic is in sample_guest_io.c.
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
 * requests, each ended with pkt.cancel), and probe starts from nothing but the
 * channel's tx counter, which goes on across the re-offer (PROTOCOL.md
 * "Rescind and re-offer": no id of the old instance is used on the new one).
 * The trace buffer is module-wide, so one trace covers both incarnations of
 * the channel.
 *
 * Locking: sg_channels_lock (a mutex) guards the list of channels and
 * serialises the control commands that send. Each channel's spinlock guards
 * its held list and the closing flag and, because sends and their trace lines
 * happen under it, keeps pkt.send ahead of its pkt.completion in the trace.
 * The channel callback runs in softirq context, hence the _bh variants in
 * process context.
 */
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/version.h>

#include "sample_guest.h"

static unsigned int ring_pages = SP_DEFAULT_RING_PAGES;
module_param(ring_pages, uint, 0444);
MODULE_PARM_DESC(ring_pages, "Ring size per direction in 4 KiB data pages (default 4)");

/* Room for the VMBus packet descriptor in front of the largest message. */
#define SG_PKT_OVERHEAD 64

/* Every open channel, under sg_channels_lock. */
LIST_HEAD(sg_channels);
/* Guards sg_channels and serialises the control commands that send. */
DEFINE_MUTEX(sg_channels_lock);

/* The last tx of each channel number whose device went away, under sg_channels_lock. */
struct sg_tx_mark {
	struct list_head node;
	u32 ch;
	u64 next_tx;
};

static LIST_HEAD(sg_tx_marks);

static struct sg_tx_mark *sg_find_mark(u32 ch)
{
	struct sg_tx_mark *m;

	list_for_each_entry(m, &sg_tx_marks, node)
		if (m->ch == ch)
			return m;
	return NULL;
}

static const struct hv_vmbus_device_id sg_id_table[] = {
	{ .guid = SP_APPLY(GUID_INIT, SP_INTERFACE_TYPE_GUID_FIELDS) },
	{ },
};
MODULE_DEVICE_TABLE(vmbus, sg_id_table);

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
	/*
	 * Linux delivers as soon as the channel is open: Active at once. No
	 * Started: that is a KMCL callback, and the trace schema's Linux-style
	 * guest goes Opened -> Active (a Started here is a state-order divergence).
	 */
	sg_trace_state(sgc, "Opened");
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
	sg_trace_state(sgc, "Closed");
	/* Each Request still awaiting its completion ends here, in the order sent. */
	xa_for_each(&sgc->outstanding, tx, o) {
		struct vbt_event ev = {
			.kind = VBT_PKT_CANCEL, .ch = sgc->ch, .tx = tx,
			.dir = VBT_G2H, .status = SP_STATUS_CANCELLED,
		};

		vgd_trace(&ev);
		xa_erase_bh(&sgc->outstanding, tx);
		kfree(o);
	}
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
	sgc->ch = vbt_channel_number(hdev->dev_instance.b);
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
	/* A re-offer goes on numbering where the removed device stopped. */
	if (sg_find_mark(sgc->ch))
		sgc->next_tx = sg_find_mark(sgc->ch)->next_tx;
	list_add_tail(&sgc->node, &sg_channels);
	mutex_unlock(&sg_channels_lock);
	dev_info(&hdev->device, "sample channel %u open (%u ring pages)\n", sgc->ch, ring_pages);
	return 0;
}

/* Also the rescind path: the VMBus core removes the device when the host rescinds. */
static void sg_teardown(struct hv_device *hdev)
{
	struct sg_channel *sgc = hv_get_drvdata(hdev);
	struct sg_tx_mark *mark;

	/* Unlinked first: control commands stop seeing it (and we wait for theirs). */
	mutex_lock(&sg_channels_lock);
	list_del(&sgc->node);
	mutex_unlock(&sg_channels_lock);
	sg_close(sgc);
	mutex_lock(&sg_channels_lock);
	mark = sg_find_mark(sgc->ch);
	if (!mark) {
		mark = kzalloc(sizeof(*mark), GFP_KERNEL);
		if (mark) {
			mark->ch = sgc->ch;
			list_add_tail(&mark->node, &sg_tx_marks);
		}
	}
	if (mark)
		mark->next_tx = sgc->next_tx;
	else
		dev_warn(&hdev->device, "channel %u: no memory to keep its tx\n", sgc->ch);
	mutex_unlock(&sg_channels_lock);
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
	struct sg_tx_mark *m, *next;

	vmbus_driver_unregister(&sg_driver);
	list_for_each_entry_safe(m, next, &sg_tx_marks, node) {
		list_del(&m->node);
		kfree(m);
	}
	sg_ctl_exit();
}

module_init(sg_init);
module_exit(sg_exit);

MODULE_DESCRIPTION("Sample guest driver of the VMBus save/restore bench");
MODULE_LICENSE("GPL");
