/* SPDX-License-Identifier: MIT */
/*
 * The blockq VSP's control interface (\\.\BlockqVsp): four IOCTLs and a text command
 * language of its own (grammar in blockq-command.h, README.md beside this file).
 * The bench drives the VSP only through these, on the emulator as a lab job would on a
 * host. Include after ntddk.h (CTL_CODE comes from there).
 */
#ifndef BLOCKQ_CONTROL_H
#define BLOCKQ_CONTROL_H

#define BLOCKQ_VSP_DOS_NAME L"\\DosDevices\\BlockqVsp"
#define BLOCKQ_VSP_USER_PATH "\\\\.\\BlockqVsp"

#define BLOCKQ_IOCTL_DEVICE 0x8B51u

/* In: one command line (ASCII, no NUL needed). Out: nothing. */
#define IOCTL_BLOCKQ_COMMAND \
	CTL_CODE(BLOCKQ_IOCTL_DEVICE, 0x801, METHOD_BUFFERED, FILE_WRITE_ACCESS)
/* Out: "trace_seq=N" then one "key=value ..." line per channel. */
#define IOCTL_BLOCKQ_COUNTERS \
	CTL_CODE(BLOCKQ_IOCTL_DEVICE, 0x802, METHOD_BUFFERED, FILE_READ_ACCESS)
/*
 * A channel's saved state leaving with its VM and coming back (a migration, a
 * checkpoint): EXPORT, in a struct blockq_state_ref, out a struct blockq_state and
 * blob_bytes of saved stream after it (after `save ch=N`); IMPORT, in exactly what
 * EXPORT gave. The same route the sample VSP takes, for the same reason: no public
 * way is known for a third-party VSP to put bytes into a VM's saved state.
 */
#define IOCTL_BLOCKQ_EXPORT \
	CTL_CODE(BLOCKQ_IOCTL_DEVICE, 0x804, METHOD_BUFFERED, FILE_READ_ACCESS)
#define IOCTL_BLOCKQ_IMPORT \
	CTL_CODE(BLOCKQ_IOCTL_DEVICE, 0x805, METHOD_BUFFERED, FILE_WRITE_ACCESS)

#define BLOCKQ_STATE_MAGIC 0x53514B42u	/* "BKQS" little-endian */
#define BLOCKQ_STATE_VERSION 2u	/* 2: `loopback` where 1 had a reserved 0 */
#define BLOCKQ_COMMAND_MAX 256u

struct blockq_state_ref {
	unsigned int ch;
};

struct blockq_state {
	unsigned int magic;		/* BLOCKQ_STATE_MAGIC */
	unsigned int version;		/* BLOCKQ_STATE_VERSION */
	unsigned int ch;
	unsigned int ring_pages;	/* the guest's incoming ring, for the queue estimate */
	unsigned long long next_tx;	/* the last host-to-guest tx the VSP numbered */
	unsigned char instance[16];	/* the interface instance GUID, memory layout */
	unsigned int blob_bytes;	/* the saved segments that follow */
	unsigned int loopback;		/* 1: a loopback offer; 0: into a VM by its handle */
};

/* The VSP's TraceLogging provider, "VmbusBench.BlockqVsp". */
#define BLOCKQ_VSP_PROVIDER_NAME "VmbusBench.BlockqVsp"
#define BLOCKQ_VSP_PROVIDER_GUID_FIELDS \
	0x6c1f2d0e, 0x8b3a, 0x4f57, \
	0x9e, 0x21, 0x5a, 0x7c, 0x40, 0xd2, 0x13, 0xb8

#endif /* BLOCKQ_CONTROL_H */
