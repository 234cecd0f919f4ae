// SPDX-License-Identifier: MIT
/*
 * Parser of the sample drivers' control commands (see sample-command.h).
 * Library-free like sample-protocol.c, for the same reason.
 */
#include "sample-command.h"

#define MAX_TOKENS 8

struct token {
	const char *p;
	sp_u32 n;
};

static int token_is(const struct token *t, const char *word)
{
	sp_u32 i;

	for (i = 0; i < t->n; i++) {
		if (word[i] != t->p[i])
			return 0;
	}
	return word[t->n] == '\0';
}

/* Whether t starts with prefix; if so, *rest is what follows it. */
static int token_prefix(const struct token *t, const char *prefix, struct token *rest)
{
	sp_u32 i;

	for (i = 0; prefix[i]; i++) {
		if (i >= t->n || prefix[i] != t->p[i])
			return 0;
	}
	rest->p = t->p + i;
	rest->n = t->n - i;
	return 1;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A decimal or 0x-hex number up to max; -1 when not one or out of range. */
static int parse_number(const struct token *t, sp_u64 max, sp_u64 *out)
{
	sp_u64 v = 0;
	sp_u32 i = 0, base = 10;

	if (t->n > 2 && t->p[0] == '0' && (t->p[1] == 'x' || t->p[1] == 'X')) {
		base = 16;
		i = 2;
	}
	if (i == t->n)
		return -1;
	for (; i < t->n; i++) {
		int d = hex_value(t->p[i]);

		if (d < 0 || (sp_u32)d >= base)
			return -1;
		if (v > (max - (sp_u32)d) / base)
			return -1;
		v = v * base + (sp_u32)d;
	}
	*out = v;
	return 0;
}

static int parse_u32(const struct token *t, sp_u32 *out)
{
	sp_u64 v;

	if (parse_number(t, 0xffffffffu, &v))
		return -1;
	*out = (sp_u32)v;
	return 0;
}

/* xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx into the in-memory GUID layout. */
static int parse_guid(const struct token *t, sp_u8 out[16])
{
	/* Byte i of the text's 16 bytes lands at position order[i] in memory. */
	static const sp_u8 order[16] = { 3, 2, 1, 0, 5, 4, 7, 6,
					 8, 9, 10, 11, 12, 13, 14, 15 };
	sp_u32 i, b = 0;

	if (t->n != 36)
		return -1;
	for (i = 0; i < 36;) {
		int hi, lo;

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (t->p[i] != '-')
				return -1;
			i++;
			continue;
		}
		hi = hex_value(t->p[i]);
		lo = hex_value(t->p[i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[order[b++]] = (sp_u8)(hi << 4 | lo);
		i += 2;
	}
	return 0;
}

static sp_u32 tokenize(const char *text, sp_u32 len, struct token *tok)
{
	sp_u32 n = 0, i = 0;

	while (i < len && text[i] != '\0') {
		while (i < len && (text[i] == ' ' || text[i] == '\t' ||
				   text[i] == '\r' || text[i] == '\n'))
			i++;
		if (i >= len || text[i] == '\0')
			break;
		if (n == MAX_TOKENS)
			return MAX_TOKENS + 1; /* too many: refuse the line */
		tok[n].p = text + i;
		while (i < len && text[i] != '\0' && text[i] != ' ' && text[i] != '\t' &&
		       text[i] != '\r' && text[i] != '\n')
			i++;
		tok[n].n = (sp_u32)(text + i - tok[n].p);
		n++;
	}
	return n;
}

int sample_parse_command(const char *text, sp_u32 len, struct sample_command *out)
{
	struct token tok[MAX_TOKENS], rest;
	sp_u32 n, i, need;
	int pages = 0; /* open: ring-pages= seen */

	n = tokenize(text, len, tok);
	if (n == 0 || n > MAX_TOKENS)
		return -1;
	out->count = 0;
	out->length = 0;
	out->mode = 0;
	out->hold_ms = 0;
	out->hold_auto = 0;
	out->loopback = 0;
	out->force_new_channel = 0;
	out->handle = 0;
	out->has_ch = 0;
	out->ch = 0;
	out->ring_pages = SP_DEFAULT_RING_PAGES;
	for (i = 0; i < 16; i++)
		out->instance[i] = 0;

	/* A trailing ch=N may follow any command; open takes N positionally. */
	if (n > 1 && token_prefix(&tok[n - 1], "ch=", &rest)) {
		if (parse_u32(&rest, &out->ch))
			return -1;
		out->has_ch = 1;
		n--;
	}

	if (token_is(&tok[0], "send")) {
		out->verb = SAMPLE_CMD_SEND;
		need = 5;
	} else if (token_is(&tok[0], "notify")) {
		out->verb = SAMPLE_CMD_NOTIFY;
		need = 3;
	} else if (token_is(&tok[0], "transact")) {
		out->verb = SAMPLE_CMD_TRANSACT;
		need = 4;
	} else if (token_is(&tok[0], "release")) {
		out->verb = SAMPLE_CMD_RELEASE;
		need = 1;
	} else if (token_is(&tok[0], "trace-clear")) {
		out->verb = SAMPLE_CMD_TRACE_CLEAR;
		need = 1;
	} else if (token_is(&tok[0], "save")) {
		out->verb = SAMPLE_CMD_SAVE;
		need = 1;
	} else if (token_is(&tok[0], "restore")) {
		out->verb = SAMPLE_CMD_RESTORE;
		need = 1;
	} else if (token_is(&tok[0], "pause")) {
		out->verb = SAMPLE_CMD_PAUSE;
		need = 1;
	} else if (token_is(&tok[0], "resume")) {
		out->verb = SAMPLE_CMD_RESUME;
		need = 1;
	} else if (token_is(&tok[0], "close")) {
		out->verb = SAMPLE_CMD_CLOSE;
		need = 1;
	} else if (token_is(&tok[0], "detach")) {
		out->verb = SAMPLE_CMD_DETACH;
		need = 1;
	} else if (token_is(&tok[0], "discard")) {
		out->verb = SAMPLE_CMD_DISCARD;
		need = 1;
	} else if (token_is(&tok[0], "rescind")) {
		out->verb = SAMPLE_CMD_RESCIND;
		need = 1;
	} else if (token_is(&tok[0], "hold")) {
		out->verb = SAMPLE_CMD_HOLD;
		if (n != 2)
			return -1;
		if (token_is(&tok[1], "auto")) {
			out->hold_auto = 1;
			return 0;
		}
		return parse_u32(&tok[1], &out->hold_ms);
	} else if (token_is(&tok[0], "open")) {
		out->verb = SAMPLE_CMD_OPEN;
		if (out->has_ch || n < 4 || n > 6)
			return -1;
		if (parse_u32(&tok[1], &out->ch) || parse_guid(&tok[2], out->instance))
			return -1;
		out->has_ch = 1;
		if (token_is(&tok[3], "loopback"))
			out->loopback = 1;
		else if (!token_prefix(&tok[3], "handle=", &rest) ||
			 parse_number(&rest, ~0ull, &out->handle) || out->handle == 0)
			return -1;
		/* Then ring-pages=P and force-new-channel, each at most once, in any order. */
		for (i = 4; i < n; i++) {
			if (token_is(&tok[i], "force-new-channel") && !out->force_new_channel) {
				out->force_new_channel = 1;
			} else if (token_prefix(&tok[i], "ring-pages=", &rest) && !pages) {
				if (parse_u32(&rest, &out->ring_pages) || out->ring_pages == 0)
					return -1;
				pages = 1;
			} else {
				return -1;
			}
		}
		return 0;
	} else {
		return -1;
	}

	if (n != need)
		return -1;
	switch (out->verb) {
	case SAMPLE_CMD_SEND:
		if (parse_u32(&tok[1], &out->count) || parse_u32(&tok[2], &out->length) ||
		    parse_u32(&tok[3], &out->mode) || parse_u32(&tok[4], &out->hold_ms) ||
		    out->mode > SP_MODE_HOLD)
			return -1;
		break;
	case SAMPLE_CMD_NOTIFY:
		if (parse_u32(&tok[1], &out->count) || parse_u32(&tok[2], &out->length))
			return -1;
		break;
	case SAMPLE_CMD_TRANSACT:
		if (parse_u32(&tok[1], &out->count) || parse_u32(&tok[2], &out->length) ||
		    parse_u32(&tok[3], &out->hold_ms))
			return -1;
		break;
	default:
		break;
	}
	if ((out->verb == SAMPLE_CMD_SEND || out->verb == SAMPLE_CMD_NOTIFY ||
	     out->verb == SAMPLE_CMD_TRANSACT) &&
	    (out->length < SP_HEADER_SIZE || out->length > SP_MAX_MESSAGE_SIZE))
		return -1;
	/* The host's channel commands must name their channel. */
	if ((out->verb == SAMPLE_CMD_SAVE || out->verb == SAMPLE_CMD_RESTORE ||
	     out->verb == SAMPLE_CMD_PAUSE ||
	     out->verb == SAMPLE_CMD_RESUME || out->verb == SAMPLE_CMD_CLOSE ||
	     out->verb == SAMPLE_CMD_DETACH || out->verb == SAMPLE_CMD_DISCARD ||
	     out->verb == SAMPLE_CMD_RESCIND) &&
	    !out->has_ch)
		return -1;
	return 0;
}

sp_u32 sample_format_counters(char *out, sp_u32 capacity, const char *const *names,
			      const sp_u64 *values, sp_u32 n)
{
	sp_u32 at = 0, i, j;

	for (i = 0; i < n; i++) {
		char digits[20];
		sp_u64 v = values[i];
		int k = 0;

		do {
			digits[k++] = (char)('0' + (int)(v % 10));
			v /= 10;
		} while (v);
		for (j = 0; names[i][j]; j++)
			;
		/* separator, name, '=', digits, and room for the final newline */
		if (at + 1 + j + 1 + (sp_u32)k + 1 > capacity)
			return 0;
		if (i > 0)
			out[at++] = ' ';
		for (j = 0; names[i][j]; j++)
			out[at++] = names[i][j];
		out[at++] = '=';
		while (k)
			out[at++] = digits[--k];
	}
	if (at + 1 > capacity)
		return 0;
	out[at++] = '\n';
	return at;
}
