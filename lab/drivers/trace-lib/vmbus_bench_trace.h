/* SPDX-License-Identifier: MIT */
/*
 * vmbus_bench_trace.h: writes the vmbus-bench trace (schema version 1) from a
 * driver. README.md beside this file is the contract; the schema itself is
 * src/trace/TRACE-SCHEMA.md and src/trace/trace-v1.schema.json.
 *
 * One header, nothing to link. It includes nothing and calls no library
 * function in its common part, so it compiles unchanged in a Windows kernel
 * driver, a Linux kernel module, user mode and freestanding wasm32. Two opt-in
 * parts sit on top, each enabled by a macro defined before the #include:
 *
 *   VBT_WITH_TRACELOGGING  vbt_tracelogging_write(): one TraceLogging (ETW)
 *                          event per trace event, for KMCL drivers. Include
 *                          <TraceLoggingProvider.h> first.
 *   VBT_WITH_LINUX         vbt_linux_write() and vbt_debugfs_read(): a
 *                          struct vbt_buffer under a spinlock, read through a
 *                          debugfs file, for Linux drivers.
 *
 * The common part formats JSON Lines (vbt_format_line) and keeps them in a
 * caller-supplied buffer (struct vbt_buffer); the caller provides the lock.
 */
#ifndef VMBUS_BENCH_TRACE_H
#define VMBUS_BENCH_TRACE_H

/* Fixed-size integers without <stdint.h>, which not every kernel world has.
 * Every target this builds for is ILP32, LP64 or LLP64, where they hold; the
 * array size below fails to compile anywhere else.
 */
typedef unsigned char vbt_u8;
typedef unsigned int vbt_u32;
typedef unsigned long long vbt_u64;
extern char vbt_check_sizes[sizeof(vbt_u32) == 4 && sizeof(vbt_u64) == 8 ? 1 : -1];

/* ---- Events: one table of kinds and fields --------------------------------- */

/* Every event a driver writes (side host or guest), each once, in one table:
 * X(kind, "ev", fields), where fields(F) lists the fields after the common v,
 * seq, src, side, ev and ch, in the schema table's order, as
 * F(form, member, "name"): the struct vbt_event member that holds the value,
 * the schema's name for it, and its form:
 *
 *   str    a string
 *   u32    a number below 2^32
 *   u64    a number below 2^64
 *   dir    VBT_G2H or VBT_H2G, written "g2h" or "h2g"
 *   hex8   an NTSTATUS, written as 8 lowercase hex digits
 *   hex16  a digest, written as 16 lowercase hex digits
 *   bool   true or false
 *   flag   JSON Lines: written (true) only when set; TraceLogging: a boolean,
 *          always (an ETW event's fields are fixed when it is compiled)
 *
 * The enum, the event names, the JSON Lines formatter and the TraceLogging
 * writer are all expanded from it, so a field added here reaches every one.
 */
#define VBT_PACKET_FIELDS(F) F(u64, tx, "tx") F(dir, dir, "dir")

#define VBT_CH_STATE_FIELDS(F) F(str, state, "state")
#define VBT_PKT_SEND_FIELDS(F) VBT_PACKET_FIELDS(F)				\
	F(u32, len, "len") F(hex16, digest, "digest")				\
	F(bool, want_completion, "wantCompletion")
#define VBT_PKT_QUEUED_FIELDS(F) VBT_PACKET_FIELDS(F)				\
	F(flag, inferred, "inferred")	/* estimated, not observed */
#define VBT_PKT_RECV_FIELDS(F) VBT_PACKET_FIELDS(F)				\
	F(u32, len, "len") F(hex16, digest, "digest")
#define VBT_PKT_COMPLETE_FIELDS(F) VBT_PACKET_FIELDS(F)				\
	F(hex8, status, "status") F(u32, len, "len") F(hex16, digest, "digest")
#define VBT_PKT_COMPLETION_FIELDS(F) VBT_PACKET_FIELDS(F)			\
	F(hex8, status, "status") F(hex16, digest, "digest")
#define VBT_PKT_SAVE_FIELDS(F) VBT_PACKET_FIELDS(F)				\
	F(u32, lib_len, "libLen") F(u32, save_len, "saveLen")			\
	F(hex16, save_digest, "saveDigest")
#define VBT_PKT_RESTORE_FIELDS(F) VBT_PACKET_FIELDS(F)				\
	F(hex16, save_digest, "saveDigest")
#define VBT_PKT_STATUS_FIELDS(F) VBT_PACKET_FIELDS(F) F(hex8, status, "status")
#define VBT_PKT_TIMEOUT_FIELDS(F) VBT_PACKET_FIELDS(F)				\
	F(u32, len, "len") F(hex16, digest, "digest")
#define VBT_KMCL_VIOLATION_FIELDS(F)						\
	F(str, rule, "rule") F(str, call, "call") F(u64, packet, "packet")	\
	F(str, message, "message")
#define VBT_RING_FORMAT_FIELDS(F)						\
	F(dir, dir, "dir") F(u32, offset, "offset") F(u32, type, "type")	\
	F(u32, flags, "flags")
#define VBT_NO_FIELDS(F)

#define VBT_EVENTS(X)								\
	X(VBT_CH_STATE, "ch.state", VBT_CH_STATE_FIELDS)			\
	X(VBT_PKT_SEND, "pkt.send", VBT_PKT_SEND_FIELDS)			\
	X(VBT_PKT_QUEUED, "pkt.queued", VBT_PKT_QUEUED_FIELDS)			\
	X(VBT_PKT_RECV, "pkt.recv", VBT_PKT_RECV_FIELDS)			\
	X(VBT_PKT_COMPLETE, "pkt.complete", VBT_PKT_COMPLETE_FIELDS)		\
	X(VBT_PKT_COMPLETION, "pkt.completion", VBT_PKT_COMPLETION_FIELDS)	\
	X(VBT_PKT_SAVE, "pkt.save", VBT_PKT_SAVE_FIELDS) /* host only */	\
	X(VBT_PKT_RESTORE, "pkt.restore", VBT_PKT_RESTORE_FIELDS) /* host */	\
	X(VBT_PKT_FAIL, "pkt.fail", VBT_PKT_STATUS_FIELDS)			\
	X(VBT_KMCL_VIOLATION, "kmcl.violation", VBT_KMCL_VIOLATION_FIELDS)	\
	X(VBT_RING_FORMAT, "ring.format", VBT_RING_FORMAT_FIELDS)		\
	X(VBT_CH_RESCIND, "ch.rescind", VBT_NO_FIELDS) /* host only */		\
	X(VBT_CH_OFFER, "ch.offer", VBT_NO_FIELDS) /* host only */		\
	X(VBT_PKT_CANCEL, "pkt.cancel", VBT_PKT_STATUS_FIELDS)			\
	X(VBT_PKT_TIMEOUT, "pkt.timeout", VBT_PKT_TIMEOUT_FIELDS) /* sender */

#define VBT_KIND_ENUMERATOR(kind, name, fields) kind,
enum vbt_kind {
	VBT_EVENTS(VBT_KIND_ENUMERATOR)
};

#define VBT_G2H 0
#define VBT_H2G 1

/* One event. Fields its kind does not list (above) are not written; zero the
 * struct first and set what the kind needs.
 */
struct vbt_event {
	enum vbt_kind kind;
	vbt_u64 seq;		/* 0: the writer assigns it (buffer, see below) */
	const char *src;	/* backend name: "hyperv" for a driver on a real host */
	const char *side;	/* "host" or "guest" */
	vbt_u32 ch;		/* vbt_channel_number() of the channel */
	const char *state;	/* a KMCL state name: "Opened", "Active", ... */
	vbt_u64 tx;		/* transaction id, stable across save and restore */
	int dir;		/* VBT_G2H or VBT_H2G */
	vbt_u32 len;
	vbt_u64 digest;		/* written as 16 lowercase hex digits */
	int want_completion;
	vbt_u32 status;		/* NTSTATUS, written as 8 lowercase hex digits */
	vbt_u32 lib_len;
	vbt_u32 save_len;
	vbt_u64 save_digest;
	int inferred;		/* pkt.queued: estimated, not observed */
	const char *rule;	/* kmcl.violation */
	const char *call;
	vbt_u64 packet;
	const char *message;
	vbt_u32 offset;		/* ring.format */
	vbt_u32 type;
	vbt_u32 flags;
};

/* The schema's name of a kind ("pkt.send", ...). */
#define VBT_NAME_CASE(kind, name, fields) case kind: return name;
static inline const char *vbt_event_name(enum vbt_kind kind)
{
	switch (kind) {
	VBT_EVENTS(VBT_NAME_CASE)
	}
	return "unknown";
}

/* The trace's channel number (field "ch") of a channel: the last four bytes of
 * its interface instance GUID, read big-endian (the GUID's last 8 hex digits).
 * The bench chooses instance GUIDs that way, so host and guest agree without
 * talking. guid16 is the GUID in memory (a Windows GUID or a Linux guid_t:
 * Data4 sits at bytes 8..15 in both layouts).
 */
static inline vbt_u32 vbt_channel_number(const vbt_u8 guid16[16])
{
	return ((vbt_u32)guid16[12] << 24) | ((vbt_u32)guid16[13] << 16) |
	       ((vbt_u32)guid16[14] << 8) | (vbt_u32)guid16[15];
}

/* The hex digit of the low 4 bits of x. */
#define VBT_HEX(x) ("0123456789abcdef"[(x) & 0xf])

/* A digest as the trace writes it: 16 lowercase hex digits and a NUL. */
static inline void vbt_digest_hex(vbt_u64 digest, char out[17])
{
	int i;

	for (i = 0; i < 16; i++)
		out[i] = VBT_HEX(digest >> (60 - 4 * i));
	out[16] = '\0';
}

/* An NTSTATUS as the trace writes it: 8 lowercase hex digits and a NUL. */
static inline void vbt_status_hex(vbt_u32 status, char out[9])
{
	int i;

	for (i = 0; i < 8; i++)
		out[i] = VBT_HEX(status >> (28 - 4 * i));
	out[8] = '\0';
}

/* ---- JSON Lines ---------------------------------------------------------- */

/* Longest line vbt_format_line writes when every string is at most 64 bytes
 * (escaping may make one up to six times longer; size buffers for that).
 */
#define VBT_LINE_MAX 1024u

/* A bounded string builder: once something did not fit, everything after it is
 * dropped and the caller sees 0, so a truncated line is never emitted.
 */
struct vbt_line {
	char *buf;
	vbt_u32 cap;
	vbt_u32 len;
	int overflow;
};

static inline void vbt_put_char(struct vbt_line *l, char c)
{
	if (l->overflow || l->len + 1 >= l->cap) {
		l->overflow = 1;
		return;
	}
	l->buf[l->len++] = c;
}

static inline void vbt_put_raw(struct vbt_line *l, const char *s)
{
	while (*s)
		vbt_put_char(l, *s++);
}

/* A JSON string: quotes, backslashes and control characters escaped. */
static inline void vbt_put_string(struct vbt_line *l, const char *s)
{
	vbt_put_char(l, '"');
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			vbt_put_char(l, '\\');
			vbt_put_char(l, (char)c);
		} else if (c < 0x20) {
			vbt_put_raw(l, "\\u00");
			vbt_put_char(l, VBT_HEX(c >> 4));
			vbt_put_char(l, VBT_HEX(c));
		} else {
			vbt_put_char(l, (char)c);
		}
	}
	vbt_put_char(l, '"');
}

static inline void vbt_put_u64(struct vbt_line *l, vbt_u64 v)
{
	char tmp[20];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + (int)(v % 10));
		v /= 10;
	} while (v);
	while (n)
		vbt_put_char(l, tmp[--n]);
}

static inline void vbt_put_hex(struct vbt_line *l, vbt_u64 v, int digits)
{
	vbt_put_char(l, '"');
	while (digits--)
		vbt_put_char(l, VBT_HEX(v >> (4 * digits)));
	vbt_put_char(l, '"');
}

static inline void vbt_put_key(struct vbt_line *l, const char *key)
{
	vbt_put_raw(l, ",\"");
	vbt_put_raw(l, key);
	vbt_put_raw(l, "\":");
}

/* One field in each form (see VBT_EVENTS), key included. */
static inline void vbt_json_str(struct vbt_line *l, const char *key, const char *v)
{
	vbt_put_key(l, key);
	vbt_put_string(l, v);
}

static inline void vbt_json_u64(struct vbt_line *l, const char *key, vbt_u64 v)
{
	vbt_put_key(l, key);
	vbt_put_u64(l, v);
}

static inline void vbt_json_u32(struct vbt_line *l, const char *key, vbt_u32 v)
{
	vbt_json_u64(l, key, v);
}

static inline void vbt_json_dir(struct vbt_line *l, const char *key, int dir)
{
	vbt_json_str(l, key, dir == VBT_H2G ? "h2g" : "g2h");
}

static inline void vbt_json_hex8(struct vbt_line *l, const char *key, vbt_u32 v)
{
	vbt_put_key(l, key);
	vbt_put_hex(l, v, 8);
}

static inline void vbt_json_hex16(struct vbt_line *l, const char *key, vbt_u64 v)
{
	vbt_put_key(l, key);
	vbt_put_hex(l, v, 16);
}

static inline void vbt_json_bool(struct vbt_line *l, const char *key, int v)
{
	vbt_put_key(l, key);
	vbt_put_raw(l, v ? "true" : "false");
}

static inline void vbt_json_flag(struct vbt_line *l, const char *key, int v)
{
	if (v)
		vbt_json_bool(l, key, v);
}

/* The fields after "ch" of each kind, as VBT_EVENTS lists them. */
#define VBT_JSON_FIELD(form, member, name) vbt_json_##form(l, name, ev->member);
#define VBT_JSON_CASE(kind, name, fields)				\
	case kind:							\
		fields(VBT_JSON_FIELD)					\
		break;
static inline void vbt_put_fields(struct vbt_line *l, const struct vbt_event *ev)
{
	switch (ev->kind) {
	VBT_EVENTS(VBT_JSON_CASE)
	}
}

/* Formats one JSON Lines record, newline included, NUL-terminated. Returns its
 * length without the NUL, or 0 when it does not fit in capacity (nothing
 * usable is left in out then).
 */
static inline vbt_u32 vbt_format_line(char *out, vbt_u32 capacity,
				      const struct vbt_event *ev)
{
	struct vbt_line l = { out, capacity, 0, 0 };

	if (capacity == 0)
		return 0;
	vbt_put_raw(&l, "{\"v\":1,\"seq\":");
	vbt_put_u64(&l, ev->seq);
	vbt_put_key(&l, "src");
	vbt_put_string(&l, ev->src);
	vbt_put_key(&l, "side");
	vbt_put_string(&l, ev->side);
	vbt_put_key(&l, "ev");
	vbt_put_string(&l, vbt_event_name(ev->kind));
	vbt_put_key(&l, "ch");
	vbt_put_u64(&l, ev->ch);
	vbt_put_fields(&l, ev);
	vbt_put_raw(&l, "}\n");
	if (l.overflow)
		return 0;
	out[l.len] = '\0';
	return l.len;
}

/* ---- The trace buffer ------------------------------------------------------- */

/* A trace kept in memory: whole lines, in strictly increasing seq order.
 * Invariant: data[0..length) is a prefix of the lines appended since the last
 * clear, each whole, numbered without gaps up to seq. Once a line does not fit,
 * it and every later one is counted in dropped, never cut and never written
 * after the gap, so a trace with holes never passes for a complete one (the
 * reader compares dropped with 0). The caller serialises every call on one
 * buffer (a spinlock: vbt_linux_write does it for Linux).
 */
struct vbt_buffer {
	char *data;
	vbt_u32 capacity;
	vbt_u32 length;
	vbt_u64 seq;		/* lines written since init; clear keeps counting */
	vbt_u64 dropped;	/* lines refused since init or the last clear */
	const char *src;
	const char *side;
};

static inline void vbt_buffer_init(struct vbt_buffer *b, char *data,
				   vbt_u32 capacity, const char *src,
				   const char *side)
{
	b->data = data;
	b->capacity = data ? capacity : 0;
	b->length = 0;
	b->seq = 0;
	b->dropped = 0;
	b->src = src;
	b->side = side;
}

/* Appends one line: sets ev->src, ev->side and ev->seq (the next number).
 * Returns 1, or 0 when it was dropped: it did not fit, or an earlier line did
 * not (counted in dropped; seq not used up).
 */
static inline int vbt_buffer_append(struct vbt_buffer *b, struct vbt_event *ev)
{
	vbt_u32 n = 0;

	ev->src = b->src;
	ev->side = b->side;
	ev->seq = b->seq + 1;
	if (b->data && b->dropped == 0 && b->capacity - b->length > 1)
		n = vbt_format_line(b->data + b->length,
				    b->capacity - b->length, ev);
	if (n == 0) {
		b->dropped++;
		return 0;
	}
	b->length += n;
	b->seq++;
	return 1;
}

/* Copies trace bytes from offset into out; returns how many (0 at the end). */
static inline vbt_u32 vbt_buffer_read(const struct vbt_buffer *b,
				      vbt_u64 offset, char *out, vbt_u32 size)
{
	vbt_u32 i, n;

	if (offset >= b->length)
		return 0;
	n = b->length - (vbt_u32)offset;
	if (n > size)
		n = size;
	for (i = 0; i < n; i++)
		out[i] = b->data[offset + i];
	return n;
}

/* Empties the buffer and forgets the drops; seq keeps counting, so reads on
 * both sides of a clear never share a seq.
 */
static inline void vbt_buffer_clear(struct vbt_buffer *b)
{
	b->length = 0;
	b->dropped = 0;
}

/* ---- TraceLogging (Windows) ------------------------------------------------- */

#ifdef VBT_WITH_TRACELOGGING
/* One field in each form (see VBT_EVENTS) as a TraceLogging field macro. The
 * hex forms go as numbers with ETW's hex out-type (TraceLoggingHexUInt64 and
 * TraceLoggingHexUInt32): the event carries the 8 or 4 bytes, no text is made
 * in the driver, and the converter writes them as 16 or 8 lowercase digits.
 */
#define VBT_TL_str(member, name) TraceLoggingString(ev->member, name)
#define VBT_TL_u64(member, name) TraceLoggingUInt64(ev->member, name)
#define VBT_TL_u32(member, name) TraceLoggingUInt32(ev->member, name)
#define VBT_TL_dir(member, name) TraceLoggingString(dir, name)
#define VBT_TL_hex8(member, name) TraceLoggingHexUInt32(ev->member, name)
#define VBT_TL_hex16(member, name) TraceLoggingHexUInt64(ev->member, name)
#define VBT_TL_bool(member, name)					\
	TraceLoggingBoolean((BOOLEAN)(ev->member != 0), name)
#define VBT_TL_flag(member, name) VBT_TL_bool(member, name)
#define VBT_TL_FIELD(form, member, name) , VBT_TL_##form(member, name)
/* The event name is a string literal from VBT_EVENTS, as TraceLoggingWrite needs. */
#define VBT_TL_CASE(kind, ename, fields)				\
	case kind:							\
		TraceLoggingWrite(provider, ename,			\
				  TraceLoggingUInt64(ev->seq, "seq"),	\
				  TraceLoggingUInt32(ev->ch, "ch")	\
				  fields(VBT_TL_FIELD));		\
		break;

/* Writes one event through TraceLogging. The ETW event name is the schema's
 * "ev" and every field has the schema's name (digests and statuses as hex
 * numbers, above), so a converter from ETW to JSON Lines copies field by field,
 * writes the hex numbers as the schema's text, and adds "v", "src" and "side".
 * seq must be set by the caller (ETW delivers events from several CPUs out of
 * order; the converter sorts by it).
 */
static inline void vbt_tracelogging_write(TraceLoggingHProvider provider,
					  const struct vbt_event *ev)
{
	const char *dir = ev->dir == VBT_H2G ? "h2g" : "g2h";

	switch (ev->kind) {
	VBT_EVENTS(VBT_TL_CASE)
	}
}
#endif /* VBT_WITH_TRACELOGGING */

/* ---- Linux: a buffer under a spinlock, read through debugfs ---------------- */

#ifdef VBT_WITH_LINUX
#include <linux/kernel.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>

/* Bytes copied per read call (through a bounce buffer: copy_to_user may sleep,
 * so it cannot run under the spinlock).
 */
#define VBT_READ_CHUNK 65536

/* vbt_buffer_append under lock; any context. Returns 1, or 0 when dropped. */
static inline int vbt_linux_write(struct vbt_buffer *b, spinlock_t *lock,
				  struct vbt_event *ev)
{
	unsigned long flags;
	int ok;

	spin_lock_irqsave(lock, flags);
	ok = vbt_buffer_append(b, ev);
	spin_unlock_irqrestore(lock, flags);
	return ok;
}

/* The body of a debugfs file's .read: the trace from *ppos on. Process
 * context (it allocates with GFP_KERNEL and copies to user space).
 */
static inline ssize_t vbt_debugfs_read(struct vbt_buffer *b, spinlock_t *lock,
				       char __user *ubuf, size_t count,
				       loff_t *ppos)
{
	unsigned long flags;
	size_t n = 0;
	char *chunk;

	if (*ppos < 0)
		return -EINVAL;
	chunk = kmalloc(VBT_READ_CHUNK, GFP_KERNEL);
	if (!chunk)
		return -ENOMEM;
	spin_lock_irqsave(lock, flags);
	n = vbt_buffer_read(b, (vbt_u64)*ppos, chunk,
			    (vbt_u32)min_t(size_t, count, VBT_READ_CHUNK));
	spin_unlock_irqrestore(lock, flags);
	if (n && copy_to_user(ubuf, chunk, n)) {
		kfree(chunk);
		return -EFAULT;
	}
	kfree(chunk);
	*ppos += n;
	return n;
}
#endif /* VBT_WITH_LINUX */

#endif /* VMBUS_BENCH_TRACE_H */
