// Node adapter for the FeedbackInserter port: the group-commit writer's INSERT runs on a worker thread with its own
// libsql connection, so the server uses both cores. Measured on the ingest benchmark before this (one thread): the
// event loop was ~0.97 cores busy and ~64% of its batch CPU was SQLite executing the INSERT, while the second core
// mostly idled. Now the event loop keeps HTTP, JSON, validation and hashing; the thread does SQLite.
//
// Durability is unchanged: the thread answers a message only after its statement (one autocommit transaction) has
// returned, and the writer resolves a request only on that answer. Only this thread writes feedback; the main
// connection still reads (client-id look-ups) and WAL shows it every committed insert. If the thread dies, its
// in-flight inserts are rejected (those requests get a 500, nothing was acknowledged) and the next insert starts a
// new thread.
//
// Lock contention: the API's own connection still writes other tables (generations, keys, training runs). Such a
// write waits in SQLite's busy handler, synchronously, while this thread holds the write lock, but it cannot starve:
// the writer keeps at most one flush here (at most MAX_ROWS_PER_FLUSH rows, ~10-20 ms of SQLite) and sends the next
// only from the event loop, which is the one waiting. So a write waits for at most the flush in progress plus the
// busy handler's next retry (its sleeps grow 1, 2, 5, 10, ... ms).
import { Worker } from 'node:worker_threads';
import type { FeedbackInserter } from '../deps';

export type InsertRequest = { id: number; op: 'insert'; rowsJson: string } | { id: number; op: 'close' };
export type InsertReply = { id: number; changes: number; error?: undefined } | { id: number; error: { message: string; code?: string } };

const BOOT = new URL('./feedback-insert-thread-boot.mjs', import.meta.url);

interface Waiter {
  resolve(changes: number): void;
  reject(error: Error): void;
}

/** One spawned thread and the answers it owes. */
interface Thread {
  worker: Worker;
  waiting: Map<number, Waiter>;
}

export class FeedbackInsertThread implements FeedbackInserter {
  private thread: Thread | null = null;
  private nextId = 1;
  private closed = false;

  /** `file`: the SQLite file, already migrated by the API's own connection. */
  constructor(private readonly file: string) {
    this.spawn();
  }

  insert(rowsJson: string): Promise<number> {
    return this.send({ id: this.nextId++, op: 'insert', rowsJson });
  }

  /** Answers every insert sent before it, then closes the thread's connection and ends the thread. */
  async close(): Promise<void> {
    const t = this.thread;
    if (this.closed) return;
    if (t) await this.send({ id: this.nextId++, op: 'close' }).catch(() => undefined);
    this.closed = true;
    if (t) await t.worker.terminate();
  }

  private send(m: InsertRequest): Promise<number> {
    if (this.closed) return Promise.reject(new Error('feedback insert thread is closed'));
    const t = this.thread ?? this.spawn();
    return new Promise<number>((resolve, reject) => {
      t.waiting.set(m.id, { resolve, reject });
      // Keep the process alive only while an answer is owed: an idle thread must not hold a finished process open.
      if (t.waiting.size === 1) t.worker.ref();
      t.worker.postMessage(m);
    });
  }

  private spawn(): Thread {
    const t: Thread = { worker: new Worker(BOOT, { workerData: { file: this.file } }), waiting: new Map() };
    t.worker.unref();
    t.worker.on('message', (r: InsertReply) => {
      const waiter = t.waiting.get(r.id);
      t.waiting.delete(r.id);
      if (t.waiting.size === 0) t.worker.unref();
      if (!waiter) return;
      if (r.error) waiter.reject(Object.assign(new Error(r.error.message), { code: r.error.code }));
      else waiter.resolve(r.changes);
    });
    const fail = (error: Error) => {
      if (this.thread === t) this.thread = null;
      for (const waiter of t.waiting.values()) waiter.reject(error);
      t.waiting.clear();
    };
    t.worker.on('error', fail);
    t.worker.on('exit', (code) => fail(new Error(`feedback insert thread exited (${code})`)));
    this.thread = t;
    return t;
  }
}
