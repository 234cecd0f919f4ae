/* SPDX-License-Identifier: MIT */
/*
 * blockq-ctl: the bench's hands on blockq's VSP on a Windows host (blockq's
 * DeviceControl `tool`, devices/blockq/control.ts).
 *
 *   blockq-ctl vsp command "TEXT"       one control command (blockq-command.h: grammar)
 *   blockq-ctl vsp counters             trace_seq=N, then one line per channel
 *   blockq-ctl vsp export N OUT         channel N's saved state (after `save ch=N`)
 *                                       into the file OUT (IOCTL_BLOCKQ_EXPORT)
 *   blockq-ctl vsp import IN            a saved state from the file IN becomes its
 *                                       channel's (IOCTL_BLOCKQ_IMPORT)
 *   blockq-ctl etl2jsonl IN.etl [OUT]   the VSP's ETW capture as JSON Lines
 *
 * blockq has no Windows guest driver, so there is no `guest` side: asked for one, the
 * tool says so (exit 2). OUT defaults to standard output. Exit codes as the bench's:
 * 0 done, 2 bad usage or input, 3 the driver or ETW could not be reached.
 *
 * Everything but blockq's device path, IOCTLs and provider is the bench's tool
 * library (lab/drivers/tool-lib), which sample-ctl uses too.
 */
#include <windows.h>
#include <stdio.h>
#include <string.h>

#include "../blockq-control.h"
#include <control-tool.h>

static int usage(void)
{
	fputs("usage: blockq-ctl vsp command \"TEXT\"\n"
	      "       blockq-ctl vsp counters\n"
	      "       blockq-ctl vsp export N OUT\n"
	      "       blockq-ctl vsp import IN\n"
	      "       blockq-ctl etl2jsonl IN.etl [OUT]\n", stderr);
	return EXIT_INPUT;
}

CTL_STATE_REF_IS_CHANNEL(struct blockq_state_ref);

int main(int argc, char **argv)
{
	static const GUID provider = CTL_GUID(BLOCKQ_VSP_PROVIDER_GUID_FIELDS);
	HANDLE h;
	int rc;

	ctl_tool_name = "blockq-ctl";
	if (argc >= 3 && strcmp(argv[1], "etl2jsonl") == 0 && argc <= 4)
		return ctl_etl2jsonl(argv[2], argc == 4 ? argv[3] : NULL, &provider,
				     BLOCKQ_VSP_PROVIDER_NAME);
	if (argc >= 2 && strcmp(argv[1], "guest") == 0) {
		fputs("blockq-ctl: blockq has no Windows guest driver (its guest is the Linux "
		      "module, driven through its debugfs control file)\n", stderr);
		return EXIT_INPUT;
	}
	if (argc < 3 || strcmp(argv[1], "vsp") != 0)
		return usage();
	h = ctl_open_device(BLOCKQ_VSP_USER_PATH);
	if (h == INVALID_HANDLE_VALUE)
		return EXIT_INFRA;
	if (strcmp(argv[2], "command") == 0 && argc == 4)
		rc = ctl_command(h, IOCTL_BLOCKQ_COMMAND, argv[3], BLOCKQ_COMMAND_MAX);
	else if (strcmp(argv[2], "counters") == 0 && argc == 3)
		rc = ctl_counters(h, IOCTL_BLOCKQ_COUNTERS);
	else if (strcmp(argv[2], "export") == 0 && argc == 5)
		rc = ctl_export_state(h, IOCTL_BLOCKQ_EXPORT, argv[3], argv[4]);
	else if (strcmp(argv[2], "import") == 0 && argc == 4)
		rc = ctl_import_state(h, IOCTL_BLOCKQ_IMPORT, argv[3], sizeof(struct blockq_state));
	else
		rc = usage();
	CloseHandle(h);
	return rc;
}
