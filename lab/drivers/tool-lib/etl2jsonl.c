/* SPDX-License-Identifier: MIT */
/*
 * A control tool's etl2jsonl (sample-ctl's, blockq-ctl's): a VSP's ETW capture as
 * trace-schema JSON Lines.
 *
 * Reads the events of the VSP's TraceLogging provider (the tool names it) with TDH,
 * by field name (a VSP writing through the trace library names every field as the
 * schema does: vbt_tracelogging_write), and writes each through the trace library's
 * formatter (vbt_format_line), sorted by the seq the VSP assigned. It refuses, rather than write a trace with holes, a
 * capture with events it cannot decode or with a repeated seq.
 *
 * UNVERIFIED (no .etl from the real VSP exists yet): that TDH reports a
 * TraceLogging event's name as its task name, with the event name as fallback.
 */
#include <windows.h>
#include <evntrace.h>
#include <evntcons.h>
#include <tdh.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../trace-lib/vmbus_bench_trace.h"
#include "control-tool.h"

/* ---- etl2jsonl ------------------------------------------------------------ */

struct line {
	ULONGLONG seq;
	char *text;
};

struct conversion {
	GUID provider;
	struct line *lines;
	size_t count, capacity;
	unsigned long undecodable;	/* events of our provider we could not read */
	int out_of_memory;
};

static struct conversion conv;

static int read_property(PEVENT_RECORD rec, const WCHAR *name, void *out, ULONG size,
			 ULONG *actual)
{
	PROPERTY_DATA_DESCRIPTOR d;
	ULONG needed = 0;

	d.PropertyName = (ULONGLONG)(ULONG_PTR)name;
	d.ArrayIndex = 0xffffffffUL; /* not an array */
	d.Reserved = 0;
	if (TdhGetPropertySize(rec, 0, NULL, 1, &d, &needed) != ERROR_SUCCESS || needed > size)
		return -1;
	if (TdhGetProperty(rec, 0, NULL, 1, &d, needed, (PBYTE)out) != ERROR_SUCCESS)
		return -1;
	if (actual != NULL)
		*actual = needed;
	return 0;
}

static int read_u64(PEVENT_RECORD rec, const WCHAR *name, vbt_u64 *out)
{
	ULONG got = 0;

	*out = 0;
	return read_property(rec, name, out, sizeof(*out), &got) == 0 && got == 8 ? 0 : -1;
}

static int read_u32(PEVENT_RECORD rec, const WCHAR *name, vbt_u32 *out)
{
	ULONG got = 0;

	*out = 0;
	return read_property(rec, name, out, sizeof(*out), &got) == 0 && got == 4 ? 0 : -1;
}

/* An ANSI string field (TraceLoggingString), NUL-terminated into out. */
static int read_text(PEVENT_RECORD rec, const WCHAR *name, char *out, ULONG size)
{
	ULONG got = 0;

	if (read_property(rec, name, out, size - 1, &got) != 0)
		return -1;
	out[got] = '\0';
	return 0;
}

/* The schema event name of a TraceLogging event (its name is the TDH task name). */
static int event_kind(PEVENT_RECORD rec, enum vbt_kind *kind)
{
	static unsigned char info_buffer[8192];
	PTRACE_EVENT_INFO info = (PTRACE_EVENT_INFO)info_buffer;
	ULONG size = sizeof(info_buffer), offset;
	const WCHAR *wide;
	char name[32];
	int i, k;

	if (TdhGetEventInformation(rec, 0, NULL, info, &size) != ERROR_SUCCESS)
		return -1;
	offset = info->TaskNameOffset != 0 ? info->TaskNameOffset : info->EventNameOffset;
	if (offset == 0 || offset >= size)
		return -1;
	wide = (const WCHAR *)(info_buffer + offset);
	for (i = 0; i < (int)sizeof(name) - 1 && wide[i] != 0; i++)
		name[i] = wide[i] < 0x80 ? (char)wide[i] : '?';
	name[i] = '\0';
	for (k = VBT_CH_STATE; k <= VBT_PKT_FAIL; k++) {
		if (strcmp(name, vbt_event_name((enum vbt_kind)k)) == 0) {
			*kind = (enum vbt_kind)k;
			return 0;
		}
	}
	return -1;
}

static int decode_event(PEVENT_RECORD rec, struct vbt_event *ev, char *state, ULONG state_size)
{
	char dir[8];
	int bad = 0;

	memset(ev, 0, sizeof(*ev));
	if (event_kind(rec, &ev->kind) != 0)
		return -1;
	ev->src = "hyperv";
	ev->side = "host";
	bad |= read_u64(rec, L"seq", &ev->seq);
	bad |= read_u32(rec, L"ch", &ev->ch);
	if (ev->kind == VBT_CH_STATE) {
		bad |= read_text(rec, L"state", state, state_size);
		ev->state = state;
		return bad ? -1 : 0;
	}
	bad |= read_u64(rec, L"tx", &ev->tx);
	bad |= read_text(rec, L"dir", dir, sizeof(dir));
	ev->dir = strcmp(dir, "h2g") == 0 ? VBT_H2G : VBT_G2H;
	switch (ev->kind) {
	case VBT_PKT_SEND:
	case VBT_PKT_RECV:
	case VBT_PKT_COMPLETE:
		bad |= read_u32(rec, L"len", &ev->len);
		break;
	default:
		break;
	}
	if (ev->kind == VBT_PKT_SEND || ev->kind == VBT_PKT_RECV ||
	    ev->kind == VBT_PKT_COMPLETE || ev->kind == VBT_PKT_COMPLETION) {
		bad |= read_u64(rec, L"digest", &ev->digest); /* TraceLoggingHexUInt64 */
	}
	if (ev->kind == VBT_PKT_COMPLETE || ev->kind == VBT_PKT_COMPLETION ||
	    ev->kind == VBT_PKT_FAIL) {
		bad |= read_u32(rec, L"status", &ev->status); /* TraceLoggingHexUInt32 */
	}
	if (ev->kind == VBT_PKT_SEND) {
		unsigned char want = 0;

		bad |= read_property(rec, L"wantCompletion", &want, sizeof(want), NULL);
		ev->want_completion = want != 0;
	}
	if (ev->kind == VBT_PKT_QUEUED) {
		unsigned char inferred = 0;

		/* Absent in a capture from a VSP that observed it; present and true here. */
		if (read_property(rec, L"inferred", &inferred, sizeof(inferred), NULL) == 0)
			ev->inferred = inferred != 0;
	}
	if (ev->kind == VBT_PKT_SAVE) {
		bad |= read_u32(rec, L"libLen", &ev->lib_len);
		bad |= read_u32(rec, L"saveLen", &ev->save_len);
	}
	if (ev->kind == VBT_PKT_SAVE || ev->kind == VBT_PKT_RESTORE) {
		bad |= read_u64(rec, L"saveDigest", &ev->save_digest);
	}
	return bad ? -1 : 0;
}

static void WINAPI on_event(PEVENT_RECORD rec)
{
	struct vbt_event ev;
	char state[64], text[VBT_LINE_MAX];
	vbt_u32 n;

	if (memcmp(&rec->EventHeader.ProviderId, &conv.provider, sizeof(GUID)) != 0)
		return;
	if (decode_event(rec, &ev, state, sizeof(state)) != 0) {
		conv.undecodable++;
		return;
	}
	n = vbt_format_line(text, sizeof(text), &ev);
	if (n == 0) {
		conv.undecodable++;
		return;
	}
	if (conv.count == conv.capacity) {
		size_t capacity = conv.capacity ? conv.capacity * 2 : 1024;
		struct line *bigger = (struct line *)realloc(conv.lines, capacity * sizeof(*bigger));

		if (bigger == NULL) {
			conv.out_of_memory = 1;
			return;
		}
		conv.lines = bigger;
		conv.capacity = capacity;
	}
	conv.lines[conv.count].seq = ev.seq;
	conv.lines[conv.count].text = (char *)malloc(n + 1);
	if (conv.lines[conv.count].text == NULL) {
		conv.out_of_memory = 1;
		return;
	}
	memcpy(conv.lines[conv.count].text, text, n + 1);
	conv.count++;
}

static int by_seq(const void *a, const void *b)
{
	ULONGLONG x = ((const struct line *)a)->seq, y = ((const struct line *)b)->seq;

	return x < y ? -1 : x > y;
}

static void free_lines(void)
{
	size_t i;

	for (i = 0; i < conv.count; i++)
		free(conv.lines[i].text);
	free(conv.lines);
	memset(&conv, 0, sizeof(conv));
}

/* Reads the capture into conv, sorted by seq; EXIT_OK only when every event is there once. */
static int collect(const char *etl, const GUID *provider, const char *provider_name)
{
	EVENT_TRACE_LOGFILEA logfile;
	PROCESSTRACE_HANDLE trace;
	ULONG status;
	size_t i;

	memset(&conv, 0, sizeof(conv));
	conv.provider = *provider;
	memset(&logfile, 0, sizeof(logfile));
	logfile.LogFileName = (char *)etl;
	logfile.ProcessTraceMode = PROCESS_TRACE_MODE_EVENT_RECORD;
	logfile.EventRecordCallback = on_event;
	trace = OpenTraceA(&logfile);
	if (trace == INVALID_PROCESSTRACE_HANDLE) {
		fprintf(stderr, "%s: cannot open %s as an ETW trace (error %lu)\n", ctl_tool_name,
			etl, GetLastError());
		return EXIT_INPUT;
	}
	status = ProcessTrace(&trace, 1, NULL, NULL);
	CloseTrace(trace);
	if (status != ERROR_SUCCESS) {
		fprintf(stderr, "%s: reading %s failed (error %lu)\n", ctl_tool_name, etl, status);
		return EXIT_INPUT;
	}
	if (conv.out_of_memory) {
		fprintf(stderr, "%s: out of memory converting %s\n", ctl_tool_name, etl);
		return EXIT_INFRA;
	}
	qsort(conv.lines, conv.count, sizeof(*conv.lines), by_seq);
	for (i = 1; i < conv.count; i++) {
		if (conv.lines[i].seq == conv.lines[i - 1].seq) {
			fprintf(stderr, "%s: %s has seq %llu twice: two VSP sessions in one "
				"capture?\n", ctl_tool_name, etl, conv.lines[i].seq);
			return EXIT_INPUT;
		}
	}
	if (conv.undecodable != 0) {
		/* Never a silent hole: the trace would look complete without them. */
		fprintf(stderr, "%s: %lu events of %s could not be decoded\n",
			ctl_tool_name, conv.undecodable, provider_name);
		return EXIT_INPUT;
	}
	return EXIT_OK;
}

int ctl_etl2jsonl(const char *etl, const char *out_path, const GUID *provider,
		  const char *provider_name)
{
	int rc = collect(etl, provider, provider_name);
	FILE *out;
	size_t i;

	/* OUT is opened only for a whole trace: a refused capture leaves no file behind. */
	if (rc == EXIT_OK) {
		out = ctl_open_output(out_path);
		if (out == NULL) {
			rc = EXIT_INPUT;
		} else {
			for (i = 0; i < conv.count; i++)
				fputs(conv.lines[i].text, out);
			if (out != stdout)
				fclose(out);
		}
	}
	free_lines();
	return rc;
}
