/*
 * Test program for lab/drivers/trace-lib/vmbus_bench_trace.h (user mode, gcc):
 * writes one host-side trace through a struct vbt_buffer, the way a driver
 * does, and prints the buffer to stdout and "seq=N dropped=N" to stderr.
 *
 *   trace-lib-writer CAPACITY [clear-after-N]
 *
 * The events cover every kind the header writes, with strings that need
 * escaping and 64-bit values at their limits.
 *
 * Built with -DWRITE_TRACELOGGING (and support/tracelogging-recorder on the
 * include path) it also writes each event the buffer took through
 * vbt_tracelogging_write, and stdout has the recorder's lines instead of the
 * buffer: the same events through the library's other emitter.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef WRITE_TRACELOGGING
#include <TraceLoggingProvider.h>
#define VBT_WITH_TRACELOGGING
#endif
#include "vmbus_bench_trace.h"

static struct vbt_buffer buf;
static unsigned long clear_after;
static unsigned long written;

static void emit(struct vbt_event *ev)
{
	int taken = vbt_buffer_append(&buf, ev);

#ifdef WRITE_TRACELOGGING
	if (taken)
		vbt_tracelogging_write("recorder", ev);
#else
	(void)taken;
#endif
	if (++written == clear_after)
		vbt_buffer_clear(&buf);
}

static void state(const char *s)
{
	struct vbt_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.kind = VBT_CH_STATE;
	ev.ch = 7;
	ev.state = s;
	emit(&ev);
}

static void packet(enum vbt_kind kind, unsigned long long tx, int dir)
{
	struct vbt_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.kind = kind;
	ev.ch = 7;
	ev.tx = tx;
	ev.dir = dir;
	ev.len = 4096;
	ev.digest = 0xffffffffffffffffull;
	ev.want_completion = 1;
	ev.status = 0xc0000184u;
	ev.lib_len = 0;
	ev.save_len = 32;
	ev.save_digest = 0x0123456789abcdefull;
	ev.inferred = 1;
	emit(&ev);
}

int main(int argc, char **argv)
{
	static char memory[1 << 20];
	unsigned long capacity;
	struct vbt_event ev;
	char tail[64];
	unsigned int n;

	if (argc < 2)
		return 2;
	capacity = strtoul(argv[1], NULL, 10);
	if (capacity > sizeof(memory))
		return 2;
	if (argc > 2)
		clear_after = strtoul(argv[2], NULL, 10);
	vbt_buffer_init(&buf, memory, (vbt_u32)capacity, "hyperv", "host");

	state("Enabled");
	state("Opened");
	state("Started");
	state("Active");
	packet(VBT_PKT_RECV, 1, VBT_G2H);
	packet(VBT_PKT_COMPLETE, 1, VBT_G2H);
	packet(VBT_PKT_SEND, 18446744073709551615ull, VBT_H2G);
	packet(VBT_PKT_QUEUED, 18446744073709551615ull, VBT_H2G);
	packet(VBT_PKT_SAVE, 18446744073709551615ull, VBT_H2G);
	packet(VBT_PKT_RESTORE, 18446744073709551615ull, VBT_H2G);
	packet(VBT_PKT_COMPLETION, 18446744073709551615ull, VBT_H2G);
	packet(VBT_PKT_FAIL, 2, VBT_G2H);
	packet(VBT_PKT_CANCEL, 3, VBT_H2G);
	packet(VBT_PKT_TIMEOUT, 4, VBT_H2G);

	memset(&ev, 0, sizeof(ev));
	ev.kind = VBT_CH_RESCIND;
	ev.ch = 7;
	emit(&ev);
	ev.kind = VBT_CH_OFFER;
	emit(&ev);

	memset(&ev, 0, sizeof(ev));
	ev.kind = VBT_KMCL_VIOLATION;
	ev.ch = 7;
	ev.rule = "free-twice";
	ev.call = "VmbPacketFree";
	ev.packet = 42;
	ev.message = "packet \"42\" freed twice\n\tsecond call\\here";
	emit(&ev);

	memset(&ev, 0, sizeof(ev));
	ev.kind = VBT_RING_FORMAT;
	ev.ch = 7;
	ev.dir = VBT_G2H;
	ev.offset = 4088;
	ev.type = 3;
	ev.flags = 2;
	emit(&ev);

#ifndef WRITE_TRACELOGGING
	fwrite(memory, 1, buf.length, stdout);
#endif
	/* Reading past the end gives nothing; reading the tail gives whole bytes. */
	n = vbt_buffer_read(&buf, buf.length, tail, sizeof(tail));
	fprintf(stderr, "seq=%llu dropped=%llu readAtEnd=%u\n", buf.seq, buf.dropped, n);
	return 0;
}
