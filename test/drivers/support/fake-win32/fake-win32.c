/*
 * A fake of the few Win32 and ETW calls a bench control tool makes (lab/drivers/tool-lib),
 * so the tool's own logic runs on Linux: the argument checks, what reaches the driver's
 * IOCTLs, the output and the exit codes (test/drivers/control-tool.test.ts). Built
 * against the stand-in headers, as the tool is. It stands for nothing of Windows beyond
 * the documented call shapes and error codes; the "driver" is this file's:
 *
 *   FAKE_NO_DEVICE      set: CreateFileA fails (error 2, the device is not there)
 *   FAKE_LOG            a file each DeviceIoControl appends "ioctl=0xCODE in=BYTES" to
 *   FAKE_REFUSE         an error code every IOCTL fails with (87: the driver refused it)
 *   FAKE_COUNTERS       the counters IOCTL's output text
 *   FAKE_STATE_SIZE     an export's size: ERROR_INSUFFICIENT_BUFFER until the output fits
 */
#include <windows.h>
#include <evntrace.h>
#include <tdh.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *getenv(const char *name);

static DWORD last_error;
static int device;

HANDLE WINAPI CreateFileA(LPCSTR name, DWORD access, DWORD share, LPSECURITY_ATTRIBUTES sa,
			  DWORD disposition, DWORD flags, HANDLE template_file)
{
	(void)name; (void)access; (void)share; (void)sa; (void)disposition; (void)flags;
	(void)template_file;
	if (getenv("FAKE_NO_DEVICE") != NULL) {
		last_error = 2; /* ERROR_FILE_NOT_FOUND */
		return INVALID_HANDLE_VALUE;
	}
	return &device;
}

BOOL WINAPI DeviceIoControl(HANDLE h, DWORD code, LPVOID in, DWORD in_size, LPVOID out,
			    DWORD out_size, LPDWORD returned, LPOVERLAPPED overlapped)
{
	const char *log = getenv("FAKE_LOG"), *refuse = getenv("FAKE_REFUSE");
	const char *counters = getenv("FAKE_COUNTERS"), *state = getenv("FAKE_STATE_SIZE");
	DWORD i;

	(void)overlapped;
	if (h != &device)
		return FALSE;
	if (log != NULL) {
		FILE *f = fopen(log, "ab");

		fprintf(f, "ioctl=0x%lx in=", (unsigned long)code);
		for (i = 0; i < in_size; i++)
			fprintf(f, "%02x", ((unsigned char *)in)[i]);
		fprintf(f, " out=%lu\n", (unsigned long)out_size);
		fclose(f);
	}
	*returned = 0;
	if (refuse != NULL) {
		last_error = strtoul(refuse, NULL, 10);
		return FALSE;
	}
	if (counters != NULL && out_size > 0 && in_size == 0) {
		*returned = (DWORD)strlen(counters);
		memcpy(out, counters, *returned);
	} else if (state != NULL) {
		DWORD size = strtoul(state, NULL, 10);

		if (out_size < size) {
			last_error = ERROR_INSUFFICIENT_BUFFER;
			return FALSE;
		}
		memset(out, 'S', size);
		*returned = size;
	}
	return TRUE;
}

BOOL WINAPI CloseHandle(HANDLE h)
{
	return h == &device;
}

DWORD WINAPI GetLastError(void)
{
	return last_error;
}

/* No capture can be opened here: etl2jsonl's own logic is the trace library's, tested apart. */
PROCESSTRACE_HANDLE WINAPI OpenTraceA(PEVENT_TRACE_LOGFILEA logfile)
{
	(void)logfile;
	last_error = 2;
	return INVALID_PROCESSTRACE_HANDLE;
}

ULONG WINAPI ProcessTrace(PROCESSTRACE_HANDLE *handles, ULONG count, FILETIME *start,
			  FILETIME *end)
{
	(void)handles; (void)count; (void)start; (void)end;
	return 1;
}

ULONG WINAPI CloseTrace(PROCESSTRACE_HANDLE h)
{
	(void)h;
	return 0;
}

ULONG WINAPI TdhGetEventInformation(PEVENT_RECORD e, ULONG n, PTDH_CONTEXT c,
				    PTRACE_EVENT_INFO info, PULONG size)
{
	(void)e; (void)n; (void)c; (void)info; (void)size;
	return 1;
}

ULONG WINAPI TdhGetPropertySize(PEVENT_RECORD e, ULONG n, PTDH_CONTEXT c, ULONG count,
				PPROPERTY_DATA_DESCRIPTOR d, PULONG size)
{
	(void)e; (void)n; (void)c; (void)count; (void)d; (void)size;
	return 1;
}

ULONG WINAPI TdhGetProperty(PEVENT_RECORD e, ULONG n, PTDH_CONTEXT c, ULONG count,
			    PPROPERTY_DATA_DESCRIPTOR d, ULONG size, PBYTE out)
{
	(void)e; (void)n; (void)c; (void)count; (void)d; (void)size; (void)out;
	return 1;
}
