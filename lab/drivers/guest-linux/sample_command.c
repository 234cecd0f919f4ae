// SPDX-License-Identifier: MIT
/*
 * Builds the command parser shared with the Windows drivers into this module
 * (see sample_protocol.c for why it is included rather than listed).
 */
#include "../common/sample-command.c"
