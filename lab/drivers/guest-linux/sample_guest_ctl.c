// SPDX-License-Identifier: GPL-2.0
/*
 * The sample guest driver's control commands, in debugfs:
 *
 *   /sys/kernel/debug/vmbus_sample_guest/control   write one command per write
 *   /sys/kernel/debug/vmbus_sample_guest/trace     read: the JSON Lines trace
 *   /sys/kernel/debug/vmbus_sample_guest/counters  read: one line per channel
 *
 * The files and the module-wide trace buffer are the bench's guest helper
 * (common/guest-debugfs.h); this file runs the guest subset of the drivers'
 * command language on them. The bench drives it over SSH (lab/drivers/README.md
 * lists the commands).
 */
#include <linux/kernel.h>

#include "sample_guest.h"
#include "sample-command.h"

void sg_trace_state(struct sg_channel *sgc, const char *state)
{
	struct vbt_event ev = {
		.kind = VBT_CH_STATE, .ch = sgc->ch, .state = state,
	};

	vgd_trace(&ev);
}

/* The guest subset of the drivers' command language (common/sample-command.h). */
static int sg_run_command(const char *line, size_t len)
{
	struct sample_command cmd;
	long ch;

	if (sample_parse_command(line, len, &cmd))
		return -EINVAL;
	ch = cmd.has_ch ? (long)cmd.ch : -1;
	switch (cmd.verb) {
	case SAMPLE_CMD_SEND:
		return sg_send_requests(cmd.count, cmd.length, cmd.mode, cmd.hold_ms, ch);
	case SAMPLE_CMD_NOTIFY:
		return sg_send_notifies(cmd.count, cmd.length, ch);
	case SAMPLE_CMD_HOLD:
		sg_set_hold_override(cmd.hold_auto ? -1 : (long)cmd.hold_ms);
		return 0;
	case SAMPLE_CMD_RELEASE:
		sg_release_held(ch);
		return 0;
	case SAMPLE_CMD_TRACE_CLEAR:
		vgd_trace_clear();
		return 0;
	default:
		return -EOPNOTSUPP; /* open, transact, save, ... belong to the VSP */
	}
}

static const struct vgd_driver sg_debugfs_driver = {
	.run_command = sg_run_command,
	.print_counters = sg_print_counters,
};

int sg_ctl_init(void)
{
	return vgd_init(&sg_debugfs_driver);
}

void sg_ctl_exit(void)
{
	vgd_exit();
}
