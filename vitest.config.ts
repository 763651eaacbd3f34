import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // Guards against a hung test, never a pace: tests wait for events (test/support/wait.ts).
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Most of a file's time is spent waiting on loopback sockets and child processes, so two
    // files at once keep a 2-core machine busy (vitest's default is one worker there: cores - 1).
    maxWorkers: 2,
    // One worker runs many files: starting a fork and importing the proxy once per file cost
    // about a second each. Test files share no module state (each starts its own servers).
    isolate: false,
    // In CI a JSON report is written too, so .ci/run can print a plain "N passed, N failed" line.
    reporters: process.env.CI ? ['default', ['json', { outputFile: 'test-results.json' }]] : ['default'],
  },
});
