/* SPDX-License-Identifier: GPL-2.0 */
/* STAND-IN for <linux/version.h>: see ../README.md (the stand-in is the 6.1 API). */
#include <linux/standin.h>
