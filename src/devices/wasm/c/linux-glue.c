// SPDX-License-Identifier: GPL-2.0
/*
 * The kernel shim's C part for the Linux guest driver compiled to wasm32
 * (src/devices/wasm/build.ts): the kernel data the driver reads (jiffies, system_wq),
 * and the calls the VMBus core and the VFS would make into the driver (probe, remove,
 * a debugfs file's read and write), so the TypeScript side never depends on the
 * layout of struct hv_driver or struct file_operations. Not a driver source.
 */
#include <linux/hyperv.h>
#include <linux/fs.h>

volatile unsigned long jiffies;
struct workqueue_struct *system_wq = (struct workqueue_struct *)0x10;

#define EXPORT(name) __attribute__((export_name(#name)))

EXPORT(shim_jiffies) volatile unsigned long *shim_jiffies(void)
{
	return &jiffies;
}

/* The VMBus core found an offer the driver's id table matches: probe it. */
EXPORT(shim_linux_probe) struct hv_device *shim_linux_probe(struct hv_driver *drv,
							      const u8 *instance, u32 channel_id,
							      int *result)
{
	struct hv_device *hdev = kzalloc(sizeof(*hdev), GFP_KERNEL);
	struct vmbus_channel *chan = kzalloc(sizeof(*chan), GFP_KERNEL);

	if (!hdev || !chan) {
		kfree(hdev);
		kfree(chan);
		*result = -ENOMEM;
		return NULL;
	}
	hdev->dev_type = drv->id_table[0].guid;
	memcpy(hdev->dev_instance.b, instance, 16);
	chan->shim_id = channel_id;
	chan->max_pkt_size = 4096;
	hdev->channel = chan;
	*result = drv->probe(hdev, &drv->id_table[0]);
	if (*result) {
		kfree(chan);
		kfree(hdev);
		return NULL;
	}
	return hdev;
}

/* The device goes away (rescind, unload): remove, then the core frees its objects. */
EXPORT(shim_linux_remove) int shim_linux_remove(struct hv_driver *drv, struct hv_device *hdev)
{
	int ret = drv->remove(hdev);

	kfree(hdev->channel);
	kfree(hdev);
	return ret;
}

EXPORT(shim_linux_channel_of) u32 shim_linux_channel_of(struct vmbus_channel *chan)
{
	return chan->shim_id;
}

EXPORT(shim_fops_write) ssize_t shim_fops_write(const struct file_operations *f,
						const char *buf, size_t n)
{
	loff_t pos = 0;

	return f->write ? f->write(NULL, buf, n, &pos) : -EINVAL;
}

EXPORT(shim_fops_read) ssize_t shim_fops_read(const struct file_operations *f, char *buf,
					      size_t n, loff_t *pos)
{
	return f->read ? f->read(NULL, buf, n, pos) : -EINVAL;
}
