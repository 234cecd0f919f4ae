// SPDX-License-Identifier: GPL-2.0
/*
 * The debugfs control, trace and counters files of a bench guest driver
 * (guest-debugfs.h says what each holds).
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

#include "guest-debugfs.h"

static unsigned int trace_kib = 4096;
module_param(trace_kib, uint, 0444);
MODULE_PARM_DESC(trace_kib, "Size of the trace buffer in KiB (default 4096)");

#define VGD_CMD_MAX 256
#define VGD_COUNTERS_MAX 8192

static const struct vgd_driver *vgd_drv;
static struct dentry *vgd_dir;

/* The trace library keeps the lines; this lock serialises every call on the buffer. */
static DEFINE_SPINLOCK(vgd_trace_lock);
static struct vbt_buffer vgd_trace_buf;

void vgd_trace(struct vbt_event *ev)
{
	vbt_linux_write(&vgd_trace_buf, &vgd_trace_lock, ev);
}

void vgd_trace_clear(void)
{
	unsigned long flags;

	/* seq keeps counting: two reads around a clear still never repeat one. */
	spin_lock_irqsave(&vgd_trace_lock, flags);
	vbt_buffer_clear(&vgd_trace_buf);
	spin_unlock_irqrestore(&vgd_trace_lock, flags);
}

static ssize_t vgd_trace_read(struct file *file, char __user *ubuf, size_t count,
			      loff_t *ppos)
{
	return vbt_debugfs_read(&vgd_trace_buf, &vgd_trace_lock, ubuf, count, ppos);
}

static ssize_t vgd_counters_read(struct file *file, char __user *ubuf, size_t count,
				 loff_t *ppos)
{
	unsigned long flags;
	u64 dropped, lines;
	ssize_t ret;
	char *buf;
	int n;

	buf = kzalloc(VGD_COUNTERS_MAX, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	spin_lock_irqsave(&vgd_trace_lock, flags);
	dropped = vgd_trace_buf.dropped;
	lines = vgd_trace_buf.seq;
	spin_unlock_irqrestore(&vgd_trace_lock, flags);
	n = scnprintf(buf, VGD_COUNTERS_MAX, "trace_seq=%llu trace_dropped=%llu\n",
		      lines, dropped);
	n += vgd_drv->print_counters(buf + n, VGD_COUNTERS_MAX - n);
	ret = simple_read_from_buffer(ubuf, count, ppos, buf, n);
	kfree(buf);
	return ret;
}

static ssize_t vgd_control_write(struct file *file, const char __user *ubuf,
				 size_t count, loff_t *ppos)
{
	char line[VGD_CMD_MAX];
	int ret;

	if (count == 0 || count >= sizeof(line))
		return -EINVAL;
	if (copy_from_user(line, ubuf, count))
		return -EFAULT;
	line[count] = '\0';
	ret = vgd_drv->run_command(line, count);
	return ret ? ret : count;
}

static const struct file_operations vgd_trace_fops = {
	.owner = THIS_MODULE,
	.read = vgd_trace_read,
	.llseek = default_llseek,
};

static const struct file_operations vgd_counters_fops = {
	.owner = THIS_MODULE,
	.read = vgd_counters_read,
	.llseek = default_llseek,
};

static const struct file_operations vgd_control_fops = {
	.owner = THIS_MODULE,
	.write = vgd_control_write,
	.llseek = noop_llseek,
};

int vgd_init(const struct vgd_driver *drv)
{
	char *buf;

	if (trace_kib == 0 || trace_kib > 1024 * 1024)
		return -EINVAL;
	buf = vmalloc((size_t)trace_kib * 1024);
	if (!buf)
		return -ENOMEM;
	vgd_drv = drv;
	vbt_buffer_init(&vgd_trace_buf, buf, trace_kib * 1024, "hyperv", "guest");
	vgd_dir = debugfs_create_dir(KBUILD_MODNAME, NULL);
	debugfs_create_file("control", 0200, vgd_dir, NULL, &vgd_control_fops);
	debugfs_create_file("trace", 0400, vgd_dir, NULL, &vgd_trace_fops);
	debugfs_create_file("counters", 0400, vgd_dir, NULL, &vgd_counters_fops);
	return 0;
}

void vgd_exit(void)
{
	unsigned long flags;
	char *buf;

	debugfs_remove_recursive(vgd_dir);
	spin_lock_irqsave(&vgd_trace_lock, flags);
	buf = vgd_trace_buf.data;
	vbt_buffer_init(&vgd_trace_buf, NULL, 0, "hyperv", "guest");
	spin_unlock_irqrestore(&vgd_trace_lock, flags);
	vfree(buf);
}
