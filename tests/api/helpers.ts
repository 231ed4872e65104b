// Shared set-up for the API integration tests: the real server (startServer) on port 0 over a fresh SQLite file in
// a temp directory, plus helpers to make projects, keys and generations directly in that database.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { expect } from 'vitest';
import type { Scope } from '../../api/auth';
import type { AppSettings } from '../../api/deps';
import { addKey, createProject } from '../../api/keys';
import { type RunningServer, nodeSha256Hex, startServer } from '../../api/server';
import { newId } from '../../shared/ids';
import { generations } from '../../shared/schema';

export const ADMIN_KEY = `pfk_test_admin_${'a'.repeat(24)}`;

export interface TestServer extends RunningServer {
  dir: string;
  /** fetch against the server with the admin key (override with `key`). */
  call(path: string, init?: RequestInit & { key?: string | null; json?: unknown }): Promise<Response>;
  /** A new project with an admin key and an ingest key. */
  project(name: string): Promise<{ id: string; admin: string; ingest: string }>;
  key(projectId: string, scopes: Scope[]): Promise<string>;
  generation(projectId: string, prompt: string, output: string): Promise<string>;
  count(table: string): Promise<number>;
  stop(): Promise<void>;
}

export async function startTestServer(opts: { settings?: Partial<AppSettings>; clock?: () => number } = {}): Promise<TestServer> {
  const dir = mkdtempSync(join(os.tmpdir(), 'prefloop-api-test-'));
  const server = await startServer({ dbPath: join(dir, 'test.db'), port: 0, apiKey: ADMIN_KEY, settings: opts.settings, clock: opts.clock });
  const clock = opts.clock ?? Date.now;
  const t: TestServer = Object.assign(server, {
    dir,
    call(path: string, init: RequestInit & { key?: string | null; json?: unknown } = {}) {
      const headers = new Headers(init.headers);
      const key = init.key === undefined ? ADMIN_KEY : init.key;
      if (key !== null && !headers.has('authorization')) headers.set('authorization', `Bearer ${key}`);
      let body = init.body;
      if (init.json !== undefined) {
        body = JSON.stringify(init.json);
        if (!headers.has('content-type')) headers.set('content-type', 'application/json');
      }
      return fetch(`${server.url}${path}`, { ...init, headers, body });
    },
    async key(projectId: string, scopes: Scope[]) {
      return (await addKey(server.db, { projectId, name: `test ${scopes.join('+')}`, scopes, now: clock(), sha256: nodeSha256Hex })).key;
    },
    async project(name: string) {
      const p = await createProject(server.db, name, clock());
      return { id: p.id, admin: await t.key(p.id, ['admin']), ingest: await t.key(p.id, ['ingest']) };
    },
    async generation(projectId: string, prompt: string, output: string) {
      const id = newId('gen');
      await server.db.insert(generations).values({
        id,
        projectId,
        requestId: newId('req'),
        policyVersion: 0,
        prompt,
        output,
        params: {},
        promptTokens: 3,
        completionTokens: 5,
        finishReason: 'stop',
        createdAt: clock(),
      });
      return id;
    },
    async count(table: string) {
      const [row] = await server.db.all<{ n: number }>(sql.raw(`SELECT count(*) AS n FROM ${table}`));
      return Number(row.n);
    },
    async stop() {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  });
  return t;
}

/** Reads a JSONL body back line by line. */
export async function jsonLines(res: Response): Promise<unknown[]> {
  const text = await res.text();
  expect(text === '' || text.endsWith('\n')).toBe(true);
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l));
}
