import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // The web console is built before the suite when missing or stale (test/support/console-build.ts).
    globalSetup: ['test/support/console-build.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // End-to-end suites start their own PostgreSQL servers; two cores do not reward more forks.
    maxWorkers: 2,
  },
});
