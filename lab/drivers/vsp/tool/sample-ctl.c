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
 * etl2jsonl is in etl2jsonl.c.
 */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/sample-protocol.h"
#include "../../common/sample-control.h"
#include "sample-ctl.h"

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

static FILE *open_output(const char *path)
{
	FILE *f;

	if (path == NULL)
		return stdout;
	f = fopen(path, "wb");
	if (f == NULL)
		fprintf(stderr, "sample-ctl: cannot write %s\n", path);
	return f;
}

/* ---- Driver control ------------------------------------------------------- */

static HANDLE open_driver(const char *which)
{
	const char *path = strcmp(which, "vsp") == 0 ? SAMPLE_VSP_USER_PATH :
			   strcmp(which, "guest") == 0 ? SAMPLE_GUEST_USER_PATH : NULL;
	HANDLE h;

	if (path == NULL)
		return NULL;
	h = CreateFileA(path, GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE,
			NULL, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
	if (h == INVALID_HANDLE_VALUE) {
		fprintf(stderr, "sample-ctl: cannot open %s (error %lu): is the driver installed?\n",
			path, GetLastError());
		return INVALID_HANDLE_VALUE;
	}
	return h;
}

static int run_command(HANDLE h, const char *text)
{
	DWORD returned = 0, length = (DWORD)strlen(text);

	if (length == 0 || length > SAMPLE_COMMAND_MAX) {
		fprintf(stderr, "sample-ctl: a command is 1 to %u characters\n", SAMPLE_COMMAND_MAX);
		return EXIT_INPUT;
	}
	if (!DeviceIoControl(h, IOCTL_SAMPLE_COMMAND, (LPVOID)text, length, NULL, 0, &returned,
			     NULL)) {
		DWORD error = GetLastError();

		fprintf(stderr, "sample-ctl: the driver refused \"%s\" (error %lu)\n", text, error);
		return error == ERROR_INVALID_PARAMETER ? EXIT_INPUT : EXIT_INFRA;
	}
	return EXIT_OK;
}

static int print_counters(HANDLE h)
{
	static char buffer[65536];
	DWORD returned = 0;

	if (!DeviceIoControl(h, IOCTL_SAMPLE_COUNTERS, NULL, 0, buffer, sizeof(buffer),
			     &returned, NULL)) {
		fprintf(stderr, "sample-ctl: reading counters failed (error %lu)\n", GetLastError());
		return EXIT_INFRA;
	}
	fwrite(buffer, 1, returned, stdout);
	return EXIT_OK;
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

/* ---- A channel's saved state in and out of the VSP ----------------------- */

/* The largest saved state the tool handles: far above any the sample VSP writes. */
#define STATE_MAX (256u << 20)

/* A refusal naming bad input (no such channel, a state it did not write): exit 2. */
static int refused(const char *what, DWORD error)
{
	fprintf(stderr, "sample-ctl: the VSP refused %s (error %lu)\n", what, error);
	return error == ERROR_INVALID_PARAMETER || error == ERROR_NOT_FOUND ? EXIT_INPUT :
									     EXIT_INFRA;
}

static int export_state(HANDLE h, const char *ch, const char *path)
{
	struct sample_vsp_state_ref ref;
	DWORD size = 1u << 16, returned = 0;
	char *end = NULL;
	unsigned long n = strtoul(ch, &end, 10);
	void *buffer = NULL;
	FILE *out;
	int rc;

	if (*ch < '0' || *ch > '9' || end == NULL || *end != '\0' || n > 0xffffffffu) {
		fprintf(stderr, "sample-ctl: export wants a channel number, not \"%s\"\n", ch);
		return EXIT_INPUT;
	}
	ref.ch = (unsigned int)n;
	/* The output grows until the state fits: the VSP answers "too small" until then. */
	for (;;) {
		void *bigger = realloc(buffer, size);

		if (bigger == NULL) {
			free(buffer);
			fputs("sample-ctl: out of memory\n", stderr);
			return EXIT_INFRA;
		}
		buffer = bigger;
		if (DeviceIoControl(h, IOCTL_SAMPLE_VSP_EXPORT, &ref, sizeof(ref), buffer, size,
				    &returned, NULL))
			break;
		if (GetLastError() != ERROR_INSUFFICIENT_BUFFER || size >= STATE_MAX) {
			rc = refused("the export (is the channel saved?)", GetLastError());
			free(buffer);
			return rc;
		}
		size *= 2;
	}
	out = open_output(path);
	if (out == NULL) {
		free(buffer);
		return EXIT_INPUT;
	}
	rc = fwrite(buffer, 1, returned, out) == returned ? EXIT_OK : EXIT_INFRA;
	if (rc != EXIT_OK)
		fprintf(stderr, "sample-ctl: writing %s failed\n", path);
	fclose(out);
	free(buffer);
	return rc;
}

static int import_state(HANDLE h, const char *path)
{
	FILE *in = fopen(path, "rb");
	size_t used = 0, capacity = 0, got;
	DWORD returned = 0;
	char *buffer = NULL;
	int rc = EXIT_OK;

	if (in == NULL) {
		fprintf(stderr, "sample-ctl: cannot read %s\n", path);
		return EXIT_INPUT;
	}
	do {
		if (used == capacity) {
			char *bigger = capacity >= STATE_MAX ? NULL :
				       (char *)realloc(buffer, capacity ? capacity * 2 : 1u << 16);

			if (bigger == NULL) {
				fprintf(stderr, "sample-ctl: %s is larger than a saved state can be\n",
					path);
				rc = EXIT_INPUT;
				break;
			}
			buffer = bigger;
			capacity = capacity ? capacity * 2 : 1u << 16;
		}
		got = fread(buffer + used, 1, capacity - used, in);
		used += got;
	} while (got > 0);
	fclose(in);
	if (rc == EXIT_OK && used < sizeof(struct sample_vsp_state)) {
		fprintf(stderr, "sample-ctl: %s is not a saved state (%u bytes)\n", path,
			(unsigned int)used);
		rc = EXIT_INPUT;
	}
	if (rc == EXIT_OK && !DeviceIoControl(h, IOCTL_SAMPLE_VSP_IMPORT, buffer, (DWORD)used,
					      NULL, 0, &returned, NULL))
		rc = refused("the import", GetLastError());
	free(buffer);
	return rc;
}

int main(int argc, char **argv)
{
	HANDLE h;
	FILE *out;
	int rc;

	if (argc >= 3 && strcmp(argv[1], "etl2jsonl") == 0 && argc <= 4) {
		out = open_output(argc == 4 ? argv[3] : NULL);
		if (out == NULL)
			return EXIT_INPUT;
		rc = etl_to_jsonl(argv[2], out);
		if (out != stdout)
			fclose(out);
		return rc;
	}
	if (argc < 3)
		return usage();
	h = open_driver(argv[1]);
	if (h == NULL)
		return usage();
	if (h == INVALID_HANDLE_VALUE)
		return EXIT_INFRA;
	if (strcmp(argv[2], "command") == 0 && argc == 4) {
		rc = run_command(h, argv[3]);
	} else if (strcmp(argv[2], "counters") == 0 && argc == 3) {
		rc = print_counters(h);
	} else if (strcmp(argv[2], "export") == 0 && strcmp(argv[1], "vsp") == 0 && argc == 5) {
		rc = export_state(h, argv[3], argv[4]);
	} else if (strcmp(argv[2], "import") == 0 && strcmp(argv[1], "vsp") == 0 && argc == 4) {
		rc = import_state(h, argv[3]);
	} else if (strcmp(argv[2], "trace") == 0 && strcmp(argv[1], "guest") == 0 && argc <= 4) {
		out = open_output(argc == 4 ? argv[3] : NULL);
		rc = out == NULL ? EXIT_INPUT : read_guest_trace(h, out);
		if (out != NULL && out != stdout)
			fclose(out);
	} else {
		rc = usage();
	}
	CloseHandle(h);
	return rc;
}
