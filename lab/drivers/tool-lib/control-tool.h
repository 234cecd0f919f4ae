/* SPDX-License-Identifier: MIT */
/*
 * What every device's Windows control tool does the same way (sample-ctl,
 * lab/drivers/vsp/tool; blockq-ctl, devices/blockq/c/tool): open a driver's control
 * device, send it one command line, print its counters, move a channel's saved state
 * in and out of the VSP, and turn the VSP's ETW capture into trace-schema JSON Lines.
 * The IOCTL codes, device paths and provider are the caller's: each device has its own
 * (its *-control.h), and nothing here knows one.
 *
 * Messages go to standard error prefixed with the tool's name (ctl_tool_name, set by
 * its main), so the lab layer can report them as they are.
 */
#pragma once

#include <windows.h>
#include <stdio.h>

/* Exit codes, as the bench's: done, bad usage or input, unreachable driver/ETW. */
#define EXIT_OK 0
#define EXIT_INPUT 2
#define EXIT_INFRA 3

/* The largest saved state a tool handles: far above any a bench VSP writes. */
#define CTL_STATE_MAX (256u << 20)

/*
 * A GUID from a control header's comma-separated fields (the *_PROVIDER_GUID_FIELDS
 * both drivers and tool take), expanded before they are split into the 11 parts.
 */
#define CTL_GUID_INIT(d1, d2, d3, b0, b1, b2, b3, b4, b5, b6, b7) \
	{ d1, d2, d3, { b0, b1, b2, b3, b4, b5, b6, b7 } }
#define CTL_GUID(...) CTL_GUID_INIT(__VA_ARGS__)

/* The tool's name in messages ("sample-ctl"); its main sets it first. */
extern const char *ctl_tool_name;

/* OUT for writing, or standard output when path is NULL; NULL and a message when it cannot. */
FILE *ctl_open_output(const char *path);

/*
 * The driver's control device (\\.\Name). INVALID_HANDLE_VALUE and a message naming
 * the path when it cannot be opened (not installed, not started): exit 3.
 */
HANDLE ctl_open_device(const char *path);

/*
 * One command line (1 to max characters) through `ioctl`. A driver refusing it as
 * malformed (ERROR_INVALID_PARAMETER) is bad input, exit 2; anything else exit 3.
 */
int ctl_command(HANDLE h, DWORD ioctl, const char *text, unsigned int max);

/* The counters `ioctl` returns, as text on standard output. */
int ctl_counters(HANDLE h, DWORD ioctl);

/*
 * Channel `ch_text`'s saved state, exported by `ioctl` into the file `path`. The
 * IOCTL's input is the channel number as one unsigned int: the device's state reference
 * must be exactly that (each tool checks its own: CTL_STATE_REF_IS_CHANNEL). The output
 * grows until the state fits (the VSP answers ERROR_INSUFFICIENT_BUFFER until then).
 */
int ctl_export_state(HANDLE h, DWORD ioctl, const char *ch_text, const char *path);

/* Fails to compile unless a device's state reference is one unsigned int, the channel. */
#define CTL_STATE_REF_IS_CHANNEL(ref_type) \
	typedef char ctl_state_ref_is_channel[sizeof(ref_type) == sizeof(unsigned int) ? 1 : -1]

/*
 * The file `path` handed to the VSP by `ioctl`; a file shorter than `min_size` (the
 * device's state header) is refused before the driver sees it.
 */
int ctl_import_state(HANDLE h, DWORD ioctl, const char *path, size_t min_size);

/*
 * The verb `etl2jsonl IN.etl [OUT]`: the events of `provider` (named provider_name in
 * messages) in the ETW capture `etl`, as JSON Lines sorted by the seq the VSP gave them,
 * into OUT or standard output. The VSP must write them through the trace library
 * (vbt_tracelogging_write: the event name is the schema's "ev", each field the schema's
 * name), as both bench VSPs do. A capture with an event of the provider it cannot
 * decode, or a seq twice, is refused (exit 2) and OUT not written: never a trace with
 * a hole.
 */
int ctl_etl2jsonl(const char *etl, const char *out_path, const GUID *provider,
		  const char *provider_name);
