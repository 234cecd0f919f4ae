/* SPDX-License-Identifier: GPL-2.0 */
/* STAND-IN for <linux/slab.h>: see ../README.md. */
#include <linux/standin.h>
