// SPDX-License-Identifier: GPL-2.0
/*
 * blockq's guest driver's control commands, in debugfs:
 *
 *   /sys/kernel/debug/vmbus_blockq_guest/control   write one command per write
 *   /sys/kernel/debug/vmbus_blockq_guest/trace     read: the JSON Lines trace
 *   /sys/kernel/debug/vmbus_blockq_guest/counters  read: trace_seq, then one line per channel
 *
 * The files and the module-wide trace buffer are the bench's guest helper
 * (lab/drivers/common/guest-debugfs.h). The commands are blockq's command language
 * (../blockq-command.h): request, note, answer and trace-clear; the VSP's verbs are
 * refused (-EOPNOTSUPP).
 */
#include <linux/kernel.h>

#include "bq_guest.h"
#include "blockq-command.h"

void bqg_trace_state(struct bqg_channel *c, const char *state)
{
	struct vbt_event ev = {
		.kind = VBT_CH_STATE, .ch = c->ch, .state = state,
	};

	vgd_trace(&ev);
}

/* The guest's verbs of blockq's command language (../blockq-command.h). */
static int bqg_run_command(const char *line, size_t len)
{
	struct bq_command cmd;
	long ch;

	if (bq_parse_command(line, len, &cmd))
		return -EINVAL;
	ch = cmd.has_ch ? (long)cmd.ch : -1;
	switch (cmd.verb) {
	case BQ_CMD_REQUEST:
		return bqg_send_requests(cmd.count, cmd.length, cmd.mode, cmd.hold_ms, ch);
	case BQ_CMD_NOTE:
		return bqg_send_notes(cmd.count, cmd.length, ch);
	case BQ_CMD_ANSWER:
		bqg_answer_now(ch);
		return 0;
	case BQ_CMD_TRACE_CLEAR:
		vgd_trace_clear();
		return 0;
	default:
		return -EOPNOTSUPP; /* open, event, save, rescind, ... belong to the VSP */
	}
}

static const struct vgd_driver bqg_debugfs_driver = {
	.run_command = bqg_run_command,
	.print_counters = bqg_print_counters,
};

int bqg_ctl_init(void)
{
	return vgd_init(&bqg_debugfs_driver);
}

void bqg_ctl_exit(void)
{
	vgd_exit();
}
