/*
 * sample-ctl: the bench's hands on the Windows sample drivers.
 *
 *   sample-ctl vsp|guest command "TEXT"     one control command (README: grammar)
 *   sample-ctl vsp|guest counters           the counters, one line per channel
 *                                           (the VSP's start with trace_seq=N)
 *   sample-ctl guest trace [OUT]            the guest's JSON Lines trace
 *   sample-ctl vsp export N OUT             channel N's saved state (after `save
 *                                           ch=N`) into the file OUT, as the VSP
 *                                           writes it (IOCTL_SAMPLE_VSP_EXPORT)
 *   sample-ctl vsp import IN                a saved state from the file IN becomes
 *                                           its channel's (IOCTL_SAMPLE_VSP_IMPORT);
 *                                           `restore ch=N` then restores from it
 *   sample-ctl etl2jsonl IN.etl [OUT]       the VSP's ETW trace as JSON Lines
 *
 * OUT defaults to standard output. Exit codes follow the bench: 0 done,
 * 2 bad usage or bad input (an unreadable .etl, a command the driver refused as
 * malformed), 3 the driver or ETW could not be reached. Error text goes to
 * standard error and names what failed, so the lab layer can report it as is.
 *
 * What any device's tool does alike (open, command, counters, export, import,
 * etl2jsonl) is lab/drivers/tool-lib; this file holds the sample's own: its device
 * paths, IOCTLs and provider, and the guest driver's trace read.
 */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/sample-control.h"
#include "../../tool-lib/control-tool.h"

static int usage(void)
{
	fputs("usage: sample-ctl vsp|guest command \"TEXT\"\n"
	      "       sample-ctl vsp|guest counters\n"
	      "       sample-ctl guest trace [OUT]\n"
	      "       sample-ctl vsp export N OUT\n"
	      "       sample-ctl vsp import IN\n"
	      "       sample-ctl etl2jsonl IN.etl [OUT]\n", stderr);
	return EXIT_INPUT;
}

static int read_guest_trace(HANDLE h, FILE *out)
{
	static char buffer[1 << 16];
	struct sample_trace_read request = { 0 };
	DWORD returned;

	for (;;) {
		if (!DeviceIoControl(h, IOCTL_SAMPLE_READ_TRACE, &request, sizeof(request), buffer,
				     sizeof(buffer), &returned, NULL)) {
			fprintf(stderr, "sample-ctl: reading the trace failed (error %lu)\n",
				GetLastError());
			return EXIT_INFRA;
		}
		if (returned == 0)
			return EXIT_OK;
		fwrite(buffer, 1, returned, out);
		request.offset += returned;
	}
}

CTL_STATE_REF_IS_CHANNEL(struct sample_vsp_state_ref);

int main(int argc, char **argv)
{
	static const GUID provider = CTL_GUID(SAMPLE_VSP_PROVIDER_GUID_FIELDS);
	const char *path;
	HANDLE h;
	FILE *out;
	int rc;

	ctl_tool_name = "sample-ctl";
	if (argc >= 3 && strcmp(argv[1], "etl2jsonl") == 0 && argc <= 4)
		return ctl_etl2jsonl(argv[2], argc == 4 ? argv[3] : NULL, &provider,
				     SAMPLE_VSP_PROVIDER_NAME);
	if (argc < 3)
		return usage();
	path = strcmp(argv[1], "vsp") == 0 ? SAMPLE_VSP_USER_PATH :
	       strcmp(argv[1], "guest") == 0 ? SAMPLE_GUEST_USER_PATH : NULL;
	if (path == NULL)
		return usage();
	h = ctl_open_device(path);
	if (h == INVALID_HANDLE_VALUE)
		return EXIT_INFRA;
	if (strcmp(argv[2], "command") == 0 && argc == 4) {
		rc = ctl_command(h, IOCTL_SAMPLE_COMMAND, argv[3], SAMPLE_COMMAND_MAX);
	} else if (strcmp(argv[2], "counters") == 0 && argc == 3) {
		rc = ctl_counters(h, IOCTL_SAMPLE_COUNTERS);
	} else if (strcmp(argv[2], "export") == 0 && strcmp(argv[1], "vsp") == 0 && argc == 5) {
		rc = ctl_export_state(h, IOCTL_SAMPLE_VSP_EXPORT, argv[3], argv[4]);
	} else if (strcmp(argv[2], "import") == 0 && strcmp(argv[1], "vsp") == 0 && argc == 4) {
		rc = ctl_import_state(h, IOCTL_SAMPLE_VSP_IMPORT, argv[3],
				      sizeof(struct sample_vsp_state));
	} else if (strcmp(argv[2], "trace") == 0 && strcmp(argv[1], "guest") == 0 && argc <= 4) {
		out = ctl_open_output(argc == 4 ? argv[3] : NULL);
		rc = out == NULL ? EXIT_INPUT : read_guest_trace(h, out);
		if (out != NULL && out != stdout)
			fclose(out);
	} else {
		rc = usage();
	}
	CloseHandle(h);
	return rc;
}
