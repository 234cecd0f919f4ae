#!/usr/bin/env node
// The `bench` command. The sources are TypeScript that Node 24 runs directly
// (erasable syntax only), so there is no build step between a checkout and a run.
const [major] = process.versions.node.split('.').map(Number);
if (major < 22) {
  process.stderr.write(
    `bench: Node.js ${process.versions.node} is too old; run it through npm (npm ci installs Node 24) or install Node >= 22.12\n`,
  );
  process.exit(2);
}
// Node keeps compiled modules (TypeScript already stripped) in a cache directory, by
// default under the system's temp directory. Loading the bench's modules from it takes
// a sixth of the time, and each worker thread loads them all again when it starts
// (explore, the nightly, the trace reader): those read the variable when they start.
const { enableCompileCache } = await import('node:module');
const cache = enableCompileCache?.();
if (cache?.directory && !process.env.NODE_COMPILE_CACHE) process.env.NODE_COMPILE_CACHE = cache.directory;
await import('../src/cli/main.ts');
