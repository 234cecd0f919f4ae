#!/usr/bin/env node
// The `bench` command. The sources are TypeScript that Node 24 runs directly
// (erasable syntax only), so there is no build step between a checkout and a run.
//
// `npm ci` installs Node 24 into node_modules (the `node` devDependency), whatever Node
// the machine has. Started by an older Node (the machine's own, as `node bin/bench.js`),
// this file runs itself again on that Node; without it, it says exactly what to run.
// Keep this file plain JavaScript that old Node versions can parse: it is what they run.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const NEEDED = [22, 12];
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < NEEDED[0] || (major === NEEDED[0] && minor < NEEDED[1])) {
  await runOnInstalledNode();
} else {
  // Node keeps compiled modules (TypeScript already stripped) in a cache directory, by
  // default under the system's temp directory. Loading the bench's modules from it takes
  // a sixth of the time, and each worker thread loads them all again when it starts
  // (explore, the nightly, the trace reader): those read the variable when they start.
  const { enableCompileCache } = await import('node:module');
  const cache = enableCompileCache?.();
  if (cache?.directory && !process.env.NODE_COMPILE_CACHE) process.env.NODE_COMPILE_CACHE = cache.directory;
  await import('../src/cli/main.ts');
}

/** The Node binary `npm ci` installed for this checkout, or null. */
function installedNode() {
  try {
    const pkg = createRequire(import.meta.url).resolve('node/package.json');
    const bin = join(dirname(pkg), 'bin', 'node');
    return existsSync(bin) ? bin : null;
  } catch {
    return null;
  }
}

async function runOnInstalledNode() {
  const self = fileURLToPath(import.meta.url);
  const repo = dirname(dirname(self));
  const bin = installedNode();
  // The marker stops a loop should the installed Node be old as well.
  if (bin === null || process.env.BENCH_REEXEC_FROM !== undefined) {
    const here = relative(process.cwd(), repo) || '.';
    process.stderr.write(
      `bench: Node.js ${process.versions.node} is too old: the bench needs Node >= ${NEEDED.join('.')}` +
        `${bin === null ? ', and no Node is installed in node_modules' : `, and ${bin} is old too`}.\n` +
        `Run \`npm ci\` in ${here} (it installs Node 24 into node_modules), then run \`npx bench ...\` there,\n` +
        `or \`${join(here, 'node_modules', '.bin', 'node')} ${join(here, 'bin', 'bench.js')} ...\`.\n`,
    );
    process.exit(2);
  }
  const child = spawn(bin, [self, ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, BENCH_REEXEC_FROM: process.versions.node },
  });
  // Signals sent to this process alone (kill PID) reach the bench too; a Ctrl-C reaches
  // both through the terminal, and the bench decides what it means.
  const forward = (sig) => () => child.kill(sig);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, forward(sig));
  const [code, signal] = await new Promise((resolve) => child.on('exit', (c, s) => resolve([c, s])));
  if (signal !== null) {
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  }
  process.exit(code ?? 3);
}
