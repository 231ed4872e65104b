import { defineConfig } from 'vitest/config';

// `npm run test:sim`: the loop's proof (issue 6), which `npm test` leaves out while it fails (README "Does it learn?").
// Same pool and timeouts as vitest.config.ts.
export default defineConfig({
  test: { include: ['tests/sim/**/*.test.ts'], pool: 'forks', testTimeout: 60_000, hookTimeout: 60_000 },
});
