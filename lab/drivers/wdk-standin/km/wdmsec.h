/*
 * STAND-IN for the WDK's wdmsec.h: NOT the Windows Driver Kit header. The SDDL
 * strings for device objects a driver creates itself (a KMDF control device's
 * WdfControlDeviceInitAllocate takes one); the real ones are defined in
 * wdmsec.lib. See ../README.md. Never used in a real build.
 */
#pragma once

#include <ntddk.h>

/* "D:P(A;;GA;;;SY)(A;;GA;;;BA)": the system and administrators, full access. */
extern const UNICODE_STRING SDDL_DEVOBJ_SYS_ALL_ADM_ALL;
