// Group commit, the scheduling half that the feedback and generation writers share: units handed in while the
// event loop takes in I/O are committed together once that turn is over (setImmediate: after the current poll
// phase), one batch in flight at a time. When a batch has committed, the next one is sent before the finished
// batch's units are answered: building and sending their responses keeps the event loop busy for a while, and the
// database (or the insert thread) would otherwise wait idle through it.

const schedule: (fn: () => void) => void =
  typeof globalThis.setImmediate === 'function' ? (fn) => globalThis.setImmediate(fn) : (fn) => setTimeout(fn, 0);

/** What a batch is bounded by: each unit's rows, and its `chars` when the writer binds text (feedback's row JSON). */
export interface GroupUnit {
  rows: readonly unknown[];
  chars?: number;
}

export interface GroupCommitOptions<U> {
  /** A batch takes whole pending units, in order, while it stays under these (the first unit always). */
  maxRows: number;
  maxChars?: number;
  /** Commits one batch and returns how to answer its units (called once the next batch is on its way); never rejects. */
  commit(units: U[]): Promise<() => void>;
}

export class GroupCommit<U extends GroupUnit> {
  private pending: U[] = [];
  private flushing = false;
  private scheduled = false;

  constructor(private readonly o: GroupCommitOptions<U>) {}

  add(unit: U): void {
    this.pending.push(unit);
    this.kick();
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
    const n = this.take();
    const units = this.pending.slice(0, n);
    this.pending = this.pending.slice(n);
    let answer: () => void;
    try {
      answer = await this.o.commit(units);
    } finally {
      // Even if a commit broke its contract and threw, later units must not wait behind it forever.
      this.flushing = false;
      if (this.pending.length > 0) void this.flush();
    }
    answer();
  }

  /** How many pending units the next batch takes. */
  private take(): number {
    const maxChars = this.o.maxChars ?? Infinity;
    let n = 0;
    let rows = 0;
    let chars = 0;
    for (const u of this.pending) {
      const c = u.chars ?? 0;
      if (n > 0 && (rows + u.rows.length > this.o.maxRows || chars + c > maxChars)) break;
      rows += u.rows.length;
      chars += c;
      n++;
    }
    return n;
  }
}
