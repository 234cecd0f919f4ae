// SPDX-License-Identifier: MIT
/*
 * Builds the protocol code shared with the Windows drivers and the tests into
 * this module. Kbuild only compiles sources below the module's directory, so
 * the shared file is included rather than listed.
 */
#include "../common/sample-protocol.c"
