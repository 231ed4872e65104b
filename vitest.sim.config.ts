import { defineConfig } from 'vitest/config';
import base from './vitest.config';

// `npm run test:sim`: only the loop's proof (issue 6; `npm test` runs it too), e.g. while tuning the quick preset.
// The main config's pool and timeouts; only which files run differs.
export default defineConfig({ test: { ...base.test, include: ['tests/sim/**/*.test.ts'], exclude: ['node_modules/**'] } });
