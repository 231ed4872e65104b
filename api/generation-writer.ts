// Group commit for generation rows, as api/feedback-writer.ts does for feedback: the requests that finish in one
// turn of the event loop (under load, the sequences of one decode batch end on the same step) are stored by ONE
// INSERT, and each request is answered only after that statement committed, so an id a client receives always
// names a stored generation. Measured before this (bench:serve, concurrency 32): one drizzle INSERT per request,
// each its own SQLite transaction on the API thread, took ~10% of that thread, which shares two cores with the
// decode lanes. Generation ids are server-made and distinct, so there is no idempotency to resolve here.
import { generations } from '../shared/schema';
import type { Database } from './deps';
import { GroupCommit } from './group-commit';

export type NewGenerationRow = typeof generations.$inferInsert;

interface Unit {
  rows: NewGenerationRow[];
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** Most rows per flush: 12 columns each, far below SQLite's 32,766 bound parameters per statement. */
const MAX_ROWS_PER_FLUSH = 512;

export class GenerationWriter {
  private readonly group = new GroupCommit<Unit>({ maxRows: MAX_ROWS_PER_FLUSH, commit: (units) => this.commitUnits(units) });

  /** `groupCommit: false` (workerd, whose I/O belongs to the request that started it) stores each request alone. */
  constructor(private readonly db: Database, private readonly opts: { groupCommit: boolean } = { groupCommit: true }) {}

  /** Stores one request's outputs; resolves once they are committed. */
  write(rows: NewGenerationRow[]): Promise<void> {
    if (rows.length === 0) return Promise.resolve();
    if (!this.opts.groupCommit) return this.insert(rows);
    return new Promise((resolve, reject) => this.group.add({ rows, resolve, reject }));
  }

  private insert(rows: NewGenerationRow[]): Promise<void> {
    return this.db.insert(generations).values(rows).then(() => undefined);
  }

  private async commitUnits(units: Unit[]): Promise<() => void> {
    try {
      await this.insert(units.length === 1 ? units[0].rows : units.flatMap((u) => u.rows));
      return () => units.forEach((u) => u.resolve());
    } catch {
      // One statement is all or nothing: store the units one by one, so only a unit that fails on its own fails.
      const settled = await Promise.allSettled(units.map((u) => this.insert(u.rows)));
      return () => settled.forEach((r, i) => (r.status === 'fulfilled' ? units[i].resolve() : units[i].reject(r.reason)));
    }
  }
}
