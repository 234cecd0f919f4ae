// SPDX-License-Identifier: MIT
/*
 * Builds blockq's command parser (../blockq-command.c, shared with the VSP) into
 * this module (see bq_protocol.c for why it is included rather than listed).
 */
#include "../blockq-command.c"
