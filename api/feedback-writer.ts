// Group commit for feedback inserts. Concurrent requests hand their rows to one writer; the writer waits until the
// event loop has taken in whatever else arrived (setImmediate: after the current I/O poll phase), then writes
// everything pending in ONE atomic database call, and only then resolves each request's promise. So a request is
// acknowledged only after the transaction holding its rows has committed (nothing acknowledged can be lost to an
// application crash), while N concurrent requests pay for one transaction instead of N.
//
// Idempotency: client-chosen ids are looked up before the insert; a stored row with the same body hash is a replay
// (return the stored record), another hash a conflict (409). The INSERT still says ON CONFLICT (project_id, id) DO
// NOTHING, so a race with another instance can never store a duplicate.
// One unit (a request's rows: one event, or a whole batch) is never split across transactions.
import { and, eq, inArray } from 'drizzle-orm';
import { feedback } from '../shared/schema';
import type { Database } from './deps';
import { runRaw } from './raw-sql';

export type FeedbackRow = typeof feedback.$inferSelect;
export type NewFeedbackRow = Omit<FeedbackRow, 'seq'>;

/** `row` is the stored row: the one just written (created), or the one already there (replayed, conflict). */
export type WriteOutcome = { status: 'created' | 'replayed' | 'conflict'; row: NewFeedbackRow };

interface Unit {
  rows: NewFeedbackRow[];
  /** Per row: the id came from the client (so it may already exist). */
  clientIds: boolean[];
  resolve: (outcomes: WriteOutcome[]) => void;
  reject: (error: unknown) => void;
}

/**
 * Most rows one flush writes, as ONE INSERT statement. A feedback row binds 16 values; SQLite allows 32,766 bound
 * values per statement, so 2,000 rows (32,000) fit, and a unit (at most a 1,000-event batch) always fits whole.
 */
const MAX_ROWS_PER_FLUSH = 2000;

const COLUMNS = [
  'id', 'project_id', 'type', 'generation_id', 'rejected_generation_id', 'prompt', 'response', 'rejected',
  'correction', 'value', 'name', 'comment', 'user_id', 'metadata', 'body_hash', 'created_at',
] as const;
const ROW_PLACEHOLDERS = `(${COLUMNS.map(() => '?').join(',')})`;
const insertSqlCache = new Map<number, string>();

/** `INSERT ... VALUES (?...),(?...) ON CONFLICT DO NOTHING` for n rows, built once per n. */
function insertSql(n: number): string {
  let text = insertSqlCache.get(n);
  if (!text) {
    text = `INSERT INTO feedback (${COLUMNS.join(',')}) VALUES ${new Array(n).fill(ROW_PLACEHOLDERS).join(',')} ON CONFLICT (project_id, id) DO NOTHING`;
    if (insertSqlCache.size < 4096) insertSqlCache.set(n, text);
  }
  return text;
}

function pushParams(params: unknown[], r: NewFeedbackRow): void {
  params.push(
    r.id, r.projectId, r.type, r.generationId, r.rejectedGenerationId, r.prompt, r.response, r.rejected,
    r.correction, r.value, r.name, r.comment, r.userId, r.metadata == null ? null : JSON.stringify(r.metadata), r.bodyHash, r.createdAt,
  );
}

const schedule: (fn: () => void) => void =
  typeof globalThis.setImmediate === 'function' ? (fn) => globalThis.setImmediate(fn) : (fn) => setTimeout(fn, 0);

export class FeedbackWriter {
  private pending: Unit[] = [];
  private flushing = false;
  private scheduled = false;

  constructor(private readonly db: Database) {}

  /**
   * Stores `rows` atomically (with whatever else is pending) and says, per row, what happened. `clientIds[i]` marks
   * rows whose id the client chose (default: all), the only ones that can collide with stored rows.
   */
  write(rows: NewFeedbackRow[], clientIds: boolean[] = rows.map(() => true)): Promise<WriteOutcome[]> {
    if (rows.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.pending.push({ rows, clientIds, resolve, reject });
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
    let take = 0;
    let rowCount = 0;
    while (take < this.pending.length && (take === 0 || rowCount + this.pending[take].rows.length <= MAX_ROWS_PER_FLUSH)) {
      rowCount += this.pending[take].rows.length;
      take++;
    }
    const units = this.pending.slice(0, take);
    this.pending = this.pending.slice(take);
    try {
      const outcomes = await this.commit(
        units.flatMap((u) => u.rows),
        units.flatMap((u) => u.clientIds),
      );
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

  private async commit(rows: NewFeedbackRow[], clientIds: boolean[]): Promise<WriteOutcome[]> {
    // The first row per (project, id) is the candidate for insertion; later duplicates in this flush resolve against it.
    const firstIndex = new Map<string, number>();
    const firsts: number[] = [];
    rows.forEach((r, i) => {
      const k = `${r.projectId}\u0000${r.id}`;
      if (!firstIndex.has(k)) {
        firstIndex.set(k, i);
        firsts.push(i);
      }
    });
    // Only client-chosen ids can already exist (generated ids carry ~119 random bits): look those up first, so the
    // common case (no client ids) costs one statement.
    const withClientId = firsts.filter((i) => clientIds[i]).map((i) => rows[i]);
    const existing = withClientId.length > 0 ? await this.readStored(withClientId) : new Map<string, NewFeedbackRow>();
    const toInsert = firsts.map((i) => rows[i]).filter((r) => !existing.has(`${r.projectId}\u0000${r.id}`));

    if (toInsert.length > 0) {
      const params: unknown[] = [];
      for (const r of toInsert) pushParams(params, r);
      const { changes } = await runRaw(this.db, insertSql(toInsert.length), params);
      if (changes !== toInsert.length) {
        // Another process inserted one of these client ids between our look-up and our insert (several API
        // instances on one database). Re-read them; a same-body row then reads as a replay, another body as 409.
        const clientKeys = new Set(withClientId.map((r) => `${r.projectId}\u0000${r.id}`));
        const raced = await this.readStored(toInsert.filter((r) => clientKeys.has(`${r.projectId}\u0000${r.id}`)));
        for (const [k, v] of raced) existing.set(k, v);
      }
    }

    return rows.map((r, i): WriteOutcome => {
      const k = `${r.projectId}\u0000${r.id}`;
      const prior = existing.get(k);
      const first = rows[firstIndex.get(k)!];
      if (prior) return prior.bodyHash === r.bodyHash ? { status: 'replayed', row: prior } : { status: 'conflict', row: prior };
      if (first === r) return { status: 'created', row: r };
      return first.bodyHash === r.bodyHash ? { status: 'replayed', row: first } : { status: 'conflict', row: first };
    });
  }

  private async readStored(rows: NewFeedbackRow[]): Promise<Map<string, NewFeedbackRow>> {
    const byProject = new Map<string, Set<string>>();
    for (const r of rows) {
      let ids = byProject.get(r.projectId);
      if (!ids) byProject.set(r.projectId, (ids = new Set()));
      ids.add(r.id);
    }
    const out = new Map<string, NewFeedbackRow>();
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
