/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The debugfs plumbing every Linux guest driver of the bench has: a module-wide
 * trace buffer (the bench's trace library) and three files in
 * /sys/kernel/debug/<module name>/:
 *
 *   control   write: one command per write, run by the driver's run_command
 *   trace     read: the JSON Lines trace
 *   counters  read: "trace_seq=N trace_dropped=N", then the driver's own lines
 *
 * The command language and the counters are the driver's; the files, the buffer
 * and its lock are this helper's. The trace is module-wide, so it survives a
 * rescind and re-offer of a channel; seq numbers are assigned under the
 * buffer's lock, so they increase strictly in the order lines are stored. A
 * full buffer counts further lines as dropped, and the counters file says so:
 * a trace with holes must not look complete.
 *
 * Each module compiles its own copy (a one-line wrapper .c in Kbuild), so the
 * state below is per module.
 */
#ifndef VMBUS_BENCH_GUEST_DEBUGFS_H
#define VMBUS_BENCH_GUEST_DEBUGFS_H

#include <linux/kernel.h>

#include "../trace-lib/vmbus_bench_trace.h"

/* What the driver gives the files. */
struct vgd_driver {
	/* One control write (NUL-terminated, len bytes): 0 or a -errno. */
	int (*run_command)(const char *line, size_t len);
	/* The driver's counter lines into buf: the bytes written. */
	int (*print_counters)(char *buf, size_t size);
};

/* Allocates the trace buffer (module parameter trace_kib) and makes the files. */
int vgd_init(const struct vgd_driver *drv);
/* Removes the files, then frees the buffer; later traces are dropped. */
void vgd_exit(void);
/* Stores one event in the trace (any context). */
void vgd_trace(struct vbt_event *ev);
/* Empties the trace; seq keeps counting. */
void vgd_trace_clear(void);

#endif /* VMBUS_BENCH_GUEST_DEBUGFS_H */
