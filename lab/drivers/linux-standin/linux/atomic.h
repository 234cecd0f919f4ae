/* SPDX-License-Identifier: GPL-2.0 */
/* STAND-IN for <linux/atomic.h>: see ../README.md. */
#include <linux/standin.h>
