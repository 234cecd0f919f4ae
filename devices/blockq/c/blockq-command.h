/* SPDX-License-Identifier: MIT */
/*
 * blockq's command language: the VSP's, one command per IOCTL_BLOCKQ_COMMAND, and the
 * guest driver's, one command per write to its debugfs control file. Tokens separated
 * by spaces; numbers decimal or 0x-hex. Each driver runs its own verbs and refuses
 * the other's.
 *
 * The VSP's:
 *   open N GUID loopback|handle=H [ring-pages=P]
 *                                        offer channel N, instance GUID: a loopback
 *                                        offer, or into the VM whose VMBus handle H the
 *                                        caller holds (a lab's handle broker, lab/SETUP.md)
 *   event COUNT LEN HOLD ch=N            Events the guest answers HOLD ms or more later
 *   note COUNT LEN ch=N                  Notes, no reply
 *   answer [ch=N]                        answer every outstanding request now
 *   save ch=N                            pause, SaveBegin/Continue/End into memory
 *   detach ch=N                          after save: give up the object, keep the state
 *   discard ch=N                         the VM went unsaved: give up the object untraced
 *   restore ch=N                         a new channel object from the saved state
 *   resume ch=N                          offer a restored object, or start a paused one
 *   close ch=N                           disable and clean up
 *   rescind ch=N                         revoke the offer (what is in flight ends
 *                                        cancelled); `open` with the same GUID offers
 *                                        the new instance, numbering on
 *
 * The guest driver's (guest-linux/):
 *   request COUNT LEN MODE HOLD ch=N     Requests; MODE 0 inline, 1 deferred, 2 hold
 *                                        (the VSP answers HOLD ms or more later)
 *   note COUNT LEN ch=N                  Notes, no reply
 *   answer [ch=N]                        answer every held Event now
 *   trace-clear                          empty the trace buffer (seq goes on)
 */
#ifndef BLOCKQ_COMMAND_H
#define BLOCKQ_COMMAND_H

#include "blockq-protocol.h"

enum bq_verb {
	BQ_CMD_OPEN,
	BQ_CMD_EVENT,
	BQ_CMD_NOTE,
	BQ_CMD_ANSWER,
	BQ_CMD_SAVE,
	BQ_CMD_DETACH,
	BQ_CMD_DISCARD,
	BQ_CMD_RESTORE,
	BQ_CMD_RESUME,
	BQ_CMD_CLOSE,
	BQ_CMD_REQUEST,
	BQ_CMD_TRACE_CLEAR,
	BQ_CMD_RESCIND
};

struct bq_command {
	enum bq_verb verb;
	bq_u32 count;
	bq_u32 length;
	bq_u32 hold_ms;
	bq_u32 mode;		/* request: BQ_MODE_* */
	int has_ch;
	bq_u32 ch;
	bq_u8 instance[16];	/* open: the GUID in memory layout */
	bq_u32 ring_pages;	/* open: default 4 */
	int loopback;		/* open: 1 a loopback offer, 0 by `handle` */
	bq_u64 handle;		/* open: the caller's VMBus handle (not 0), when not loopback */
};

/* 0, or -1 when the text is not a valid command (then nothing may be done). */
int bq_parse_command(const char *text, bq_u32 len, struct bq_command *out);

/* Appends "name=value ...\n"; the length written, or 0 when it does not fit. */
bq_u32 bq_format_counters(char *out, bq_u32 capacity, const char *const *names,
			  const bq_u64 *values, bq_u32 n);

#endif /* BLOCKQ_COMMAND_H */
