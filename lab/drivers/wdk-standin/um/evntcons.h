/* STAND-IN for evntcons.h: its EVENT_RECORD subset lives in the stand-in evntrace.h. */
#pragma once
#include <evntrace.h>
