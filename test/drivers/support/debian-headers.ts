// Where Debian's kernel headers are: the build tree a module's Kbuild build runs in
// (test/drivers/linux-module.test.ts for the sample's module, test/devices/blockq/
// c-guest-linux-module.test.ts for blockq's). The machine's running kernel is not
// Debian's, so the tree is found by name: scripts/test-deps.d/30-drivers.sh installs
// linux-headers-amd64, whose build tree is /usr/src/linux-headers-<version>-amd64 (also
// linked from /lib/modules/<version>/build).

import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** The newest installed Debian amd64 kernel build tree, or null. */
export function findDebianHeaders(): string | null {
  const candidates: string[] = [];
  if (existsSync('/usr/src')) {
    for (const name of readdirSync('/usr/src')) {
      if (/^linux-headers-\d.*-amd64$/.test(name) && existsSync(join('/usr/src', name, 'Makefile'))) {
        candidates.push(join('/usr/src', name));
      }
    }
  }
  // Without /usr/src, the build links Debian installs under /lib/modules.
  if (candidates.length === 0 && existsSync('/lib/modules')) {
    for (const version of readdirSync('/lib/modules')) {
      const build = join('/lib/modules', version, 'build');
      if (version.endsWith('-amd64') && existsSync(join(build, 'Makefile'))) candidates.push(build);
    }
  }
  candidates.sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  return candidates.at(-1) ?? null;
}
