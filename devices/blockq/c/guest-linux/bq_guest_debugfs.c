// SPDX-License-Identifier: GPL-2.0
/*
 * Builds the bench's guest debugfs helper (lab/drivers/common/guest-debugfs.c,
 * shared with the sample's guest) into this module (see bq_protocol.c for why
 * it is included rather than listed).
 */
#include <guest-debugfs.c>
