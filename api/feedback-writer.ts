// Group commit for feedback inserts. Concurrent requests hand their rows to one writer; the writer waits until the
// event loop has taken in whatever else arrived (setImmediate, api/group-commit.ts: after the current poll phase), writes
// everything pending in ONE atomic database call, and only then resolves each request's promise. So a request is
// acknowledged only after the transaction holding its rows has committed (nothing acknowledged can be lost to an
// application crash), while N concurrent requests pay for one transaction instead of N.
//
// Idempotency: client-chosen ids are looked up before the insert; a stored row with the same body hash is a replay
// (return the stored record), another hash a conflict (409). The INSERT still says ON CONFLICT (project_id, id) DO
// NOTHING, so a race with another instance can never store a duplicate.
// One unit (a request's rows: one event, or a whole batch) is never split across transactions.
import { and, eq } from 'drizzle-orm';
import { feedback } from '../shared/schema';
import { inJsonList } from '../shared/sql-lists';
import type { Database, FeedbackInserter } from './deps';
import { GroupCommit } from './group-commit';
import { runRaw } from './raw-sql';

export type FeedbackRow = typeof feedback.$inferSelect;
export type NewFeedbackRow = Omit<FeedbackRow, 'seq'>;

/** `row` is the stored row: the one just written (created), or the one already there (replayed, conflict). */
export type WriteOutcome = { status: 'created' | 'replayed' | 'conflict'; row: NewFeedbackRow };

interface Unit {
  rows: NewFeedbackRow[];
  /** rowJson of each row, made in the request's turn (not in the flush, which every pending request waits on). */
  json: string[];
  chars: number;
  /** Per row: the id came from the client (so it may already exist). */
  clientIds: boolean[];
  resolve: (outcomes: WriteOutcome[]) => void;
  reject: (error: unknown) => void;
}

/**
 * Most rows one flush writes. A unit (at most a 1,000-event batch) always fits whole; more units join a flush while
 * it stays under this and under MAX_FLUSH_CHARS.
 */
const MAX_ROWS_PER_FLUSH = 2000;
/**
 * Most characters of row JSON one flush binds (the one parameter below). Cloudflare D1 caps a bound string at
 * 2,000,000 bytes; a unit is bounded by the request body limit (default 1 MiB), and further units join only below this.
 */
const MAX_FLUSH_CHARS = 1_000_000;

/** Column order of the row arrays rowJson makes (and FEEDBACK_INSERT_SQL, or the insert thread, unpacks). */
export const FEEDBACK_COLUMNS = [
  'id', 'project_id', 'type', 'generation_id', 'rejected_generation_id', 'prompt', 'response', 'rejected',
  'correction', 'value', 'name', 'comment', 'user_id', 'metadata', 'body_hash', 'created_at',
] as const;

/**
 * The whole flush is ONE statement with ONE bound parameter: a JSON array of rows, each an array in FEEDBACK_COLUMNS order,
 * unpacked by SQLite's json_each. Against a multi-row `VALUES (?,...),(?,...)` statement (measured in the ingest
 * benchmark): the SQL text is constant (preparing a 1,000-row VALUES statement of 16,000 placeholders was ~12% of a
 * batch's server CPU), the values cross into SQLite as one string instead of one binding each, and it stays under
 * D1's limit of 100 bound parameters per statement. `WHERE true` is SQLite's required disambiguation of
 * INSERT ... SELECT ... ON CONFLICT. Values round-trip exactly (strings, NUL included; doubles), checked in the tests.
 */
export const FEEDBACK_INSERT_SQL =
  `INSERT INTO feedback (${FEEDBACK_COLUMNS.join(',')}) SELECT ${FEEDBACK_COLUMNS.map((_, i) => `value->>${i}`).join(',')} ` +
  'FROM json_each(?) WHERE true ON CONFLICT (project_id, id) DO NOTHING';

type WellFormed = { isWellFormed?(): boolean; toWellFormed?(): string };
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * A lone UTF-16 surrogate becomes U+FFFD, as binding the string as a parameter would do: JSON would carry it as a
 * `\ud800` escape, which SQLite decodes into bytes that are not UTF-8 (the libsql driver aborts reading them back).
 */
function wellFormed(s: string): string {
  const w = s as unknown as WellFormed;
  if (w.isWellFormed && w.toWellFormed) return w.isWellFormed() ? s : w.toWellFormed();
  return s.replace(LONE_SURROGATE, '\ufffd');
}
const text = (s: string | null) => (s === null ? null : wellFormed(s));

/** One row as the JSON array FEEDBACK_INSERT_SQL unpacks (metadata travels as its own JSON text, as the column stores it). */
export function rowJson(r: NewFeedbackRow): string {
  return JSON.stringify([
    r.id, r.projectId, r.type, r.generationId, r.rejectedGenerationId, wellFormed(r.prompt), wellFormed(r.response), text(r.rejected),
    text(r.correction), r.value, r.name, text(r.comment), r.userId, r.metadata == null ? null : JSON.stringify(r.metadata), r.bodyHash, r.createdAt,
  ]);
}

export class FeedbackWriter {
  private readonly group = new GroupCommit<Unit>({ maxRows: MAX_ROWS_PER_FLUSH, maxChars: MAX_FLUSH_CHARS, commit: (units) => this.commitUnits(units) });
  private readonly insertRows: (rowsJson: string) => Promise<number>;

  /**
   * `groupCommit: false` commits each request's unit on its own. Cloudflare Workers need that: workerd binds I/O to
   * the request that started it, so one request's flush cannot carry (and resolve) another request's rows.
   * `inserter` runs the INSERT elsewhere (Node: a thread of its own); look-ups of client ids stay on `db`.
   */
  constructor(
    private readonly db: Database,
    private readonly opts: { groupCommit: boolean; inserter?: FeedbackInserter } = { groupCommit: true },
  ) {
    const inserter = opts.inserter;
    this.insertRows = inserter
      ? (rowsJson) => inserter.insert(rowsJson)
      : async (rowsJson) => (await runRaw(db, FEEDBACK_INSERT_SQL, [rowsJson])).changes;
  }

  /**
   * Stores `rows` atomically (with whatever else is pending) and says, per row, what happened. `clientIds[i]` marks
   * rows whose id the client chose (default: all), the only ones that can collide with stored rows.
   */
  write(rows: NewFeedbackRow[], clientIds: boolean[] = rows.map(() => true)): Promise<WriteOutcome[]> {
    if (rows.length === 0) return Promise.resolve([]);
    const json = rows.map(rowJson);
    if (!this.opts.groupCommit) return this.commit(rows, json, clientIds);
    let chars = 0;
    for (const j of json) chars += j.length + 1;
    return new Promise((resolve, reject) => this.group.add({ rows, json, chars, clientIds, resolve, reject }));
  }

  /** One flush: its units' rows in one commit, then (once the next flush is on its way) each unit's outcomes. */
  private async commitUnits(units: Unit[]): Promise<() => void> {
    let outcomes: WriteOutcome[];
    try {
      outcomes = await this.commit(
        units.length === 1 ? units[0].rows : units.flatMap((u) => u.rows),
        units.length === 1 ? units[0].json : units.flatMap((u) => u.json),
        units.length === 1 ? units[0].clientIds : units.flatMap((u) => u.clientIds),
      );
    } catch (failure) {
      return () => units.forEach((u) => u.reject(failure));
    }
    return () => {
      let at = 0;
      for (const u of units) {
        u.resolve(outcomes.slice(at, at + u.rows.length));
        at += u.rows.length;
      }
    };
  }

  private async commit(rows: NewFeedbackRow[], json: string[], clientIds: boolean[]): Promise<WriteOutcome[]> {
    if (!clientIds.includes(true)) {
      // Only generated ids (time-ordered, ~71 random bits per millisecond): distinct by construction, so there is
      // nothing to look up and nothing to resolve. The common case, and one statement.
      await this.insertRows(`[${json.join(',')}]`);
      return rows.map((row): WriteOutcome => ({ status: 'created', row }));
    }
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
    // Only client-chosen ids can already exist: look those up first.
    const withClientId = firsts.filter((i) => clientIds[i]).map((i) => rows[i]);
    const existing = withClientId.length > 0 ? await this.readStored(withClientId) : new Map<string, NewFeedbackRow>();
    const insertAt = firsts.length === rows.length && existing.size === 0 ? firsts : firsts.filter((i) => !existing.has(`${rows[i].projectId}\u0000${rows[i].id}`));
    const toInsert = insertAt.map((i) => rows[i]);

    if (toInsert.length > 0) {
      let param = '[';
      for (let k = 0; k < insertAt.length; k++) param += (k === 0 ? '' : ',') + json[insertAt[k]];
      const changes = await this.insertRows(`${param}]`);
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
      const found = await this.db
        .select()
        .from(feedback)
        .where(and(eq(feedback.projectId, projectId), inJsonList(feedback.id, [...ids])));
      for (const f of found) out.set(`${f.projectId}\u0000${f.id}`, f);
    }
    return out;
  }
}
