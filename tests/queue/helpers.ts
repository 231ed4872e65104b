// Test databases for the queue and scheduler suites: a real libsql FILE in a temp dir, migrated by drizzle's
// libsql migrator from ./migrations (the same files wrangler applies to D1).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Client, createClient } from '@libsql/client';
import { drizzle, type LibSQLDatabase } from 'drizzle-orm/libsql';
import { migrate } from 'drizzle-orm/libsql/migrator';

export interface TestDb {
  url: string;
  /** Opens another connection to the same file (a second consumer, as a second process would). */
  connect(): Promise<LibSQLDatabase>;
  close(): void;
}

export async function makeTestDb(): Promise<TestDb> {
  const dir = mkdtempSync(join(tmpdir(), 'prefloop-queue-'));
  const url = `file:${join(dir, 'test.db')}`;
  const clients: Client[] = [];
  async function connect(): Promise<LibSQLDatabase> {
    const client = createClient({ url });
    clients.push(client);
    // Two connections writing the same file: WAL lets readers proceed, busy_timeout makes a writer wait for
    // the lock instead of failing with SQLITE_BUSY.
    await client.execute('PRAGMA busy_timeout = 5000');
    await client.execute('PRAGMA journal_mode = WAL');
    return drizzle(client);
  }
  const first = await connect();
  await migrate(first, { migrationsFolder: join(import.meta.dirname, '..', '..', 'migrations') });
  return {
    url,
    connect,
    close() {
      for (const c of clients) c.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
