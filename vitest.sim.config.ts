import { defineConfig } from 'vitest/config';
import base from './vitest.config';

// `npm run test:sim`: the loop's proof (issue 6), which `npm test` leaves out while it fails (README "Does it learn?").
// The main config's pool and timeouts; only which files run differs.
export default defineConfig({ test: { ...base.test, include: ['tests/sim/**/*.test.ts'], exclude: ['node_modules/**'] } });
