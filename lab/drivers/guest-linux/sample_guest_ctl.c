// SPDX-License-Identifier: GPL-2.0
/*
 * Control interface and trace of the sample guest driver, in debugfs:
 *
 *   /sys/kernel/debug/vmbus_sample_guest/control   write one command per write
 *   /sys/kernel/debug/vmbus_sample_guest/trace     read: the JSON Lines trace
 *   /sys/kernel/debug/vmbus_sample_guest/counters  read: one line per channel
 *
 * The bench drives it over SSH (lab/drivers/README.md lists the commands). The
 * trace is kept in one module-wide buffer, so it survives a rescind and
 * re-offer of the channel; seq numbers are assigned under the buffer's lock,
 * so they increase strictly in the order the lines are stored. When the
 * buffer is full, further lines are counted as dropped rather than written,
 * and the counters file says so: a trace with holes must not look complete.
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

#include "sample_guest.h"
#include "sample-command.h"

static unsigned int trace_kib = 4096;
module_param(trace_kib, uint, 0444);
MODULE_PARM_DESC(trace_kib, "Size of the trace buffer in KiB (default 4096)");

#define SG_CMD_MAX 256
#define SG_COUNTERS_MAX 8192

static struct dentry *sg_debugfs;

/* The trace library (trace-lib/vmbus_bench_trace.h) keeps the lines; this
 * lock serialises every call on the buffer.
 */
static DEFINE_SPINLOCK(sg_trace_lock);
static struct vbt_buffer sg_trace_buf;

void sg_trace(struct vbt_event *ev)
{
	vbt_linux_write(&sg_trace_buf, &sg_trace_lock, ev);
}

static ssize_t sg_trace_read(struct file *file, char __user *ubuf, size_t count,
			     loff_t *ppos)
{
	return vbt_debugfs_read(&sg_trace_buf, &sg_trace_lock, ubuf, count, ppos);
}

void sg_trace_state(struct sg_channel *sgc, const char *state)
{
	struct vbt_event ev = {
		.kind = VBT_CH_STATE, .ch = sgc->ch, .state = state,
	};

	sg_trace(&ev);
}

static void sg_trace_clear(void)
{
	unsigned long flags;

	/* seq keeps counting: two reads around a clear still never repeat one. */
	spin_lock_irqsave(&sg_trace_lock, flags);
	vbt_buffer_clear(&sg_trace_buf);
	spin_unlock_irqrestore(&sg_trace_lock, flags);
}

static ssize_t sg_counters_read(struct file *file, char __user *ubuf, size_t count,
				loff_t *ppos)
{
	unsigned long flags;
	u64 dropped, lines;
	ssize_t ret;
	char *buf;
	int n;

	buf = kzalloc(SG_COUNTERS_MAX, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	spin_lock_irqsave(&sg_trace_lock, flags);
	dropped = sg_trace_buf.dropped;
	lines = sg_trace_buf.seq;
	spin_unlock_irqrestore(&sg_trace_lock, flags);
	n = scnprintf(buf, SG_COUNTERS_MAX, "trace_seq=%llu trace_dropped=%llu\n",
		      lines, dropped);
	n += sg_print_counters(buf + n, SG_COUNTERS_MAX - n);
	ret = simple_read_from_buffer(ubuf, count, ppos, buf, n);
	kfree(buf);
	return ret;
}

/* The guest subset of the drivers' command language (common/sample-command.h). */
static int sg_run_command(const char *line, size_t len)
{
	struct sample_command cmd;
	long ch;

	if (sample_parse_command(line, len, &cmd))
		return -EINVAL;
	ch = cmd.has_ch ? (long)cmd.ch : -1;
	switch (cmd.verb) {
	case SAMPLE_CMD_SEND:
		return sg_send_requests(cmd.count, cmd.length, cmd.mode, cmd.hold_ms, ch);
	case SAMPLE_CMD_NOTIFY:
		return sg_send_notifies(cmd.count, cmd.length, ch);
	case SAMPLE_CMD_HOLD:
		sg_set_hold_override(cmd.hold_auto ? -1 : (long)cmd.hold_ms);
		return 0;
	case SAMPLE_CMD_RELEASE:
		sg_release_held(ch);
		return 0;
	case SAMPLE_CMD_TRACE_CLEAR:
		sg_trace_clear();
		return 0;
	default:
		return -EOPNOTSUPP; /* open, transact, save, ... belong to the VSP */
	}
}

static ssize_t sg_control_write(struct file *file, const char __user *ubuf,
				size_t count, loff_t *ppos)
{
	char line[SG_CMD_MAX];
	int ret;

	if (count == 0 || count >= sizeof(line))
		return -EINVAL;
	if (copy_from_user(line, ubuf, count))
		return -EFAULT;
	line[count] = '\0';
	ret = sg_run_command(line, count);
	return ret ? ret : count;
}

static const struct file_operations sg_trace_fops = {
	.owner = THIS_MODULE,
	.read = sg_trace_read,
	.llseek = default_llseek,
};

static const struct file_operations sg_counters_fops = {
	.owner = THIS_MODULE,
	.read = sg_counters_read,
	.llseek = default_llseek,
};

static const struct file_operations sg_control_fops = {
	.owner = THIS_MODULE,
	.write = sg_control_write,
	.llseek = noop_llseek,
};

int sg_ctl_init(void)
{
	char *buf;

	if (trace_kib == 0 || trace_kib > 1024 * 1024)
		return -EINVAL;
	buf = vmalloc((size_t)trace_kib * 1024);
	if (!buf)
		return -ENOMEM;
	vbt_buffer_init(&sg_trace_buf, buf, trace_kib * 1024, "hyperv", "guest");
	sg_debugfs = debugfs_create_dir(KBUILD_MODNAME, NULL);
	debugfs_create_file("control", 0200, sg_debugfs, NULL, &sg_control_fops);
	debugfs_create_file("trace", 0400, sg_debugfs, NULL, &sg_trace_fops);
	debugfs_create_file("counters", 0400, sg_debugfs, NULL, &sg_counters_fops);
	return 0;
}

void sg_ctl_exit(void)
{
	char *buf;
	unsigned long flags;

	debugfs_remove_recursive(sg_debugfs);
	spin_lock_irqsave(&sg_trace_lock, flags);
	buf = sg_trace_buf.data;
	vbt_buffer_init(&sg_trace_buf, NULL, 0, "hyperv", "guest");
	spin_unlock_irqrestore(&sg_trace_lock, flags);
	vfree(buf);
}
