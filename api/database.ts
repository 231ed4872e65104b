// Node adapter for the database port: a libsql file opened with the pragmas the ingest path relies on, and
// drizzle's migrator applying migrations/ at start. Node-only (file system, native libsql); never imported by
// app.ts or routes/.
//
// One connection (`concurrency: 1`): every libsql call on a local file is a short synchronous call, so a pool
// gains nothing, and per-connection pragmas (synchronous, busy_timeout) would be lost on connections the pool opens
// later. The price: an interactive `db.transaction()` would hold the only connection; portable code uses
// `db.batch()` instead (Cloudflare D1 has no interactive transactions either).
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Client, createClient } from '@libsql/client';
import { drizzle } from 'drizzle-orm/libsql';
import { migrate } from 'drizzle-orm/libsql/migrator';
import * as schema from '../shared/schema';
import type { Database } from './deps';

export const MIGRATIONS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'migrations');

export interface OpenedDatabase {
  db: Database;
  client: Client;
  close(): void;
}

/**
 * Opens (creating the directory and file if needed) and migrates the SQLite file at `path`.
 * WAL lets the worker read while the API writes; synchronous=NORMAL in WAL mode makes a commit durable against an
 * application crash without an fsync per commit (a power loss can drop the last commits, never corrupt the file).
 */
export async function openDatabase(path: string, opts: { migrate?: boolean } = {}): Promise<OpenedDatabase> {
  const file = resolve(path);
  mkdirSync(dirname(file), { recursive: true });
  const client = await openClient(file);
  const db = drizzle(client, { schema }) as unknown as Database;
  if (opts.migrate !== false) await migrate(drizzle(client, { schema }), { migrationsFolder: MIGRATIONS_DIR });
  return { db, client, close: () => client.close() };
}

/** Set on every connection prefloop opens to its file (the API's, the worker's, the feedback insert thread's). */
export const CONNECTION_PRAGMAS = ['journal_mode = WAL', 'synchronous = NORMAL', 'busy_timeout = 5000', 'foreign_keys = ON'];

async function openClient(file: string): Promise<Client> {
  const client = createClient({ url: `file:${file}`, concurrency: 1 });
  for (const p of CONNECTION_PRAGMAS) await client.execute(`PRAGMA ${p}`);
  return client;
}
