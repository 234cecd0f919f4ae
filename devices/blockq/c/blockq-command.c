// SPDX-License-Identifier: MIT
/*
 * Parser of the blockq VSP's commands (blockq-command.h). Library-free, like the
 * protocol, so the same code runs in the driver on the emulator and on a host.
 */
#include "blockq-command.h"

#define MAX_TOKENS 6
#define MAX_NUMBERS 4

struct token {
	const char *p;
	bq_u32 n;
};

/* Each verb, and how many number arguments follow it before ch=N. */
static const struct {
	const char *word;
	enum bq_verb verb;
	bq_u32 numbers;
	int ch_required;
} verbs[] = {
	{ "event", BQ_CMD_EVENT, 3, 1 },   { "note", BQ_CMD_NOTE, 2, 1 },
	{ "answer", BQ_CMD_ANSWER, 0, 0 }, { "save", BQ_CMD_SAVE, 0, 1 },
	{ "detach", BQ_CMD_DETACH, 0, 1 }, { "discard", BQ_CMD_DISCARD, 0, 1 },
	{ "restore", BQ_CMD_RESTORE, 0, 1 }, { "resume", BQ_CMD_RESUME, 0, 1 },
	{ "close", BQ_CMD_CLOSE, 0, 1 },     { "rescind", BQ_CMD_RESCIND, 0, 1 },
	{ "request", BQ_CMD_REQUEST, 4, 1 }, { "trace-clear", BQ_CMD_TRACE_CLEAR, 0, 0 },
};

static int token_is(const struct token *t, const char *word)
{
	bq_u32 i;

	for (i = 0; i < t->n; i++)
		if (word[i] != t->p[i])
			return 0;
	return word[t->n] == '\0';
}

/* Whether t starts with prefix; if so, *rest is what follows it. */
static int token_prefix(const struct token *t, const char *prefix, struct token *rest)
{
	bq_u32 i;

	for (i = 0; prefix[i]; i++)
		if (i >= t->n || prefix[i] != t->p[i])
			return 0;
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
static int parse_number(const struct token *t, bq_u64 max, bq_u64 *out)
{
	bq_u64 v = 0;
	bq_u32 i = 0, base = 10;

	if (t->n > 2 && t->p[0] == '0' && (t->p[1] == 'x' || t->p[1] == 'X')) {
		base = 16;
		i = 2;
	}
	if (i == t->n)
		return -1;
	for (; i < t->n; i++) {
		int d = hex_value(t->p[i]);

		if (d < 0 || (bq_u32)d >= base || v > (max - (bq_u32)d) / base)
			return -1;
		v = v * base + (bq_u32)d;
	}
	*out = v;
	return 0;
}

static int parse_u32(const struct token *t, bq_u32 *out)
{
	bq_u64 v;

	if (parse_number(t, 0xffffffffull, &v))
		return -1;
	*out = (bq_u32)v;
	return 0;
}

/* xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx into the in-memory GUID layout. */
static int parse_guid(const struct token *t, bq_u8 out[16])
{
	static const bq_u8 order[16] = { 3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15 };
	bq_u32 i, b = 0;

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
		out[order[b++]] = (bq_u8)(hi << 4 | lo);
		i += 2;
	}
	return 0;
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The tokens of the line; MAX_TOKENS + 1 when there are too many. */
static bq_u32 tokenize(const char *text, bq_u32 len, struct token *tok)
{
	bq_u32 n = 0, i = 0;

	for (;;) {
		while (i < len && text[i] != '\0' && is_space(text[i]))
			i++;
		if (i >= len || text[i] == '\0')
			return n;
		if (n == MAX_TOKENS)
			return MAX_TOKENS + 1;
		tok[n].p = text + i;
		while (i < len && text[i] != '\0' && !is_space(text[i]))
			i++;
		tok[n].n = (bq_u32)(text + i - tok[n].p);
		n++;
	}
}

static int parse_open(const struct token *tok, bq_u32 n, struct bq_command *out)
{
	struct token rest;

	if (n < 4 || n > 5 || parse_u32(&tok[1], &out->ch) || parse_guid(&tok[2], out->instance))
		return -1;
	if (token_is(&tok[3], "loopback"))
		out->loopback = 1;
	else if (!token_prefix(&tok[3], "handle=", &rest) ||
		 parse_number(&rest, ~0ull, &out->handle) || out->handle == 0)
		return -1;
	out->has_ch = 1;
	if (n == 5 && (!token_prefix(&tok[4], "ring-pages=", &rest) ||
		       parse_u32(&rest, &out->ring_pages) || out->ring_pages == 0))
		return -1;
	return 0;
}

int bq_parse_command(const char *text, bq_u32 len, struct bq_command *out)
{
	struct token tok[MAX_TOKENS], rest;
	bq_u32 *numbers[MAX_NUMBERS];
	bq_u32 n, i, v;

	n = tokenize(text, len, tok);
	if (n == 0 || n > MAX_TOKENS)
		return -1;
	out->count = 0;
	out->length = 0;
	out->hold_ms = 0;
	out->mode = 0;
	out->has_ch = 0;
	out->ch = 0;
	out->ring_pages = 4;
	out->loopback = 0;
	out->handle = 0;
	for (i = 0; i < 16; i++)
		out->instance[i] = 0;
	if (token_is(&tok[0], "open")) {
		out->verb = BQ_CMD_OPEN;
		return parse_open(tok, n, out);
	}
	/* A trailing ch=N may follow any other command. */
	if (n > 1 && token_prefix(&tok[n - 1], "ch=", &rest)) {
		if (parse_u32(&rest, &out->ch))
			return -1;
		out->has_ch = 1;
		n--;
	}
	for (v = 0; v < sizeof(verbs) / sizeof(verbs[0]); v++)
		if (token_is(&tok[0], verbs[v].word))
			break;
	if (v == sizeof(verbs) / sizeof(verbs[0]) || n != 1 + verbs[v].numbers ||
	    (verbs[v].ch_required && !out->has_ch))
		return -1;
	out->verb = verbs[v].verb;
	/* request: COUNT LEN MODE HOLD; event: COUNT LEN HOLD; note: COUNT LEN */
	numbers[0] = &out->count;
	numbers[1] = &out->length;
	numbers[2] = verbs[v].verb == BQ_CMD_REQUEST ? &out->mode : &out->hold_ms;
	numbers[3] = &out->hold_ms;
	for (i = 0; i < verbs[v].numbers; i++)
		if (parse_u32(&tok[1 + i], numbers[i]))
			return -1;
	if (verbs[v].numbers > 0 &&
	    (out->length < BQ_HEADER_SIZE || out->length > BQ_MAX_MESSAGE_SIZE))
		return -1;
	if (out->mode > BQ_MODE_HOLD)
		return -1;
	return 0;
}

bq_u32 bq_format_counters(char *out, bq_u32 capacity, const char *const *names,
			  const bq_u64 *values, bq_u32 n)
{
	bq_u32 at = 0, i, j;

	for (i = 0; i < n; i++) {
		char digits[20];
		bq_u64 v = values[i];
		int k = 0;

		do {
			digits[k++] = (char)('0' + (int)(v % 10));
			v /= 10;
		} while (v);
		for (j = 0; names[i][j]; j++)
			;
		/* separator, name, '=', digits, and room for the final newline */
		if (at + 1 + j + 1 + (bq_u32)k + 1 > capacity)
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
