/* SPDX-License-Identifier: MIT */
/*
 * The control interface of the Windows sample drivers, shared by the VSP, the
 * Windows guest driver and the user-mode tool (vsp/tool/sample-ctl.c).
 *
 * Both drivers take the same text commands as the Linux guest's debugfs
 * "control" file, one command per IOCTL_SAMPLE_COMMAND, so the bench has one
 * command language for all three (grammar in lab/drivers/README.md and
 * PROTOCOL.md, "Control interfaces"). Include after ntddk.h (drivers) or
 * windows.h (the tool): CTL_CODE comes from there.
 */
#ifndef SAMPLE_CONTROL_H
#define SAMPLE_CONTROL_H

/* Device names: \\.\VmbusSampleVsp on the host, \\.\VmbusSampleGuest in a guest. */
#define SAMPLE_VSP_DOS_NAME L"\\DosDevices\\VmbusSampleVsp"
#define SAMPLE_VSP_USER_PATH "\\\\.\\VmbusSampleVsp"
#define SAMPLE_GUEST_DOS_NAME L"\\DosDevices\\VmbusSampleGuest"
#define SAMPLE_GUEST_USER_PATH "\\\\.\\VmbusSampleGuest"

#define SAMPLE_IOCTL_DEVICE 0x8A5Eu

/* In: one command line (ASCII, no NUL needed). Out: nothing. */
#define IOCTL_SAMPLE_COMMAND \
	CTL_CODE(SAMPLE_IOCTL_DEVICE, 0x801, METHOD_BUFFERED, FILE_WRITE_ACCESS)
/* Out: the counters as text, one "key=value ..." line per channel. */
#define IOCTL_SAMPLE_COUNTERS \
	CTL_CODE(SAMPLE_IOCTL_DEVICE, 0x802, METHOD_BUFFERED, FILE_READ_ACCESS)
/* In: a struct sample_trace_read. Out: trace bytes from that offset (guest only; the
 * VSP traces through ETW and answers STATUS_NOT_SUPPORTED).
 */
#define IOCTL_SAMPLE_READ_TRACE \
	CTL_CODE(SAMPLE_IOCTL_DEVICE, 0x803, METHOD_BUFFERED, FILE_READ_ACCESS)

/*
 * The VSP's part of a VM's saved state for one channel, so it can travel with the
 * VM: to another host (a migration) or into a checkpoint applied later. On Hyper-V
 * the VM's worker process would carry these bytes in the VM's saved state; no public
 * route for a third-party VSP is known (README: the VMBus handle), so this is the
 * bench's own route, used on the emulator.
 * EXPORT: in a struct sample_vsp_state_ref; out a struct sample_vsp_state and
 * blob_bytes of the saved stream after it (after `save ch=N`; size it with the
 * counters' save_blob_bytes). IMPORT: in exactly what EXPORT gave; the channel's
 * saved state becomes it, and a channel the VSP does not have is created without an
 * offer, ready for `restore ch=N`. The VSP refuses an import over a live channel
 * object (detach or discard it first) and a record it did not write.
 */
#define IOCTL_SAMPLE_VSP_EXPORT \
	CTL_CODE(SAMPLE_IOCTL_DEVICE, 0x804, METHOD_BUFFERED, FILE_READ_ACCESS)
#define IOCTL_SAMPLE_VSP_IMPORT \
	CTL_CODE(SAMPLE_IOCTL_DEVICE, 0x805, METHOD_BUFFERED, FILE_WRITE_ACCESS)

#define SAMPLE_VSP_STATE_MAGIC 0x53505356u	/* "VSPS" little-endian */
#define SAMPLE_VSP_STATE_VERSION 1u

struct sample_vsp_state_ref {
	unsigned int ch;
};

struct sample_vsp_state {
	unsigned int magic;		/* SAMPLE_VSP_STATE_MAGIC */
	unsigned int version;		/* SAMPLE_VSP_STATE_VERSION */
	unsigned int ch;		/* the trace's channel number */
	unsigned int ring_pages;	/* the guest's ring pages (open's ring-pages=) */
	unsigned long long next_tx;	/* the last host-to-guest tx the VSP numbered */
	unsigned char instance[16];	/* the interface instance GUID, memory layout */
	unsigned int loopback;		/* 1: a loopback offer; 0: attached by a VMBus handle */
	unsigned int blob_bytes;	/* the saved segments that follow */
};

#define SAMPLE_COMMAND_MAX 256u

struct sample_trace_read {
	unsigned long long offset;	/* byte offset into the trace, from 0 */
};

/* The VSP's TraceLogging provider: "VmbusBench.SampleVsp",
 * {dd84f5b2-2614-4623-b28a-6b85d3a4202c}. The tool filters on this GUID.
 */
#define SAMPLE_VSP_PROVIDER_NAME "VmbusBench.SampleVsp"
#define SAMPLE_VSP_PROVIDER_GUID_FIELDS \
	0xdd84f5b2, 0x2614, 0x4623, \
	0xb2, 0x8a, 0x6b, 0x85, 0xd3, 0xa4, 0x20, 0x2c

#endif /* SAMPLE_CONTROL_H */
