/* SPDX-License-Identifier: MIT */
/*
 * The control command language of the sample drivers, parsed without any
 * library so the same code runs in the Windows drivers (which have no sscanf)
 * and in the host-side tests. The Linux guest's debugfs "control" file accepts
 * the guest subset of the same language.
 *
 * Grammar (tokens separated by spaces; numbers decimal unless 0x-prefixed):
 *
 *   guest and host
 *     notify COUNT LEN [ch=N]            Notifies, no completion
 *     release [ch=N]                     complete every held packet now
 *     trace-clear                        empty the trace buffer (guests)
 *   guest only
 *     send COUNT LEN MODE HOLD [ch=N]    Requests; MODE 0 inline, 1 deferred, 2 held
 *     hold auto|MS                       guest hold of HostTransactions: as sent, or MS
 *   host (VSP) only
 *     open N GUID loopback|handle=H [ring-pages=P] [force-new-channel]
 *                                        offer channel number N, instance GUID;
 *                                        force-new-channel adds KMCL's
 *                                        FORCE_NEW_CHANNEL init flag; on a
 *                                        rescinded N: offer its new instance
 *     transact COUNT LEN HOLD [ch=N]     HostTransactions the guest holds HOLD ms
 *     save ch=N                          pause, SaveBegin/Continue/End into memory
 *     pause ch=N                         pause the channel only (no save)
 *     restore ch=N                       new channel object from the saved state
 *     resume ch=N                        start the paused channel again
 *     close ch=N                         disable and clean up the channel
 *     detach ch=N                        after save: give up the object, keep the state
 *     discard ch=N                       the VM went unsaved: give up the object untraced
 *     rescind ch=N                       revoke the offer: end what is outstanding
 *                                        (pkt.cancel), disable, clean up; `open`
 *                                        offers the new instance
 */
#ifndef SAMPLE_COMMAND_H
#define SAMPLE_COMMAND_H

#include "sample-protocol.h"

enum sample_verb {
	SAMPLE_CMD_SEND,
	SAMPLE_CMD_NOTIFY,
	SAMPLE_CMD_RELEASE,
	SAMPLE_CMD_TRACE_CLEAR,
	SAMPLE_CMD_HOLD,
	SAMPLE_CMD_OPEN,
	SAMPLE_CMD_TRANSACT,
	SAMPLE_CMD_SAVE,
	SAMPLE_CMD_RESTORE,
	SAMPLE_CMD_RESUME,
	SAMPLE_CMD_CLOSE,
	SAMPLE_CMD_DETACH,
	SAMPLE_CMD_PAUSE,
	SAMPLE_CMD_DISCARD,
	SAMPLE_CMD_RESCIND
};

struct sample_command {
	enum sample_verb verb;
	sp_u32 count;		/* send, notify, transact */
	sp_u32 length;		/* send, notify, transact: message length */
	sp_u32 mode;		/* send: SP_MODE_* */
	sp_u32 hold_ms;		/* send: VSP hold; transact: guest hold; hold: the override */
	int hold_auto;		/* hold auto */
	int has_ch;		/* ch=N given (or open's N); otherwise: all channels */
	sp_u32 ch;
	sp_u8 instance[16];	/* open: the GUID in memory layout (Data1..3 little-endian) */
	int loopback;		/* open ... loopback */
	int force_new_channel;	/* open ... force-new-channel */
	sp_u64 handle;		/* open ... handle=H: a VMBus handle in the caller's process */
	sp_u32 ring_pages;	/* open ... ring-pages=P, default SP_DEFAULT_RING_PAGES */
};

/* Parses one command of len bytes (no NUL needed). Returns 0, or -1 when the
 * text is not a valid command; then nothing may be done.
 */
int sample_parse_command(const char *text, sp_u32 len, struct sample_command *out);

/* Writes "name=value name=value ...\n" for n counters. Returns the length
 * written, or 0 when it does not fit in capacity (nothing useful is written).
 */
sp_u32 sample_format_counters(char *out, sp_u32 capacity, const char *const *names,
			      const sp_u64 *values, sp_u32 n);

#endif /* SAMPLE_COMMAND_H */
