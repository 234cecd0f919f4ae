/* SPDX-License-Identifier: MIT */
/*
 * The control-device half of a bench control tool (control-tool.h): the same
 * DeviceIoControl calls and the same exit-code rules for every device, the IOCTL codes
 * given by the tool. The ETW half is etl2jsonl.c.
 */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control-tool.h"

const char *ctl_tool_name = "control-tool";

FILE *ctl_open_output(const char *path)
{
	FILE *f;

	if (path == NULL)
		return stdout;
	f = fopen(path, "wb");
	if (f == NULL)
		fprintf(stderr, "%s: cannot write %s\n", ctl_tool_name, path);
	return f;
}

HANDLE ctl_open_device(const char *path)
{
	HANDLE h = CreateFileA(path, GENERIC_READ | GENERIC_WRITE,
			       FILE_SHARE_READ | FILE_SHARE_WRITE, NULL, OPEN_EXISTING,
			       FILE_ATTRIBUTE_NORMAL, NULL);

	if (h == INVALID_HANDLE_VALUE)
		fprintf(stderr, "%s: cannot open %s (error %lu): is the driver installed?\n",
			ctl_tool_name, path, GetLastError());
	return h;
}

int ctl_command(HANDLE h, DWORD ioctl, const char *text, unsigned int max)
{
	DWORD returned = 0, length = (DWORD)strlen(text);

	if (length == 0 || length > max) {
		fprintf(stderr, "%s: a command is 1 to %u characters\n", ctl_tool_name, max);
		return EXIT_INPUT;
	}
	if (!DeviceIoControl(h, ioctl, (LPVOID)text, length, NULL, 0, &returned, NULL)) {
		DWORD error = GetLastError();

		fprintf(stderr, "%s: the driver refused \"%s\" (error %lu)\n", ctl_tool_name, text,
			error);
		return error == ERROR_INVALID_PARAMETER ? EXIT_INPUT : EXIT_INFRA;
	}
	return EXIT_OK;
}

int ctl_counters(HANDLE h, DWORD ioctl)
{
	static char buffer[65536];
	DWORD returned = 0;

	if (!DeviceIoControl(h, ioctl, NULL, 0, buffer, sizeof(buffer), &returned, NULL)) {
		fprintf(stderr, "%s: reading counters failed (error %lu)\n", ctl_tool_name,
			GetLastError());
		return EXIT_INFRA;
	}
	fwrite(buffer, 1, returned, stdout);
	return EXIT_OK;
}

/* A decimal channel number into *ch; EXIT_INPUT and a message when `text` is not one. */
static int channel_number(const char *text, unsigned int *ch)
{
	char *end = NULL;
	unsigned long n = strtoul(text, &end, 10);

	if (*text < '0' || *text > '9' || end == NULL || *end != '\0' || n > 0xffffffffu) {
		fprintf(stderr, "%s: export wants a channel number, not \"%s\"\n", ctl_tool_name,
			text);
		return EXIT_INPUT;
	}
	*ch = (unsigned int)n;
	return EXIT_OK;
}

/* A refusal naming bad input (no such channel, a state it did not write): exit 2. */
static int refused(const char *what, DWORD error)
{
	fprintf(stderr, "%s: the VSP refused %s (error %lu)\n", ctl_tool_name, what, error);
	return error == ERROR_INVALID_PARAMETER || error == ERROR_NOT_FOUND ? EXIT_INPUT :
									     EXIT_INFRA;
}

int ctl_export_state(HANDLE h, DWORD ioctl, const char *ch_text, const char *path)
{
	DWORD size = 1u << 16, returned = 0;
	unsigned int ch;
	void *buffer = NULL;
	FILE *out;
	int rc = channel_number(ch_text, &ch);

	if (rc != EXIT_OK)
		return rc;
	for (;;) {
		void *bigger = realloc(buffer, size);

		if (bigger == NULL) {
			free(buffer);
			fprintf(stderr, "%s: out of memory\n", ctl_tool_name);
			return EXIT_INFRA;
		}
		buffer = bigger;
		if (DeviceIoControl(h, ioctl, &ch, sizeof(ch), buffer, size, &returned, NULL))
			break;
		if (GetLastError() != ERROR_INSUFFICIENT_BUFFER || size >= CTL_STATE_MAX) {
			rc = refused("the export (is the channel saved?)", GetLastError());
			free(buffer);
			return rc;
		}
		size *= 2;
	}
	out = ctl_open_output(path);
	if (out == NULL) {
		free(buffer);
		return EXIT_INPUT;
	}
	rc = fwrite(buffer, 1, returned, out) == returned ? EXIT_OK : EXIT_INFRA;
	if (rc != EXIT_OK)
		fprintf(stderr, "%s: writing %s failed\n", ctl_tool_name, path);
	fclose(out);
	free(buffer);
	return rc;
}

int ctl_import_state(HANDLE h, DWORD ioctl, const char *path, size_t min_size)
{
	FILE *in = fopen(path, "rb");
	size_t used = 0, capacity = 0, got;
	DWORD returned = 0;
	char *buffer = NULL;
	int rc = EXIT_OK;

	if (in == NULL) {
		fprintf(stderr, "%s: cannot read %s\n", ctl_tool_name, path);
		return EXIT_INPUT;
	}
	do {
		if (used == capacity) {
			char *bigger = capacity >= CTL_STATE_MAX ? NULL :
				       (char *)realloc(buffer, capacity ? capacity * 2 : 1u << 16);

			if (bigger == NULL) {
				fprintf(stderr, "%s: %s is larger than a saved state can be\n",
					ctl_tool_name, path);
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
	if (rc == EXIT_OK && used < min_size) {
		fprintf(stderr, "%s: %s is not a saved state (%u bytes)\n", ctl_tool_name, path,
			(unsigned int)used);
		rc = EXIT_INPUT;
	}
	if (rc == EXIT_OK &&
	    !DeviceIoControl(h, ioctl, buffer, (DWORD)used, NULL, 0, &returned, NULL))
		rc = refused("the import", GetLastError());
	free(buffer);
	return rc;
}
