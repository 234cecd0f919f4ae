/*
 * The kernel shim's C runtime for drivers compiled to wasm32 (src/devices/wasm/build.ts):
 * what a Windows or Linux kernel gives a driver as compiler support rather than as an
 * API, and what clang itself emits calls to. Not a driver source; linked beside one.
 *
 * The emulator runs a driver on one thread, so the interlocked operations are plain
 * read-modify-write: nothing can interleave with them.
 */
#include <stddef.h>

void *memcpy(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	while (n--)
		*d++ = *s++;
	return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	if (d < s) {
		while (n--)
			*d++ = *s++;
	} else {
		while (n--)
			d[n] = s[n];
	}
	return dst;
}

void *memset(void *dst, int c, size_t n)
{
	unsigned char *d = dst;

	while (n--)
		*d++ = (unsigned char)c;
	return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;

	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x < *y ? -1 : 1;
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

long long _InterlockedIncrement64(long long volatile *a) { return ++*a; }
long long _InterlockedExchangeAdd64(long long volatile *a, long long v)
{
	long long old = *a;

	*a = old + v;
	return old;
}

/* Scratch the shim hands to a driver call (out-parameters); from the shim's pool. */
void *shim_pool_alloc(size_t n, unsigned tag);
__attribute__((export_name("shim_alloc_scratch"))) void *shim_alloc_scratch(size_t n)
{
	return shim_pool_alloc(n, 0x6d696853u /* 'Shim' */);
}
