/*
 * Shared by the two files of sample-ctl: exit codes and the ETW conversion.
 */
#pragma once

#include <stdio.h>

/* Exit codes, as the bench's: done, bad usage or input, unreachable driver/ETW. */
#define EXIT_OK 0
#define EXIT_INPUT 2
#define EXIT_INFRA 3

/* Writes the VSP's events of a captured .etl as JSON Lines, sorted by seq. */
int etl_to_jsonl(const char *etl, FILE *out);
