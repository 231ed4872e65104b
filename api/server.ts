// Node start-up wiring, in one function that main.ts, integration tests and benchmarks share: open and migrate the
// database, seed the default project and its admin key, build the portable app with Node adapters, and serve it
// with @hono/node-server. Later issues extend it through `ports` (queue, artifacts, policy runtime) and `onApp`.
import { hash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { serve } from '@hono/node-server';
import { createApp } from './app';
import type { AppContext, App } from './context';
import { FeedbackInsertThread } from './adapters/feedback-insert-thread';
import { openDatabase } from './database';
import { type AppDeps, type AppSettings, type Database, defaultSettings } from './deps';
import { DEFAULT_PROJECT, addKey, ensureProject } from './keys';

export interface StartOptions {
  /** SQLite file path. */
  dbPath: string;
  host?: string;
  /** 0 picks a free port (tests, benchmarks). */
  port?: number;
  /** Seeded as an admin key of the default project. */
  apiKey?: string;
  /** On a database without a default project and no apiKey: generate an admin key and return it. */
  generateKeyOnFirstStart?: boolean;
  settings?: Partial<AppSettings>;
  clock?: () => number;
  /** Optional ports filled in by later issues (or a factory that needs the open database, e.g. the policy registry). */
  ports?: Pick<AppDeps, 'queue' | 'artifacts' | 'policies'> | ((db: Database, clock: () => number) => Pick<AppDeps, 'queue' | 'artifacts' | 'policies'>);
  /** Run feedback INSERTs on a thread of their own (default true; api/adapters/feedback-insert-thread.ts). */
  insertThread?: boolean;
  /** Called with the app before it serves (register extra routes here). */
  onApp?: (app: App, ctx: AppContext) => void | Promise<void>;
}

export interface RunningServer {
  url: string;
  port: number;
  app: App & { ctx: AppContext };
  db: Database;
  defaultProjectId: string;
  /** The admin key generated on first start (only when asked for and the default project was new). */
  generatedKey?: string;
  close(): Promise<void>;
}

/**
 * Node's synchronous SHA-256: ~2.5 µs per key against ~25–45 µs for Web Crypto's async digest (measured here). The
 * one-shot crypto.hash (Node >= 20.12) took ~0.4 µs per short body hash against ~0.9-1.1 µs for
 * createHash().update().digest(): it runs once per ingested event.
 */
export const nodeSha256Hex = (text: string) => hash('sha256', text, 'hex');

export async function startServer(opts: StartOptions): Promise<RunningServer> {
  const clock = opts.clock ?? Date.now;
  const { db, close: closeDb } = await openDatabase(opts.dbPath);
  // Started after openDatabase has migrated the file; its connection only ever inserts feedback.
  const inserter = opts.insertThread === false ? undefined : new FeedbackInsertThread(resolve(opts.dbPath));

  const { project, created } = await ensureProject(db, DEFAULT_PROJECT, clock());
  if (opts.apiKey) {
    await addKey(db, { projectId: project.id, name: 'PREFLOOP_API_KEY', scopes: ['admin'], key: opts.apiKey, now: clock(), sha256: nodeSha256Hex });
  }
  let generatedKey: string | undefined;
  if (!opts.apiKey && opts.generateKeyOnFirstStart && created) {
    generatedKey = (await addKey(db, { projectId: project.id, name: 'generated on first start', scopes: ['admin'], now: clock(), sha256: nodeSha256Hex })).key;
  }

  const deps: AppDeps = {
    db,
    clock,
    settings: { ...defaultSettings, ...opts.settings, rateLimit: { ...defaultSettings.rateLimit, ...opts.settings?.rateLimit } },
    sha256: nodeSha256Hex,
    feedbackInserter: inserter,
    ...(typeof opts.ports === 'function' ? opts.ports(db, clock) : opts.ports),
  };
  const app = createApp(deps);
  await opts.onApp?.(app, app.ctx);

  const server = await new Promise<ReturnType<typeof serve>>((resolveServer, reject) => {
    const s = serve({ fetch: app.fetch, hostname: opts.host ?? '127.0.0.1', port: opts.port ?? 8787 }, () => resolveServer(s));
    s.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  const host = opts.host ?? '127.0.0.1';
  const urlHost = host.includes(':') ? `[${host}]` : host;

  return {
    url: `http://${urlHost}:${port}`,
    port,
    app,
    db,
    defaultProjectId: project.id,
    generatedKey,
    async close() {
      await deps.policies?.stop(); // waits for in-flight generations, releases sessions, stops polling
      await new Promise<void>((r) => {
        server.close(() => r());
        // Idle keep-alive sockets would hold close() open.
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      });
      await inserter?.close(); // after every insert already sent has been answered
      closeDb();
    },
  };
}
