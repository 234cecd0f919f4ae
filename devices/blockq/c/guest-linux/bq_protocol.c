// SPDX-License-Identifier: MIT
/*
 * Builds blockq's protocol rules (../blockq-protocol.c, shared with the VSP) into
 * this module: Kbuild compiles only files of the module's own folder.
 */
#include "../blockq-protocol.c"
