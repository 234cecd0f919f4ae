/* STAND-IN for the C runtime's stdio.h (-nostdlibinc hides libc): the few calls the tool uses. */
#pragma once
#include <stddef.h>
typedef struct _iobuf FILE;
FILE *__acrt_iob_func(unsigned index);
#define stdin (__acrt_iob_func(0))
#define stdout (__acrt_iob_func(1))
#define stderr (__acrt_iob_func(2))
FILE *fopen(const char *name, const char *mode);
int fclose(FILE *f);
size_t fwrite(const void *p, size_t size, size_t n, FILE *f);
size_t fread(void *p, size_t size, size_t n, FILE *f);
int fputs(const char *s, FILE *f);
int fprintf(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int fflush(FILE *f);
