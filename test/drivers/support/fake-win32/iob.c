/* The stand-in stdio.h's streams (__acrt_iob_func, as the UCRT's) from this libc's. */
#include <stdio.h>

FILE *__acrt_iob_func(unsigned index)
{
	return index == 0 ? stdin : index == 1 ? stdout : stderr;
}
