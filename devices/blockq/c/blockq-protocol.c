// SPDX-License-Identifier: MIT
/*
 * The blockq protocol's rules (blockq-protocol.h). Little-endian on the wire,
 * written byte by byte so no alignment or host order is assumed.
 */
#include "blockq-protocol.h"

static bq_u32 get32(const bq_u8 *b)
{
	return (bq_u32)b[0] | ((bq_u32)b[1] << 8) | ((bq_u32)b[2] << 16) | ((bq_u32)b[3] << 24);
}

static bq_u64 get64(const bq_u8 *b)
{
	return (bq_u64)get32(b) | ((bq_u64)get32(b + 4) << 32);
}

static void put16(bq_u8 *b, bq_u16 v)
{
	b[0] = (bq_u8)v;
	b[1] = (bq_u8)(v >> 8);
}

static void put32(bq_u8 *b, bq_u32 v)
{
	put16(b, (bq_u16)v);
	put16(b + 2, (bq_u16)(v >> 16));
}

static void put64(bq_u8 *b, bq_u64 v)
{
	put32(b, (bq_u32)v);
	put32(b + 4, (bq_u32)(v >> 32));
}

bq_u64 bq_fnv1a64(const void *data, bq_u32 len)
{
	const bq_u8 *p = (const bq_u8 *)data;
	bq_u64 h = 0xcbf29ce484222325ull;
	bq_u32 i;

	for (i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

int bq_decode_header(const bq_u8 *b, bq_u32 len, struct bq_header *h)
{
	if (len < BQ_HEADER_SIZE)
		return -1;
	h->type = (bq_u16)(b[0] | (b[1] << 8));
	h->mode = (bq_u16)(b[2] | (b[3] << 8));
	h->length = get32(b + 4);
	h->tx = get64(b + 8);
	h->hold = get32(b + 16);
	return 0;
}

bq_u8 bq_body_byte(bq_u64 tx, bq_u32 i)
{
	return (bq_u8)(((tx & 0xff) * 13 + i * 7 + 0x33) & 0xff);
}

int bq_is_intact(const bq_u8 *b, bq_u32 len, const struct bq_header *h)
{
	bq_u32 i;

	if (h->length < BQ_HEADER_SIZE || h->length > len || len - h->length > 7)
		return 0;
	for (i = 0; i < h->length - BQ_HEADER_SIZE; i++)
		if (b[BQ_HEADER_SIZE + i] != bq_body_byte(h->tx, i))
			return 0;
	return 1;
}

int bq_encode_message(bq_u8 *b, bq_u16 type, bq_u64 tx, bq_u32 length, bq_u16 mode,
		      bq_u32 hold)
{
	bq_u32 i;

	if (length < BQ_HEADER_SIZE || length > BQ_MAX_MESSAGE_SIZE)
		return -1;
	put16(b, type);
	put16(b + 2, mode);
	put32(b + 4, length);
	put64(b + 8, tx);
	put32(b + 16, hold);
	for (i = 0; i < length - BQ_HEADER_SIZE; i++)
		b[BQ_HEADER_SIZE + i] = bq_body_byte(tx, i);
	return 0;
}

bq_u32 bq_status_for(bq_u64 tx, int intact)
{
	if (!intact)
		return BQ_STATUS_DEVICE_DATA_ERROR;
	return tx % 7 == 3 ? BQ_STATUS_INVALID_DEVICE_REQUEST : BQ_STATUS_SUCCESS;
}

bq_u32 bq_reply_size(bq_u64 tx)
{
	return BQ_HEADER_SIZE + 16u + 8u * (bq_u32)(tx % 8);
}

bq_u32 bq_encode_reply(bq_u8 *out, const struct bq_header *h, bq_u32 status,
		       bq_u64 message_digest)
{
	bq_u32 n = bq_reply_size(h->tx), i;

	put16(out, (bq_u16)(h->type + 1));
	put16(out + 2, 0);
	put32(out + 4, n);
	put64(out + 8, h->tx);
	put32(out + 16, 0);
	put32(out + 20, status);
	put32(out + 24, (bq_u32)message_digest);
	put32(out + 28, (bq_u32)(message_digest >> 32));
	for (i = 32; i < n; i++)
		out[i] = (bq_u8)((i * 11 + (bq_u32)h->tx) & 0xff);
	return n;
}

bq_u32 bq_reply_status(const bq_u8 *b, bq_u32 len)
{
	return len >= BQ_HEADER_SIZE + 8 ? get32(b + 20) : BQ_STATUS_DEVICE_DATA_ERROR;
}

bq_u32 bq_reply_length(const bq_u8 *b, bq_u32 len)
{
	bq_u32 own;

	if (len < BQ_HEADER_SIZE)
		return len;
	own = get32(b + 4);
	return own < len ? own : len;
}

bq_u32 bq_answer_delay(bq_u64 tx, bq_u32 hold)
{
	static const bq_u32 by_tx[4] = { 2, 0, 3, 1 };

	return hold + by_tx[tx % 4];
}

bq_u32 bq_record_size(bq_u64 tx)
{
	return BQ_SAVE_MIN + 8u * (bq_u32)(tx % 3);
}

bq_u32 bq_record_encode(bq_u8 *out, const struct bq_event *e)
{
	bq_u32 n = bq_record_size(e->tx), i;

	put32(out, BQ_SAVE_MAGIC);
	put16(out + 4, BQ_SAVE_VERSION);
	put16(out + 6, (bq_u16)n);
	put64(out + 8, e->tx);
	put32(out + 16, e->length);
	put32(out + 20, e->hold);
	put32(out + 24, (bq_u32)e->digest);
	put32(out + 28, (bq_u32)(e->digest >> 32));
	for (i = BQ_SAVE_MIN; i < n; i++)
		out[i] = 0;
	return n;
}

int bq_record_parse(const bq_u8 *b, bq_u32 len, struct bq_event *e)
{
	bq_u64 tx;

	if (len < BQ_SAVE_MIN || get32(b) != BQ_SAVE_MAGIC || (b[4] | (b[5] << 8)) != BQ_SAVE_VERSION)
		return -1;
	tx = get64(b + 8);
	if ((bq_u32)(b[6] | (b[7] << 8)) != len || bq_record_size(tx) != len)
		return -1;
	e->tx = tx;
	e->type = BQ_MSG_EVENT; /* a record does not say: the restore tells a Note by its digest */
	e->length = get32(b + 16);
	e->hold = get32(b + 20);
	e->digest = (bq_u64)get32(b + 24) | ((bq_u64)get32(b + 28) << 32);
	return 0;
}
