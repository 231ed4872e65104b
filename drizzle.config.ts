import { defineConfig } from 'drizzle-kit';

// `npm run db:generate` writes SQL migrations from shared/schema.ts; the same files are applied to libsql
// files at start and to Cloudflare D1 by `wrangler d1 migrations apply` (wrangler.toml migrations_dir).
export default defineConfig({
  dialect: 'sqlite',
  schema: './shared/schema.ts',
  out: './migrations',
});
