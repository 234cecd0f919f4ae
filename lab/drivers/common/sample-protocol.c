// SPDX-License-Identifier: MIT
/*
 * The sample device protocol for C (see sample-protocol.h and PROTOCOL.md).
 *
 * Compiled into the Linux module, the Windows drivers and user-mode programs,
 * so it uses nothing but the language: no headers, no library calls, no
 * allocation. Multi-byte fields are assembled byte by byte so the result is
 * little-endian on any CPU and no unaligned access is ever made.
 *
 * A little over 400 lines on purpose: the protocol and its trace lines are one
 * unit that every build (Kbuild, two WDK projects, the tool, the tests) takes
 * as one file, next to the one header they share.
 */
#include "sample-protocol.h"

/* Refuse to build where the typedefs in the header have the wrong size. */
extern char sp_check_sizes[sizeof(sp_u16) == 2 && sizeof(sp_u32) == 4 &&
			   sizeof(sp_u64) == 8 ? 1 : -1];

static void put16(sp_u8 *p, sp_u16 v)
{
	p[0] = (sp_u8)v;
	p[1] = (sp_u8)(v >> 8);
}

static void put32(sp_u8 *p, sp_u32 v)
{
	p[0] = (sp_u8)v;
	p[1] = (sp_u8)(v >> 8);
	p[2] = (sp_u8)(v >> 16);
	p[3] = (sp_u8)(v >> 24);
}

static void put64(sp_u8 *p, sp_u64 v)
{
	put32(p, (sp_u32)v);
	put32(p + 4, (sp_u32)(v >> 32));
}

static sp_u16 get16(const sp_u8 *p)
{
	return (sp_u16)(p[0] | (p[1] << 8));
}

static sp_u32 get32(const sp_u8 *p)
{
	return (sp_u32)p[0] | ((sp_u32)p[1] << 8) | ((sp_u32)p[2] << 16) |
	       ((sp_u32)p[3] << 24);
}

static sp_u64 get64(const sp_u8 *p)
{
	return (sp_u64)get32(p) | ((sp_u64)get32(p + 4) << 32);
}

sp_u8 sp_body_byte(sp_u64 tx, sp_u32 i)
{
	/* Only the low byte of each term matters, so 32-bit arithmetic is exact. */
	return (sp_u8)(((sp_u32)(tx & 0xff) * 0x9Eu + i * 0x1Fu + 0x5Au) & 0xffu);
}

sp_u64 sp_fnv1a64_more(sp_u64 digest, const void *data, sp_u32 len)
{
	const sp_u8 *p = (const sp_u8 *)data;
	sp_u32 i;

	for (i = 0; i < len; i++) {
		digest ^= p[i];
		digest *= SP_FNV_PRIME;
	}
	return digest;
}

sp_u64 sp_fnv1a64(const void *data, sp_u32 len)
{
	return sp_fnv1a64_more(SP_FNV_OFFSET_BASIS, data, len);
}

int sp_encode_message(sp_u8 *buf, sp_u32 capacity, sp_u16 type, sp_u64 tx,
		      sp_u32 length, sp_u32 arg0, sp_u32 arg1)
{
	sp_u32 i;

	if (length < SP_HEADER_SIZE || length > SP_MAX_MESSAGE_SIZE ||
	    length > capacity)
		return -1;
	put16(buf + 0x00, type);
	put16(buf + 0x02, (sp_u16)SP_PROTOCOL_VERSION);
	put32(buf + 0x04, length);
	put64(buf + 0x08, tx);
	put32(buf + 0x10, arg0);
	put32(buf + 0x14, arg1);
	for (i = 0; i < length - SP_HEADER_SIZE; i++)
		buf[SP_HEADER_SIZE + i] = sp_body_byte(tx, i);
	return 0;
}

int sp_decode_header(const sp_u8 *buf, sp_u32 delivered, struct sp_header *h)
{
	if (delivered < SP_HEADER_SIZE)
		return -1;
	h->type = get16(buf + 0x00);
	h->version = get16(buf + 0x02);
	h->length = get32(buf + 0x04);
	h->tx = get64(buf + 0x08);
	h->arg0 = get32(buf + 0x10);
	h->arg1 = get32(buf + 0x14);
	return 0;
}

int sp_is_intact(const sp_u8 *buf, sp_u32 delivered, const struct sp_header *h)
{
	sp_u32 i;

	if (h->version != SP_PROTOCOL_VERSION)
		return 0;
	/* The header's length must fit what arrived, give or take ring padding. */
	if (h->length < SP_HEADER_SIZE || h->length > delivered ||
	    delivered - h->length > SP_RING_PADDING_MAX)
		return 0;
	for (i = 0; i < h->length - SP_HEADER_SIZE; i++) {
		if (buf[SP_HEADER_SIZE + i] != sp_body_byte(h->tx, i))
			return 0;
	}
	return 1;
}

sp_u32 sp_status_for(sp_u64 tx, int intact)
{
	if (!intact)
		return SP_STATUS_DATA_ERROR;
	return tx % SP_FAIL_MODULUS == SP_FAIL_REMAINDER ?
	       SP_STATUS_INVALID_DEVICE_STATE : SP_STATUS_SUCCESS;
}

sp_u64 sp_message_digest(const sp_u8 *buf, sp_u32 delivered,
			 const struct sp_header *h)
{
	return sp_fnv1a64(buf, h->length < delivered ? h->length : delivered);
}

void sp_encode_completion(sp_u8 out[SP_COMPLETION_SIZE], const sp_u8 *received,
			  sp_u32 delivered, const struct sp_header *h,
			  sp_u32 status)
{
	put16(out + 0x00, (sp_u16)(SP_MSG_COMPLETION_FLAG | h->type));
	put16(out + 0x02, (sp_u16)SP_PROTOCOL_VERSION);
	put32(out + 0x04, SP_COMPLETION_SIZE);
	put64(out + 0x08, h->tx);
	put32(out + 0x10, status);
	put32(out + 0x14, 0);
	put64(out + 0x18, sp_message_digest(received, delivered, h));
}

int sp_decode_completion(const sp_u8 *buf, sp_u32 len, struct sp_completion *c)
{
	/* A completion may also carry ring padding after its 32 bytes. */
	if (len < SP_COMPLETION_SIZE)
		return -1;
	if (!(get16(buf) & SP_MSG_COMPLETION_FLAG) ||
	    get16(buf + 0x02) != SP_PROTOCOL_VERSION ||
	    get32(buf + 0x04) != SP_COMPLETION_SIZE)
		return -1;
	c->type = get16(buf);
	c->tx = get64(buf + 0x08);
	c->status = get32(buf + 0x10);
	c->request_digest = get64(buf + 0x18);
	return 0;
}

void sp_savebuf_encode(sp_u8 out[SP_SAVEBUF_SIZE], const struct sp_saved_tx *s)
{
	put32(out + 0x00, SP_SAVEBUF_MAGIC);
	put16(out + 0x04, (sp_u16)SP_SAVEBUF_VERSION);
	put16(out + 0x06, s->type);
	put64(out + 0x08, s->tx);
	put32(out + 0x10, s->length);
	put32(out + 0x14, s->hold_ms);
	put64(out + 0x18, s->digest);
}

enum sp_savebuf_error sp_savebuf_parse(const sp_u8 *buf, sp_u32 len,
				       struct sp_saved_tx *s)
{
	sp_u16 type;
	sp_u32 length;

	if (len != SP_SAVEBUF_SIZE)
		return SP_SAVEBUF_BAD_SIZE;
	if (get32(buf) != SP_SAVEBUF_MAGIC)
		return SP_SAVEBUF_BAD_MAGIC;
	if (get16(buf + 0x04) != SP_SAVEBUF_VERSION)
		return SP_SAVEBUF_BAD_VERSION;
	type = get16(buf + 0x06);
	if (type != SP_MSG_HOST_TRANSACTION && type != SP_MSG_NOTIFY)
		return SP_SAVEBUF_BAD_TYPE;
	length = get32(buf + 0x10);
	if (length < SP_HEADER_SIZE || length > SP_MAX_MESSAGE_SIZE)
		return SP_SAVEBUF_BAD_LENGTH;
	s->type = type;
	s->tx = get64(buf + 0x08);
	s->length = length;
	s->hold_ms = get32(buf + 0x14);
	s->digest = get64(buf + 0x18);
	return SP_SAVEBUF_OK;
}

/* ---- Trace lines ---------------------------------------------------------- */

/* A bounded string builder: once something did not fit, everything after it is
 * dropped and the caller sees 0, so a truncated line is never emitted.
 */
struct sp_line {
	char *buf;
	sp_u32 cap;
	sp_u32 len;
	int overflow;
};

static void put_char(struct sp_line *l, char c)
{
	if (l->overflow || l->len + 1 >= l->cap) {
		l->overflow = 1;
		return;
	}
	l->buf[l->len++] = c;
}

static void put_raw(struct sp_line *l, const char *s)
{
	while (*s)
		put_char(l, *s++);
}

static const char hex_digits[] = "0123456789abcdef";

/* A JSON string: quotes, backslashes and control characters escaped. */
static void put_json_string(struct sp_line *l, const char *s)
{
	put_char(l, '"');
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			put_char(l, '\\');
			put_char(l, (char)c);
		} else if (c < 0x20) {
			put_raw(l, "\\u00");
			put_char(l, hex_digits[c >> 4]);
			put_char(l, hex_digits[c & 0xf]);
		} else {
			put_char(l, (char)c);
		}
	}
	put_char(l, '"');
}

static void put_u64(struct sp_line *l, sp_u64 v)
{
	char tmp[20];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + (int)(v % 10));
		v /= 10;
	} while (v);
	while (n)
		put_char(l, tmp[--n]);
}

static void put_hex(struct sp_line *l, sp_u64 v, int digits)
{
	put_char(l, '"');
	while (digits--)
		put_char(l, hex_digits[(v >> (4 * digits)) & 0xf]);
	put_char(l, '"');
}

static void put_key(struct sp_line *l, const char *key)
{
	put_raw(l, ",\"");
	put_raw(l, key);
	put_raw(l, "\":");
}

void sp_digest_hex(sp_u64 digest, char out[17])
{
	int i;

	for (i = 0; i < 16; i++)
		out[i] = hex_digits[(digest >> (60 - 4 * i)) & 0xf];
	out[16] = '\0';
}

sp_u32 sp_channel_number(const sp_u8 guid16[16])
{
	return ((sp_u32)guid16[12] << 24) | ((sp_u32)guid16[13] << 16) |
	       ((sp_u32)guid16[14] << 8) | (sp_u32)guid16[15];
}

void sp_status_hex(sp_u32 status, char out[9])
{
	int i;

	for (i = 0; i < 8; i++)
		out[i] = hex_digits[(status >> (28 - 4 * i)) & 0xf];
	out[8] = '\0';
}

const char *sp_trace_kind_name(enum sp_trace_kind kind)
{
	switch (kind) {
	case SP_EV_CH_STATE:
		return "ch.state";
	case SP_EV_PKT_SEND:
		return "pkt.send";
	case SP_EV_PKT_QUEUED:
		return "pkt.queued";
	case SP_EV_PKT_RECV:
		return "pkt.recv";
	case SP_EV_PKT_COMPLETE:
		return "pkt.complete";
	case SP_EV_PKT_COMPLETION:
		return "pkt.completion";
	case SP_EV_PKT_SAVE:
		return "pkt.save";
	case SP_EV_PKT_RESTORE:
		return "pkt.restore";
	case SP_EV_PKT_FAIL:
		return "pkt.fail";
	}
	return "unknown";
}

sp_u32 sp_trace_format(char *out, sp_u32 capacity,
		       const struct sp_trace_event *ev)
{
	struct sp_line l = { out, capacity, 0, 0 };

	if (capacity == 0)
		return 0;
	/* Field order follows the schema table: common fields, then the event's. */
	put_raw(&l, "{\"v\":1,\"seq\":");
	put_u64(&l, ev->seq);
	put_key(&l, "src");
	put_json_string(&l, ev->src);
	put_key(&l, "side");
	put_json_string(&l, ev->side);
	put_key(&l, "ev");
	put_json_string(&l, sp_trace_kind_name(ev->kind));
	put_key(&l, "ch");
	put_u64(&l, ev->ch);

	if (ev->kind == SP_EV_CH_STATE) {
		put_key(&l, "state");
		put_json_string(&l, ev->state);
	} else {
		put_key(&l, "tx");
		put_u64(&l, ev->tx);
		put_key(&l, "dir");
		put_json_string(&l, ev->dir == SP_DIR_H2G ? "h2g" : "g2h");
	}

	switch (ev->kind) {
	case SP_EV_PKT_SEND:
	case SP_EV_PKT_RECV:
		put_key(&l, "len");
		put_u64(&l, ev->len);
		put_key(&l, "digest");
		put_hex(&l, ev->digest, 16);
		if (ev->kind == SP_EV_PKT_SEND) {
			put_key(&l, "wantCompletion");
			put_raw(&l, ev->want_completion ? "true" : "false");
		}
		break;
	case SP_EV_PKT_COMPLETE:
		put_key(&l, "status");
		put_hex(&l, ev->status, 8);
		put_key(&l, "len");
		put_u64(&l, ev->len);
		put_key(&l, "digest");
		put_hex(&l, ev->digest, 16);
		break;
	case SP_EV_PKT_COMPLETION:
		put_key(&l, "status");
		put_hex(&l, ev->status, 8);
		put_key(&l, "digest");
		put_hex(&l, ev->digest, 16);
		break;
	case SP_EV_PKT_SAVE:
		put_key(&l, "libLen");
		put_u64(&l, ev->lib_len);
		put_key(&l, "saveLen");
		put_u64(&l, ev->save_len);
		put_key(&l, "saveDigest");
		put_hex(&l, ev->save_digest, 16);
		break;
	case SP_EV_PKT_RESTORE:
		put_key(&l, "saveDigest");
		put_hex(&l, ev->save_digest, 16);
		break;
	case SP_EV_PKT_FAIL:
		put_key(&l, "status");
		put_hex(&l, ev->status, 8);
		break;
	case SP_EV_PKT_QUEUED:
		if (ev->inferred) {
			put_key(&l, "inferred");
			put_raw(&l, "true");
		}
		break;
	case SP_EV_CH_STATE:
		break;
	}
	put_raw(&l, "}\n");
	if (l.overflow)
		return 0;
	out[l.len] = '\0';
	return l.len;
}
