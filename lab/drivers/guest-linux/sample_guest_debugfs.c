// SPDX-License-Identifier: GPL-2.0
/*
 * Builds the bench's guest debugfs helper (../common/guest-debugfs.c, shared
 * with blockq's guest) into this module (see sample_protocol.c for why it is
 * included rather than listed).
 */
#include "../common/guest-debugfs.c"
