// SPDX-License-Identifier: GPL-2.0
/*
 * Control interface and trace of blockq's guest driver, in debugfs:
 *
 *   /sys/kernel/debug/vmbus_blockq_guest/control   write one command per write
 *   /sys/kernel/debug/vmbus_blockq_guest/trace     read: the JSON Lines trace
 *   /sys/kernel/debug/vmbus_blockq_guest/counters  read: trace_seq, then one line per channel
 *
 * The commands are blockq's command language (../blockq-command.h): request, note,
 * answer and trace-clear; the VSP's verbs are refused (-EOPNOTSUPP). The trace is one
 * module-wide buffer of the bench's trace library (lab/drivers/trace-lib), so it
 * survives a rescind and re-offer of a channel; seq numbers are assigned under the
 * buffer's lock, so they increase strictly in the order lines are stored. A full
 * buffer counts further lines as dropped, and the counters file says so: a trace
 * with holes must not look complete.
 */
#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>

#define VBT_WITH_LINUX

#include "bq_guest.h"
#include "blockq-command.h"

static unsigned int trace_kib = 4096;
module_param(trace_kib, uint, 0444);
MODULE_PARM_DESC(trace_kib, "Size of the trace buffer in KiB (default 4096)");

#define BQG_CMD_MAX 256
#define BQG_COUNTERS_MAX 8192

static struct dentry *bqg_debugfs;

/* The trace library keeps the lines; this lock serialises every call on the buffer. */
static DEFINE_SPINLOCK(bqg_trace_lock);
static struct vbt_buffer bqg_trace_buf;

void bqg_trace(struct vbt_event *ev)
{
	vbt_linux_write(&bqg_trace_buf, &bqg_trace_lock, ev);
}

void bqg_trace_state(struct bqg_channel *c, const char *state)
{
	struct vbt_event ev = {
		.kind = VBT_CH_STATE, .ch = c->ch, .state = state,
	};

	bqg_trace(&ev);
}

static ssize_t bqg_trace_read(struct file *file, char __user *ubuf, size_t count,
			      loff_t *ppos)
{
	return vbt_debugfs_read(&bqg_trace_buf, &bqg_trace_lock, ubuf, count, ppos);
}

static void bqg_trace_clear(void)
{
	unsigned long flags;

	/* seq keeps counting: two reads around a clear still never repeat one. */
	spin_lock_irqsave(&bqg_trace_lock, flags);
	vbt_buffer_clear(&bqg_trace_buf);
	spin_unlock_irqrestore(&bqg_trace_lock, flags);
}

static ssize_t bqg_counters_read(struct file *file, char __user *ubuf, size_t count,
				 loff_t *ppos)
{
	unsigned long flags;
	u64 dropped, lines;
	ssize_t ret;
	char *buf;
	int n;

	buf = kzalloc(BQG_COUNTERS_MAX, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	spin_lock_irqsave(&bqg_trace_lock, flags);
	dropped = bqg_trace_buf.dropped;
	lines = bqg_trace_buf.seq;
	spin_unlock_irqrestore(&bqg_trace_lock, flags);
	n = scnprintf(buf, BQG_COUNTERS_MAX, "trace_seq=%llu trace_dropped=%llu\n",
		      lines, dropped);
	n += bqg_print_counters(buf + n, BQG_COUNTERS_MAX - n);
	ret = simple_read_from_buffer(ubuf, count, ppos, buf, n);
	kfree(buf);
	return ret;
}

/* The guest's verbs of blockq's command language (../blockq-command.h). */
static int bqg_run_command(const char *line, size_t len)
{
	struct bq_command cmd;
	long ch;

	if (bq_parse_command(line, len, &cmd))
		return -EINVAL;
	ch = cmd.has_ch ? (long)cmd.ch : -1;
	switch (cmd.verb) {
	case BQ_CMD_REQUEST:
		return bqg_send_requests(cmd.count, cmd.length, cmd.mode, cmd.hold_ms, ch);
	case BQ_CMD_NOTE:
		return bqg_send_notes(cmd.count, cmd.length, ch);
	case BQ_CMD_ANSWER:
		bqg_answer_now(ch);
		return 0;
	case BQ_CMD_TRACE_CLEAR:
		bqg_trace_clear();
		return 0;
	default:
		return -EOPNOTSUPP; /* open, event, save, ... belong to the VSP */
	}
}

static ssize_t bqg_control_write(struct file *file, const char __user *ubuf,
				 size_t count, loff_t *ppos)
{
	char line[BQG_CMD_MAX];
	int ret;

	if (count == 0 || count >= sizeof(line))
		return -EINVAL;
	if (copy_from_user(line, ubuf, count))
		return -EFAULT;
	line[count] = '\0';
	ret = bqg_run_command(line, count);
	return ret ? ret : count;
}

static const struct file_operations bqg_trace_fops = {
	.owner = THIS_MODULE,
	.read = bqg_trace_read,
	.llseek = default_llseek,
};

static const struct file_operations bqg_counters_fops = {
	.owner = THIS_MODULE,
	.read = bqg_counters_read,
	.llseek = default_llseek,
};

static const struct file_operations bqg_control_fops = {
	.owner = THIS_MODULE,
	.write = bqg_control_write,
	.llseek = noop_llseek,
};

int bqg_ctl_init(void)
{
	char *buf;

	if (trace_kib == 0 || trace_kib > 1024 * 1024)
		return -EINVAL;
	buf = vmalloc((size_t)trace_kib * 1024);
	if (!buf)
		return -ENOMEM;
	vbt_buffer_init(&bqg_trace_buf, buf, trace_kib * 1024, "hyperv", "guest");
	bqg_debugfs = debugfs_create_dir(KBUILD_MODNAME, NULL);
	debugfs_create_file("control", 0200, bqg_debugfs, NULL, &bqg_control_fops);
	debugfs_create_file("trace", 0400, bqg_debugfs, NULL, &bqg_trace_fops);
	debugfs_create_file("counters", 0400, bqg_debugfs, NULL, &bqg_counters_fops);
	return 0;
}

void bqg_ctl_exit(void)
{
	unsigned long flags;
	char *buf;

	debugfs_remove_recursive(bqg_debugfs);
	spin_lock_irqsave(&bqg_trace_lock, flags);
	buf = bqg_trace_buf.data;
	vbt_buffer_init(&bqg_trace_buf, NULL, 0, "hyperv", "guest");
	spin_unlock_irqrestore(&bqg_trace_lock, flags);
	vfree(buf);
}
