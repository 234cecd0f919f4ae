/* SPDX-License-Identifier: MIT */
/*
 * The sample device protocol for C: constants, message encoding and checking,
 * the status rule, the FNV-1a digest and the VSP's SaveBuf record.
 *
 * lab/drivers/PROTOCOL.md is the specification. src/devices/protocol.ts holds
 * the same constants for the TypeScript twins, and test/drivers/ fails when a
 * value here differs from there or when the C functions produce a single byte
 * that the TypeScript ones do not.
 *
 * This file and sample-protocol.c are compiled unchanged into three worlds:
 * the Linux guest module (Kbuild, __KERNEL__), the Windows drivers (KMDF) and
 * user-mode programs. They therefore include nothing, allocate nothing, call
 * no library function and use no floating point: every byte is written by
 * hand, little-endian, whatever the CPU.
 */
#ifndef SAMPLE_PROTOCOL_H
#define SAMPLE_PROTOCOL_H

/* Fixed-size integers without <stdint.h> (not available in every kernel world).
 * Every target we build for is ILP32/LP64/LLP64, where these sizes hold; the
 * checks in sample-protocol.c refuse to compile anywhere else.
 */
typedef unsigned char sp_u8;
typedef unsigned short sp_u16;
typedef unsigned int sp_u32;
typedef unsigned long long sp_u64;

/* ---- Channel -------------------------------------------------------------- */

#define SP_PROTOCOL_VERSION 1u

/* Interface type GUID 8d2f5c3a-71b4-4e0e-9a6d-2c1f0b7e5a91, as text and as the
 * eleven initialiser fields (Data1, Data2, Data3, Data4[0..7]) that both
 * Windows' DEFINE_GUID-style initialisers and Linux' GUID_INIT take. Use
 * SP_APPLY(GUID_INIT, SP_INTERFACE_TYPE_GUID_FIELDS) so the commas expand
 * before the macro counts its arguments.
 */
#define SP_INTERFACE_TYPE_GUID_STRING "8d2f5c3a-71b4-4e0e-9a6d-2c1f0b7e5a91"
#define SP_INTERFACE_TYPE_GUID_FIELDS \
	0x8d2f5c3a, 0x71b4, 0x4e0e, \
	0x9a, 0x6d, 0x2c, 0x1f, 0x0b, 0x7e, 0x5a, 0x91
#define SP_APPLY(macro, ...) macro(__VA_ARGS__)

/* Largest message (header + body); also the channel's maximum packet size. */
#define SP_MAX_MESSAGE_SIZE 16384u
/* Default ring size per direction in 4 KiB data pages. */
#define SP_DEFAULT_RING_PAGES 4u
#define SP_PAGE_SIZE 4096u

/* ---- Messages ------------------------------------------------------------- */

#define SP_HEADER_SIZE 24u
#define SP_COMPLETION_SIZE 32u
/* The ring stores lengths in 8-byte units: a receiver may see up to 7 extra
 * zero bytes after the header's length.
 */
#define SP_RING_PADDING_MAX 7u

#define SP_MSG_REQUEST 1u		/* guest -> host, completion requested */
#define SP_MSG_HOST_TRANSACTION 2u	/* host -> guest, WAIT_FOR_COMPLETION */
#define SP_MSG_NOTIFY 3u		/* either way, no completion */
#define SP_MSG_COMPLETION_FLAG 0x80u	/* completion payload: 0x80 | type */

/* arg0 of a Request: how the VSP completes it. */
#define SP_MODE_INLINE 0u
#define SP_MODE_DEFERRED 1u
#define SP_MODE_HOLD 2u

/* ---- The status rule ------------------------------------------------------ */

#define SP_STATUS_SUCCESS 0x00000000u
#define SP_STATUS_DATA_ERROR 0xC000003Eu		/* STATUS_DATA_ERROR */
#define SP_STATUS_INVALID_DEVICE_STATE 0xC0000184u	/* deliberate failure */
#define SP_STATUS_CANCELLED 0xC0000120u		/* in flight on a rescinded channel */
/* Every transaction with tx % SP_FAIL_MODULUS == SP_FAIL_REMAINDER fails. */
#define SP_FAIL_MODULUS 16u
#define SP_FAIL_REMAINDER 15u

/* ---- Digest --------------------------------------------------------------- */

#define SP_FNV_OFFSET_BASIS 0xcbf29ce484222325ull
#define SP_FNV_PRIME 0x00000100000001b3ull

/* ---- The VSP's SaveBuf record --------------------------------------------- */

#define SP_SAVEBUF_MAGIC 0x53505356u	/* "VSPS" read as a little-endian u32 */
#define SP_SAVEBUF_VERSION 1u
#define SP_SAVEBUF_SIZE 32u

/* ---- Types ---------------------------------------------------------------- */

struct sp_header {
	sp_u16 type;
	sp_u16 version;
	sp_u32 length;	/* total message length, header included */
	sp_u64 tx;	/* the protocol's transaction id (not the VMBus one) */
	sp_u32 arg0;
	sp_u32 arg1;
};

/* The completion payload a receiver sends back. */
struct sp_completion {
	sp_u16 type;		/* 0x80 | original type */
	sp_u64 tx;
	sp_u32 status;
	sp_u64 request_digest;	/* FNV-1a 64 of the original message */
};

/* What the VSP keeps per in-flight host transaction, and saves. */
struct sp_saved_tx {
	sp_u16 type;		/* SP_MSG_HOST_TRANSACTION or SP_MSG_NOTIFY */
	sp_u64 tx;
	sp_u32 length;
	sp_u32 hold_ms;
	sp_u64 digest;		/* FNV-1a 64 of the message as sent */
};

/* Why a SaveBuf record was refused; 0 means it parsed. */
enum sp_savebuf_error {
	SP_SAVEBUF_OK = 0,
	SP_SAVEBUF_BAD_SIZE = 1,
	SP_SAVEBUF_BAD_MAGIC = 2,
	SP_SAVEBUF_BAD_VERSION = 3,
	SP_SAVEBUF_BAD_TYPE = 4,
	SP_SAVEBUF_BAD_LENGTH = 5
};

/* ---- Functions (sample-protocol.c) --------------------------------------- */

/* Body byte i of transaction tx. */
sp_u8 sp_body_byte(sp_u64 tx, sp_u32 i);

/* FNV-1a 64 over len bytes; sp_fnv1a64_more continues a running digest. */
sp_u64 sp_fnv1a64(const void *data, sp_u32 len);
sp_u64 sp_fnv1a64_more(sp_u64 digest, const void *data, sp_u32 len);

/* Writes a whole message (header + patterned body) into buf. Returns 0, or -1
 * when length is outside [SP_HEADER_SIZE, SP_MAX_MESSAGE_SIZE] or does not fit
 * in capacity.
 */
int sp_encode_message(sp_u8 *buf, sp_u32 capacity, sp_u16 type, sp_u64 tx,
		      sp_u32 length, sp_u32 arg0, sp_u32 arg1);

/* Reads a header; returns 0, or -1 when fewer than SP_HEADER_SIZE bytes. */
int sp_decode_header(const sp_u8 *buf, sp_u32 delivered, struct sp_header *h);

/* Whether a received message is intact (version, length against the delivered
 * size and its ring padding, every body byte). Returns 1 or 0.
 */
int sp_is_intact(const sp_u8 *buf, sp_u32 delivered, const struct sp_header *h);

/* The status rule. */
sp_u32 sp_status_for(sp_u64 tx, int intact);

/* The digest of a received message: its first min(h->length, delivered) bytes. */
sp_u64 sp_message_digest(const sp_u8 *buf, sp_u32 delivered,
			 const struct sp_header *h);

/* Writes the SP_COMPLETION_SIZE-byte completion payload for a received message. */
void sp_encode_completion(sp_u8 out[SP_COMPLETION_SIZE], const sp_u8 *received,
			  sp_u32 delivered, const struct sp_header *h,
			  sp_u32 status);

/* The same, given the message's sp_message_digest: a driver that has already
 * digested the message for its trace passes that value, so the bytes are hashed
 * once per delivery, not twice.
 */
void sp_encode_completion_digest(sp_u8 out[SP_COMPLETION_SIZE],
				 const struct sp_header *h, sp_u32 status,
				 sp_u64 request_digest);

/* Reads a completion payload; returns 0, or -1 when it is not one. */
int sp_decode_completion(const sp_u8 *buf, sp_u32 len, struct sp_completion *c);

/* SaveBuf: writes SP_SAVEBUF_SIZE bytes / parses them back. */
void sp_savebuf_encode(sp_u8 out[SP_SAVEBUF_SIZE], const struct sp_saved_tx *s);
enum sp_savebuf_error sp_savebuf_parse(const sp_u8 *buf, sp_u32 len,
				       struct sp_saved_tx *s);

/* Trace lines are written with lab/drivers/trace-lib/vmbus_bench_trace.h, which
 * any driver can use; nothing here is about the trace.
 */

#endif /* SAMPLE_PROTOCOL_H */
