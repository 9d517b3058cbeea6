import { defineConfig } from 'vitest/config';
import { SlowFirstSequencer } from './vitest.sequencer.ts';

// One config for every package. Server tests share one embedded PostgreSQL (started in
// globalSetup when DATABASE_URL is unset); each test file gets its own database.
export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts'],
    globalSetup: ['packages/server/test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
    fileParallelism: true,
    sequence: { sequencer: SlowFirstSequencer },
    // Logs would drown the report; LOG_LEVEL=debug npm test shows them.
    env: { LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent' },
    // `npm test -- --coverage` (CI's first leg): the wire contract and the head-end, measured in
    // the test processes (code run by child processes a test spawns is not counted).
    coverage: {
      provider: 'v8',
      include: ['packages/protocol/src/**', 'packages/server/src/**', 'packages/contract/src/**'],
      reporter: ['text-summary', 'json-summary'],
      reportsDirectory: 'test-results/coverage',
    },
  },
});
