import { configDefaults, defineConfig } from 'vitest/config';

/** The suites that load the web console in a browser or fetch its files need it built. */
const CONSOLE_SUITES = 'test/console*.test.ts';

/**
 * Suites beside the code that run end to end: the embedded demo database (PGlite behind a real
 * socket), the embedded default, and the CLI as a child process. They run with test:e2e.
 */
const END_TO_END_IN_SRC = ['src/demo/demo-db.test.ts', 'src/demo/embedded.test.ts', 'src/cli/cli.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // End-to-end suites start their own PostgreSQL servers; two cores do not reward more forks.
    maxWorkers: 2,
    projects: [
      // Beside the code: no servers, no child processes, no console build (npm run test:unit).
      { extends: true, test: { name: 'unit', include: ['src/**/*.test.ts'], exclude: [...configDefaults.exclude, ...END_TO_END_IN_SRC] } },
      // Real servers and real clients (npm run test:e2e runs this and the next).
      {
        extends: true,
        test: { name: 'e2e', include: ['test/**/*.test.ts', ...END_TO_END_IN_SRC], exclude: [...configDefaults.exclude, CONSOLE_SUITES] },
      },
      // The console is built first when missing or stale (test/support/console-build.ts).
      { extends: true, test: { name: 'console', include: [CONSOLE_SUITES], globalSetup: ['test/support/console-build.ts'] } },
    ],
  },
});
