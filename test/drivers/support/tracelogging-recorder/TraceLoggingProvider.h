/*
 * TEST RECORDER for the TraceLogging part of the trace library: NOT Windows'
 * TraceLoggingProvider.h, and not an ETW encoding. It takes the macros'
 * shapes (a provider handle, a string-literal event name, field macros of
 * (value, "name") with the real macros' value types) and prints each
 * TraceLoggingWrite as one JSON object on stdout, its fields in the order
 * written: {"ev":"pkt.send","seq":1,"ch":7,"tx":...}. test/drivers/
 * trace-lib.test.ts compares those with the JSON Lines the library formats
 * for the same events.
 */
#ifndef TRACELOGGING_RECORDER_H
#define TRACELOGGING_RECORDER_H

#include <stdio.h>

typedef unsigned char BOOLEAN;
typedef const char *TraceLoggingHProvider;

static inline void tlr_string(const char *s)
{
	putchar('"');
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static inline int tlr_begin(TraceLoggingHProvider provider, const char *event)
{
	(void)provider;
	fputs("{\"ev\":", stdout);
	tlr_string(event);
	return 0;
}

static inline int tlr_name(const char *name)
{
	putchar(',');
	tlr_string(name);
	putchar(':');
	return 0;
}

static inline int tlr_uint64(unsigned long long v, const char *name)
{
	tlr_name(name);
	printf("%llu", v);
	return 0;
}

static inline int tlr_uint32(unsigned int v, const char *name)
{
	tlr_name(name);
	printf("%u", v);
	return 0;
}

/*
 * A hex field (TraceLoggingHexUInt64/HexUInt32) as the converter writes it:
 * the number as 16 or 8 lowercase hex digits, a JSON string, so it compares
 * with the JSON line's digest or status.
 */
static inline int tlr_hex(unsigned long long v, int digits, const char *name)
{
	tlr_name(name);
	printf("\"%0*llx\"", digits, v);
	return 0;
}

static inline int tlr_text(const char *v, const char *name)
{
	tlr_name(name);
	tlr_string(v);
	return 0;
}

static inline int tlr_boolean(BOOLEAN v, const char *name)
{
	tlr_name(name);
	fputs(v ? "true" : "false", stdout);
	return 0;
}

static inline int tlr_end(void)
{
	puts("}");
	return 0;
}

/* "name" "" accepts only a string literal, as the real macros do. */
#define TraceLoggingUInt64(value, name) tlr_uint64((value), name "")
#define TraceLoggingUInt32(value, name) tlr_uint32((value), name "")
#define TraceLoggingString(value, name) tlr_text((value), name "")
#define TraceLoggingBoolean(value, name) tlr_boolean((value), name "")
#define TraceLoggingHexUInt64(value, name) tlr_hex((unsigned long long)(value), 16, name "")
#define TraceLoggingHexUInt32(value, name) tlr_hex((unsigned int)(value), 8, name "")

/* The comma operator writes the fields in order, left to right. */
#define TraceLoggingWrite(provider, eventName, ...) \
	((void)(tlr_begin((provider), eventName ""), __VA_ARGS__, tlr_end()))

#endif /* TRACELOGGING_RECORDER_H */
