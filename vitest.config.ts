import { defineConfig } from 'vitest/config';

// Unit tests sit beside the code (`*.test.ts`); integration tests that need a real server, database file,
// queue emulator or onnxruntime live in tests/. `npm test` runs both.
export default defineConfig({
  test: {
    include: ['{api,worker,shared,tests,infra,bench,sim}/**/*.test.ts'],
    exclude: ['node_modules/**', 'infra/cdk.out/**'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
