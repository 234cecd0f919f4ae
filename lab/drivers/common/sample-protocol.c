// SPDX-License-Identifier: MIT
/*
 * The sample device protocol for C (see sample-protocol.h and PROTOCOL.md).
 *
 * Compiled into the Linux module, the Windows drivers and user-mode programs,
 * so it uses nothing but the language: no headers, no library calls, no
 * allocation. Multi-byte fields are assembled byte by byte so the result is
 * little-endian on any CPU and no unaligned access is ever made.
 *
 * One file on purpose: every build (Kbuild, two WDK projects, the tool, the
 * tests) takes the protocol as one unit, next to the one header they share.
 * The trace lines are not here: see lab/drivers/trace-lib.
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

void sp_encode_completion_digest(sp_u8 out[SP_COMPLETION_SIZE],
				 const struct sp_header *h, sp_u32 status,
				 sp_u64 request_digest)
{
	put16(out + 0x00, (sp_u16)(SP_MSG_COMPLETION_FLAG | h->type));
	put16(out + 0x02, (sp_u16)SP_PROTOCOL_VERSION);
	put32(out + 0x04, SP_COMPLETION_SIZE);
	put64(out + 0x08, h->tx);
	put32(out + 0x10, status);
	put32(out + 0x14, 0);
	put64(out + 0x18, request_digest);
}

void sp_encode_completion(sp_u8 out[SP_COMPLETION_SIZE], const sp_u8 *received,
			  sp_u32 delivered, const struct sp_header *h,
			  sp_u32 status)
{
	sp_encode_completion_digest(out, h, status,
				    sp_message_digest(received, delivered, h));
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
