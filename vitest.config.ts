import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    globalSetup: ['tests/helpers/global-database.ts'],
    // Generous: the end-to-end tests spawn the CLI many times and must not fail on a busy two-core machine.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Two cores: integration suites each run a hub, so keep parallelism modest.
    maxWorkers: 2,
  },
});
