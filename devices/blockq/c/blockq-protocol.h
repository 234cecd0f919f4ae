/* SPDX-License-Identifier: MIT */
/*
 * The blockq protocol (../PROTOCOL.md) in C: message header, body pattern, replies,
 * the status rule, the answer delay and the SaveBuf record. Library-free (no libc,
 * no kernel header), so it compiles unchanged into the VSP, for wasm32 and for a
 * Windows target. devices/blockq/protocol.ts and save-record.ts are the same rules
 * in TypeScript; test/devices/blockq/c-vsp.test.ts holds the two together.
 */
#ifndef BLOCKQ_PROTOCOL_H
#define BLOCKQ_PROTOCOL_H

typedef unsigned char bq_u8;
typedef unsigned short bq_u16;
typedef unsigned int bq_u32;
typedef unsigned long long bq_u64;

/* {3b8e0c55-2f1d-4a7c-b6e2-9d40a1c7f3e8}, as the GUID's eleven fields */
#define BQ_INTERFACE_TYPE_GUID_FIELDS \
	0x3b8e0c55, 0x2f1d, 0x4a7c, 0xb6, 0xe2, 0x9d, 0x40, 0xa1, 0xc7, 0xf3, 0xe8
#define BQ_APPLY(m, ...) m(__VA_ARGS__)

#define BQ_HEADER_SIZE 20u
#define BQ_MAX_MESSAGE_SIZE 8192u
/* The largest reply: header, status, 0, digest, 8 * 7 bytes of filler. */
#define BQ_REPLY_MAX (BQ_HEADER_SIZE + 16u + 8u * 7u)

#define BQ_MSG_REQUEST 0x10u
#define BQ_MSG_REQUEST_REPLY 0x11u
#define BQ_MSG_EVENT 0x20u
#define BQ_MSG_EVENT_REPLY 0x21u
#define BQ_MSG_NOTE 0x30u

#define BQ_MODE_INLINE 0u
#define BQ_MODE_DEFERRED 1u
#define BQ_MODE_HOLD 2u

#define BQ_STATUS_SUCCESS 0x00000000u
#define BQ_STATUS_INVALID_DEVICE_REQUEST 0xC0000010u
#define BQ_STATUS_DEVICE_DATA_ERROR 0xC000009Cu

#define BQ_SAVE_MAGIC 0x51534B42u /* "BKSQ" little-endian */
#define BQ_SAVE_VERSION 1u
#define BQ_SAVE_MIN 32u
#define BQ_SAVE_MAX 48u

struct bq_header {
	bq_u16 type;
	bq_u16 mode;
	bq_u32 length;	/* of the whole message, header included */
	bq_u64 tx;
	bq_u32 hold;	/* ms */
};

/* What the VSP keeps of a host message and saves (the SaveBuf record's fields). */
struct bq_event {
	bq_u64 tx;
	bq_u16 type;
	bq_u32 length;
	bq_u32 hold;
	bq_u64 digest;	/* FNV-1a of the message as sent */
};

bq_u64 bq_fnv1a64(const void *data, bq_u32 len);

/* 0, or -1 when fewer than BQ_HEADER_SIZE bytes arrived. */
int bq_decode_header(const bq_u8 *b, bq_u32 len, struct bq_header *h);

/* Body byte i of transaction tx. */
bq_u8 bq_body_byte(bq_u64 tx, bq_u32 i);

/* The header's length fits what arrived (up to 7 bytes of ring padding) and the body
 * follows the pattern.
 */
int bq_is_intact(const bq_u8 *b, bq_u32 len, const struct bq_header *h);

/* Writes a message of `length` bytes; -1 when the length is out of range. */
int bq_encode_message(bq_u8 *b, bq_u16 type, bq_u64 tx, bq_u32 length, bq_u16 mode,
		      bq_u32 hold);

/* The status rule: damaged -> DEVICE_DATA_ERROR; else tx % 7 == 3 fails. */
bq_u32 bq_status_for(bq_u64 tx, int intact);

/* A reply's size: 36 + 8 * (tx % 8) bytes. */
bq_u32 bq_reply_size(bq_u64 tx);

/* Writes the reply to message h (bq_reply_size(h->tx) bytes into out). */
bq_u32 bq_encode_reply(bq_u8 *out, const struct bq_header *h, bq_u32 status,
		       bq_u64 message_digest);

/* The status a reply carries; DEVICE_DATA_ERROR when too short to carry one. */
bq_u32 bq_reply_status(const bq_u8 *b, bq_u32 len);

/* A reply's own length (its header's), within what arrived. */
bq_u32 bq_reply_length(const bq_u8 *b, bq_u32 len);

/* When a message is answered, ms after it arrived: hold + 2, 0, 3, 1 by tx % 4. */
bq_u32 bq_answer_delay(bq_u64 tx, bq_u32 hold);

/* The SaveBuf record's size for tx: 32, 40 or 48 bytes. */
bq_u32 bq_record_size(bq_u64 tx);

/* Writes the record (bq_record_size(e->tx) bytes). */
bq_u32 bq_record_encode(bq_u8 *out, const struct bq_event *e);

/* 0 and *e (type Event), or -1 when it is not a record we wrote. */
int bq_record_parse(const bq_u8 *b, bq_u32 len, struct bq_event *e);

#endif /* BLOCKQ_PROTOCOL_H */
