import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Scenarios built in code run on the default device: its module is loaded first.
    setupFiles: ['test/support/load-sample-device.ts'],
    // Lab tests start real pwsh and sshd processes; give them room on a 2-core machine.
    testTimeout: 30_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
