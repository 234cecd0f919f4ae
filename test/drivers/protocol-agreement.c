// SPDX-License-Identifier: MIT
/*
 * Host-side driver for test/drivers/protocol-agreement.test.ts: links the
 * drivers' shared C protocol code (lab/drivers/common/sample-protocol.c) and
 * answers one command per stdin line, so the TypeScript test can put the same
 * inputs through both implementations and compare the bytes.
 *
 * Commands (numbers decimal, byte strings hex, one answer line each):
 *   msg TYPE TX LEN ARG0 ARG1       -> message hex, or "error"
 *   header HEX                      -> "type version length tx arg0 arg1" / "short"
 *   check HEX                       -> "<intact> <status hex8> <digest hex16>"
 *   completion HEX STATUS           -> completion payload hex
 *   decode-completion HEX           -> "<type> <tx> <status hex8> <digest>" / "error"
 *   digest HEX                      -> FNV-1a 64 hex16
 *   status TX INTACT                -> status hex8
 *   body TX I                       -> body byte (decimal)
 *   savebuf TYPE TX LEN HOLD DIGEST -> record hex (DIGEST as hex16)
 *   saveparse HEX                   -> "ok TYPE TX LEN HOLD DIGEST" / "error CODE"
 *   trace KIND SEQ TX DIR LEN DIGEST WANT STATUS LIBLEN SAVELEN SAVEDIGEST STATE CH
 *                                   -> the JSON line (KIND = enum value)
 *   channel GUIDHEX                 -> trace channel number of a 16-byte GUID
 *   parse TEXT...                   -> the parsed control command, or "error"
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sample-protocol.h"
#include "sample-command.h"
#include "vmbus_bench_trace.h"

static unsigned char bytes[SP_MAX_MESSAGE_SIZE + 64];

static unsigned int from_hex(const char *hex)
{
	unsigned int n = 0;

	if (strcmp(hex, "-") == 0) /* the empty byte string */
		return 0;
	while (hex[0] && hex[1] && n < sizeof(bytes)) {
		unsigned int v;

		if (sscanf(hex, "%2x", &v) != 1)
			break;
		bytes[n++] = (unsigned char)v;
		hex += 2;
	}
	return n;
}

static void print_hex(const unsigned char *p, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		printf("%02x", p[i]);
	printf("\n");
}

int main(void)
{
	static char line[2 * sizeof(bytes) + 256];
	static char arg[2 * sizeof(bytes) + 8];

	while (fgets(line, sizeof(line), stdin)) {
		char cmd[32];
		unsigned long long a, b, c, d, e;

		if (sscanf(line, "%31s", cmd) != 1)
			continue;
		if (strcmp(cmd, "msg") == 0 &&
		    sscanf(line, "%*s %llu %llu %llu %llu %llu", &a, &b, &c, &d, &e) == 5) {
			if (sp_encode_message(bytes, sizeof(bytes), (sp_u16)a, b,
					      (sp_u32)c, (sp_u32)d, (sp_u32)e) != 0)
				printf("error\n");
			else
				print_hex(bytes, (unsigned int)c);
		} else if (strcmp(cmd, "header") == 0 && sscanf(line, "%*s %s", arg) == 1) {
			unsigned int n = from_hex(arg);
			struct sp_header h;

			if (sp_decode_header(bytes, n, &h) != 0)
				printf("short\n");
			else
				printf("%u %u %u %llu %u %u\n", h.type, h.version, h.length, h.tx,
				       h.arg0, h.arg1);
		} else if (strcmp(cmd, "check") == 0 && sscanf(line, "%*s %s", arg) == 1) {
			unsigned int n = from_hex(arg);
			struct sp_header h;
			char hex[17];

			if (sp_decode_header(bytes, n, &h) != 0) {
				printf("short\n");
			} else {
				int intact = sp_is_intact(bytes, n, &h);

				vbt_digest_hex(sp_message_digest(bytes, n, &h), hex);
				printf("%d %08x %s\n", intact, sp_status_for(h.tx, intact), hex);
			}
		} else if (strcmp(cmd, "completion") == 0 &&
			   sscanf(line, "%*s %s %llu", arg, &a) == 2) {
			unsigned int n = from_hex(arg);
			struct sp_header h;
			unsigned char out[SP_COMPLETION_SIZE];

			if (sp_decode_header(bytes, n, &h) != 0) {
				printf("short\n");
			} else {
				sp_encode_completion(out, bytes, n, &h, (sp_u32)a);
				print_hex(out, sizeof(out));
			}
		} else if (strcmp(cmd, "decode-completion") == 0 &&
			   sscanf(line, "%*s %s", arg) == 1) {
			unsigned int n = from_hex(arg);
			struct sp_completion comp;
			char hex[17];

			if (sp_decode_completion(bytes, n, &comp) != 0) {
				printf("error\n");
			} else {
				vbt_digest_hex(comp.request_digest, hex);
				printf("%u %llu %08x %s\n", comp.type, comp.tx, comp.status, hex);
			}
		} else if (strcmp(cmd, "digest") == 0 && sscanf(line, "%*s %s", arg) == 1) {
			unsigned int n = from_hex(arg);
			char hex[17];

			vbt_digest_hex(sp_fnv1a64(bytes, n), hex);
			printf("%s\n", hex);
		} else if (strcmp(cmd, "status") == 0 &&
			   sscanf(line, "%*s %llu %llu", &a, &b) == 2) {
			printf("%08x\n", sp_status_for(a, (int)b));
		} else if (strcmp(cmd, "body") == 0 &&
			   sscanf(line, "%*s %llu %llu", &a, &b) == 2) {
			printf("%u\n", sp_body_byte(a, (sp_u32)b));
		} else if (strcmp(cmd, "savebuf") == 0 &&
			   sscanf(line, "%*s %llu %llu %llu %llu %llx", &a, &b, &c, &d, &e) == 5) {
			struct sp_saved_tx s = { (sp_u16)a, b, (sp_u32)c, (sp_u32)d, e };
			unsigned char out[SP_SAVEBUF_SIZE];

			sp_savebuf_encode(out, &s);
			print_hex(out, sizeof(out));
		} else if (strcmp(cmd, "saveparse") == 0 && sscanf(line, "%*s %s", arg) == 1) {
			unsigned int n = from_hex(arg);
			struct sp_saved_tx s;
			enum sp_savebuf_error err = sp_savebuf_parse(bytes, n, &s);
			char hex[17];

			if (err != SP_SAVEBUF_OK) {
				printf("error %d\n", (int)err);
			} else {
				vbt_digest_hex(s.digest, hex);
				printf("ok %u %llu %u %u %s\n", s.type, s.tx, s.length,
				       s.hold_ms, hex);
			}
		} else if (strcmp(cmd, "parse") == 0) {
			struct sample_command c;
			const char *text = line + 5;
			int i;

			if (sample_parse_command(text, (sp_u32)strlen(text), &c) != 0) {
				printf("error\n");
				continue;
			}
			printf("verb=%d count=%u length=%u mode=%u hold=%u auto=%d ch=%s%u "
			       "loopback=%d handle=%llu pages=%u%s instance=",
			       (int)c.verb, c.count, c.length, c.mode, c.hold_ms, c.hold_auto,
			       c.has_ch ? "" : "all:", c.ch, c.loopback, c.handle, c.ring_pages,
			       c.force_new_channel ? " force-new-channel" : "");
			for (i = 0; i < 16; i++)
				printf("%02x", c.instance[i]);
			printf("\n");
		} else if (strcmp(cmd, "channel") == 0 && sscanf(line, "%*s %s", arg) == 1) {
			if (from_hex(arg) != 16)
				printf("error\n");
			else
				printf("%u\n", vbt_channel_number(bytes));
		} else if (strcmp(cmd, "trace") == 0) {
			struct vbt_event ev;
			unsigned int kind, dir, len, want, status, lib_len, save_len;
			unsigned long long seq, tx, digest, save_digest;
			unsigned int ch;
			char state[64], out[VBT_LINE_MAX];

			memset(&ev, 0, sizeof(ev));
			if (sscanf(line,
				   "%*s %u %llu %llu %u %u %llx %u %x %u %u %llx %63s %u",
				   &kind, &seq, &tx, &dir, &len, &digest, &want, &status,
				   &lib_len, &save_len, &save_digest, state, &ch) != 13) {
				printf("error\n");
				continue;
			}
			ev.kind = (enum vbt_kind)kind;
			ev.seq = seq;
			ev.src = "hyperv";
			ev.side = dir ? "host" : "guest";
			ev.ch = ch;
			ev.state = state;
			ev.tx = tx;
			ev.dir = (int)dir;
			ev.len = len;
			ev.digest = digest;
			ev.want_completion = (int)want;
			ev.status = status;
			ev.lib_len = lib_len;
			ev.save_len = save_len;
			ev.save_digest = save_digest;
			ev.inferred = kind == VBT_PKT_QUEUED && want; /* WANT doubles as "inferred" */
			if (vbt_format_line(out, sizeof(out), &ev) == 0)
				printf("error\n");
			else
				fputs(out, stdout);
		} else {
			printf("unknown\n");
		}
		fflush(stdout);
	}
	return 0;
}
