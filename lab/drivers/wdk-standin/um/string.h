/* STAND-IN for the C runtime's string.h: the few calls the tool uses. */
#pragma once
#include <stddef.h>
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
