// The ingest hot path builds its INSERT text itself and hands it to the driver through drizzle's session: measured
// here, drizzle's query builder spent ~5x longer turning 100 rows into SQL than the database spent storing them.
// Both drivers prefloop uses (libsql, D1) implement `session.prepareQuery(query, fields, method, arrayMode)`; the
// run result differs by driver and is normalized below.
import type { Database } from './deps';

export interface RunResult {
  /** Rows inserted / changed by the statement. */
  changes: number;
  /** Rowid of the last inserted row (feedback.seq). */
  lastInsertRowid: number;
}

interface Session {
  prepareQuery(query: { sql: string; params: unknown[] }, fields: undefined, method: 'run', arrayMode: boolean): { run(): Promise<unknown> };
}

export async function runRaw(db: Database, sql: string, params: unknown[]): Promise<RunResult> {
  const session = (db as unknown as { session: Session }).session;
  const res = (await session.prepareQuery({ sql, params }, undefined, 'run', false).run()) as {
    rowsAffected?: number;
    lastInsertRowid?: bigint | number;
    meta?: { changes?: number; last_row_id?: number };
  };
  if (res.rowsAffected !== undefined) return { changes: res.rowsAffected, lastInsertRowid: Number(res.lastInsertRowid ?? 0) }; // libsql
  if (res.meta) return { changes: res.meta.changes ?? 0, lastInsertRowid: res.meta.last_row_id ?? 0 }; // D1
  throw new Error('unrecognized driver result for a run statement');
}
