// Group commit for feedback inserts. Concurrent requests hand their rows to one writer; the writer waits until the
// event loop has taken in whatever else arrived (setImmediate: after the current I/O poll phase), then writes
// everything pending in ONE atomic database call, and only then resolves each request's promise. So a request is
// acknowledged only after the transaction holding its rows has committed (nothing acknowledged can be lost to an
// application crash), while N concurrent requests pay for one transaction instead of N.
//
// Idempotency: rows go in with INSERT ... ON CONFLICT (project_id, id) DO NOTHING RETURNING. A row that did not come
// back collided with a stored row (or an earlier row of the same flush); that stored row is read and its body hash
// compared: equal means a replay (return the stored record), different means a conflict (409).
// One unit (a request's rows: one event, or a whole batch) is never split across transactions.
import { and, eq, inArray } from 'drizzle-orm';
import { feedback } from '../shared/schema';
import type { Database } from './deps';

export type FeedbackRow = typeof feedback.$inferSelect;
export type NewFeedbackRow = Omit<FeedbackRow, 'seq'>;

export type WriteOutcome =
  | { status: 'created'; row: NewFeedbackRow }
  | { status: 'replayed'; row: FeedbackRow }
  | { status: 'conflict'; row: FeedbackRow };

interface Unit {
  rows: NewFeedbackRow[];
  resolve: (outcomes: WriteOutcome[]) => void;
  reject: (error: unknown) => void;
}

/**
 * Rows per INSERT statement. A feedback row binds 16 values; SQLite allows 32,766 bound values per statement, so
 * 1,000 rows (16,000) stay well inside, and a 1,000-event batch is one statement.
 */
const ROWS_PER_STATEMENT = 1000;

const schedule: (fn: () => void) => void =
  typeof globalThis.setImmediate === 'function' ? (fn) => globalThis.setImmediate(fn) : (fn) => setTimeout(fn, 0);

export class FeedbackWriter {
  private pending: Unit[] = [];
  private flushing = false;
  private scheduled = false;

  constructor(private readonly db: Database) {}

  /** Stores `rows` atomically (with whatever else is pending) and says, per row, what happened. */
  write(rows: NewFeedbackRow[]): Promise<WriteOutcome[]> {
    if (rows.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.pending.push({ rows, resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    if (this.flushing || this.scheduled) return;
    this.scheduled = true;
    schedule(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.flushing || this.pending.length === 0) return;
    this.flushing = true;
    const units = this.pending;
    this.pending = [];
    try {
      const outcomes = await this.commit(units.flatMap((u) => u.rows));
      let at = 0;
      for (const u of units) {
        u.resolve(outcomes.slice(at, at + u.rows.length));
        at += u.rows.length;
      }
    } catch (error) {
      for (const u of units) u.reject(error);
    } finally {
      this.flushing = false;
      if (this.pending.length > 0) this.kick();
    }
  }

  private async commit(rows: NewFeedbackRow[]): Promise<WriteOutcome[]> {
    // The first row per (project, id) is the one inserted; later duplicates in this flush resolve against it.
    const firstIndex = new Map<string, number>();
    const toInsert: NewFeedbackRow[] = [];
    rows.forEach((r, i) => {
      const k = `${r.projectId}\u0000${r.id}`;
      if (!firstIndex.has(k)) {
        firstIndex.set(k, i);
        toInsert.push(r);
      }
    });

    const statements = [];
    for (let i = 0; i < toInsert.length; i += ROWS_PER_STATEMENT) {
      statements.push(
        this.db
          .insert(feedback)
          .values(toInsert.slice(i, i + ROWS_PER_STATEMENT))
          .onConflictDoNothing({ target: [feedback.projectId, feedback.id] })
          .returning({ projectId: feedback.projectId, id: feedback.id }),
      );
    }
    // One statement is atomic by itself; several go through batch(), which runs them in one transaction.
    const results: Array<Array<{ projectId: string; id: string }>> =
      statements.length === 1 ? [await statements[0]] : ((await this.db.batch(statements as [(typeof statements)[0], ...typeof statements])) as never);
    const inserted = new Set<string>();
    for (const res of results) for (const r of res) inserted.add(`${r.projectId}\u0000${r.id}`);

    const outcomes: WriteOutcome[] = new Array(rows.length);
    const unresolved: number[] = [];
    rows.forEach((r, i) => {
      const k = `${r.projectId}\u0000${r.id}`;
      if (firstIndex.get(k) === i && inserted.has(k)) outcomes[i] = { status: 'created', row: r };
      else unresolved.push(i);
    });
    if (unresolved.length > 0) {
      const stored = await this.readStored(unresolved.map((i) => rows[i]));
      for (const i of unresolved) {
        const r = rows[i];
        const s = stored.get(`${r.projectId}\u0000${r.id}`);
        if (!s) throw new Error(`feedback ${r.id} neither inserted nor found`);
        outcomes[i] = s.bodyHash === r.bodyHash ? { status: 'replayed', row: s } : { status: 'conflict', row: s };
      }
    }
    return outcomes;
  }

  private async readStored(rows: NewFeedbackRow[]): Promise<Map<string, FeedbackRow>> {
    const byProject = new Map<string, Set<string>>();
    for (const r of rows) {
      let ids = byProject.get(r.projectId);
      if (!ids) byProject.set(r.projectId, (ids = new Set()));
      ids.add(r.id);
    }
    const out = new Map<string, FeedbackRow>();
    for (const [projectId, ids] of byProject) {
      const list = [...ids];
      for (let i = 0; i < list.length; i += 500) {
        const found = await this.db
          .select()
          .from(feedback)
          .where(and(eq(feedback.projectId, projectId), inArray(feedback.id, list.slice(i, i + 500))));
        for (const f of found) out.set(`${f.projectId}\u0000${f.id}`, f);
      }
    }
    return out;
  }
}
