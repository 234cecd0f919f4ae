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
await import('../src/cli/main.ts');
