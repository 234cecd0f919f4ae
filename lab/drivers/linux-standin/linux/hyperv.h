/* SPDX-License-Identifier: GPL-2.0 */
/*
 * STAND-IN for <linux/hyperv.h>: the VMBus driver API the sample guest driver uses
 * (device, driver registration, open/close, send, the incoming-packet iterator). NOT
 * the kernel's header; see ../README.md. The shim implements the functions over the
 * emulator's rings (src/devices/wasm/linux-shim.ts).
 */
#ifndef LINUX_STANDIN_HYPERV_H
#define LINUX_STANDIN_HYPERV_H

#include <linux/standin.h>

typedef struct {
	u8 b[16];
} guid_t;
#define GUID_INIT(a, b, c, d0, d1, d2, d3, d4, d5, d6, d7)                         \
	((guid_t){ { (a) & 0xff, ((a) >> 8) & 0xff, ((a) >> 16) & 0xff, ((a) >> 24) & 0xff, \
		     (b) & 0xff, ((b) >> 8) & 0xff, (c) & 0xff, ((c) >> 8) & 0xff,       \
		     (d0), (d1), (d2), (d3), (d4), (d5), (d6), (d7) } })

struct device {
	void *driver_data;
};
#define dev_info(dev, ...) ((void)(dev), _printk(__VA_ARGS__))
#define dev_err(dev, ...) ((void)(dev), _printk(__VA_ARGS__))
#define dev_warn(dev, ...) ((void)(dev), _printk(__VA_ARGS__))

struct device_driver {
	int probe_type;
};
#define PROBE_PREFER_ASYNCHRONOUS 1

/* The incoming ring's packet descriptor, as in the ring (vmbus-ring-format.md). */
struct vmpacket_descriptor {
	u16 type;
	u16 offset8;
	u16 len8;
	u16 flags;
	u64 trans_id;
};
#define VM_PKT_DATA_INBAND 6
#define VM_PKT_COMP 11
#define VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED 1

struct vmbus_channel {
	u32 max_pkt_size;
	u32 shim_id;
};

struct hv_device {
	guid_t dev_type;
	guid_t dev_instance;
	struct device device;
	struct vmbus_channel *channel;
};

struct hv_vmbus_device_id {
	guid_t guid;
	unsigned long driver_data;
};

struct hv_driver {
	const char *name;
	const struct hv_vmbus_device_id *id_table;
	int (*probe)(struct hv_device *, const struct hv_vmbus_device_id *);
	int (*remove)(struct hv_device *); /* void from 6.3 on; the stand-in is 6.1 */
	int (*suspend)(struct hv_device *);
	int (*resume)(struct hv_device *);
	struct device_driver driver;
};

static inline void *hv_get_drvdata(struct hv_device *dev) { return dev->device.driver_data; }
static inline void hv_set_drvdata(struct hv_device *dev, void *data) { dev->device.driver_data = data; }

/* Ring size for a payload: one control page in front of the data pages. */
#define VMBUS_RING_SIZE(payload_sz) (4096u + (payload_sz))

int __must_check __vmbus_driver_register(struct hv_driver *drv, struct module *owner,
					 const char *mod_name);
#define vmbus_driver_register(driver) __vmbus_driver_register(driver, THIS_MODULE, KBUILD_MODNAME)
void vmbus_driver_unregister(struct hv_driver *drv);

int vmbus_open(struct vmbus_channel *channel, u32 send_ringbuffersize, u32 recv_ringbuffersize,
	       void *userdata, u32 userdatalen, void (*onchannel_callback)(void *context),
	       void *context);
void vmbus_close(struct vmbus_channel *channel);
int vmbus_sendpacket(struct vmbus_channel *channel, void *buffer, u32 bufferLen, u64 requestid,
		     u32 type, u32 flags);

/*
 * The iterator reads one packet at a time out of the ring into a buffer the shim
 * owns; the next call (or the end) moves the ring's read index past it.
 */
struct vmpacket_descriptor *hv_pkt_iter_first(struct vmbus_channel *channel);
struct vmpacket_descriptor *hv_pkt_iter_next(struct vmbus_channel *channel,
					     const struct vmpacket_descriptor *pkt);
#define foreach_vmbus_pkt(pkt, channel) \
	for (pkt = hv_pkt_iter_first(channel); pkt; pkt = hv_pkt_iter_next(channel, pkt))
static inline void *hv_pkt_data(const struct vmpacket_descriptor *desc)
{
	return (void *)((unsigned long)desc + (desc->offset8 << 3));
}
static inline u32 hv_pkt_datalen(const struct vmpacket_descriptor *desc)
{
	return (desc->len8 << 3) - (desc->offset8 << 3);
}

#endif /* LINUX_STANDIN_HYPERV_H */
