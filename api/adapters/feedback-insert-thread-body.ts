// The insert thread's side of api/adapters/feedback-insert-thread.ts. It owns one connection to the database file
// (libsql's synchronous API, same pragmas as the API's connection) and handles one message at a time, in order:
// the rows of a flush go in as one IMMEDIATE transaction, answered only after COMMIT returned.
//
// Statement shape: multi-row `INSERT ... VALUES (?,..),(?,..) ON CONFLICT (project_id, id) DO NOTHING` of up to
// ROWS_PER_STATEMENT rows, prepared once per row count and reused. The portable FEEDBACK_INSERT_SQL (one JSON
// parameter unpacked by json_each, needed for D1's 100-parameter cap) costs SQLite more per row: measured with
// libsql on this machine, 500-row flushes into the feedback table, ~12-17 µs per row through json_each against
// ~10 µs through 50-row VALUES statements (JSON.parse of the flush here included); 20 or 100-250 rows per statement
// measured slower than 50. Same rows, same conflict rule, same stored values (JSON numbers and strings bind as
// themselves; lone surrogates were already replaced by rowJson).
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'libsql';
import { CONNECTION_PRAGMAS } from '../database';
import { FEEDBACK_COLUMNS } from '../feedback-writer';
import type { InsertReply, InsertRequest } from './feedback-insert-thread';

const ROWS_PER_STATEMENT = 50;
const port = parentPort!;
const db = new Database((workerData as { file: string }).file);
for (const p of CONNECTION_PRAGMAS) db.exec(`PRAGMA ${p}`);

const ROW_PLACEHOLDERS = `(${FEEDBACK_COLUMNS.map(() => '?').join(',')})`;
const statements = new Map<number, ReturnType<typeof db.prepare>>();
/** The prepared INSERT for `n` rows (n <= ROWS_PER_STATEMENT, so at most that many statements are ever cached). */
function insertOf(n: number) {
  let st = statements.get(n);
  if (!st) {
    st = db.prepare(
      `INSERT INTO feedback (${FEEDBACK_COLUMNS.join(',')}) VALUES ${Array.from({ length: n }, () => ROW_PLACEHOLDERS).join(',')} ` +
        'ON CONFLICT (project_id, id) DO NOTHING',
    );
    statements.set(n, st);
  }
  return st;
}

const WIDTH = FEEDBACK_COLUMNS.length;
const insertAll = db.transaction((rows: unknown[][]): number => {
  let changes = 0;
  for (let at = 0; at < rows.length; at += ROWS_PER_STATEMENT) {
    const n = Math.min(ROWS_PER_STATEMENT, rows.length - at);
    const params: unknown[] = new Array(n * WIDTH);
    for (let r = 0; r < n; r++) {
      const row = rows[at + r];
      for (let c = 0; c < WIDTH; c++) params[r * WIDTH + c] = row[c];
    }
    changes += insertOf(n).run(params).changes;
  }
  return changes;
}).immediate;

port.on('message', (m: InsertRequest) => {
  if (m.op === 'close') {
    db.close();
    port.postMessage({ id: m.id, changes: 0 } satisfies InsertReply);
    return;
  }
  try {
    const changes = insertAll(JSON.parse(m.rowsJson) as unknown[][]);
    port.postMessage({ id: m.id, changes } satisfies InsertReply);
  } catch (error) {
    const e = error as { message?: string; code?: string };
    port.postMessage({ id: m.id, error: { message: e.message ?? String(error), code: e.code } } satisfies InsertReply);
  }
});
