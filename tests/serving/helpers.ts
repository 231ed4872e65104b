// Shared set-up for the serving integration tests: a temp directory with a random "base model" (base://) and
// more random policies under file://, a real SQLite file, and the real server over HTTP.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeRandomPolicy, type RandomPolicy } from '../../bench/random-policy';
import { nodeServingPorts, type NodeServingOptions } from '../../api/adapters/node-serving';
import { startServer, type RunningServer } from '../../api/server';
import { policies } from '../../shared/schema';
import type { Database } from '../../api/deps';

export const ADMIN_KEY = 'pfk_test_admin_key_0123456789abcdef';

export interface Fixture {
  dir: string;
  base: RandomPolicy;
  dbPath: string;
  artifactsDir: string;
  start(o?: Partial<NodeServingOptions> & { dbPath?: string }): Promise<RunningServer>;
  /** Writes a random policy under file://policies/<name> and returns its URI and sha256. */
  addPolicyArtifact(name: string, seed: number): Promise<{ uri: string; sha256: string; dir: string }>;
  cleanup(): void;
}

export async function makeFixture(): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'prefloop-serving-'));
  const base = await writeRandomPolicy(join(dir, 'base'), 1);
  const artifactsDir = join(dir, 'artifacts');
  return {
    dir,
    base,
    dbPath: join(dir, 'prefloop.db'),
    artifactsDir,
    start: (o = {}) =>
      startServer({
        dbPath: o.dbPath ?? join(dir, 'prefloop.db'),
        port: 0,
        apiKey: ADMIN_KEY,
        settings: { rateLimit: { requestsPerSecond: 0, burst: 1 } },
        ports: nodeServingPorts({ artifactsDir, baseModelDir: base.dir, pollMs: 150, log: () => undefined, ...o }),
      }),
    async addPolicyArtifact(name, seed) {
      const p = await writeRandomPolicy(join(artifactsDir, 'policies', name), seed);
      return { uri: `file://policies/${name}`, sha256: p.sha256, dir: p.dir };
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export async function insertPolicy(db: Database, row: { projectId: string; version: number; uri: string; sha256: string; status?: 'candidate' | 'live' | 'retired' | 'rejected'; parent?: number }) {
  await db.insert(policies).values({
    projectId: row.projectId,
    version: row.version,
    parentVersion: row.parent ?? 1,
    artifactUri: row.uri,
    sha256: row.sha256,
    status: row.status ?? 'candidate',
    metrics: {},
    createdAt: Date.now(),
  });
}

export function client(server: RunningServer, key = ADMIN_KEY) {
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(server.url + path, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, json, text, headers: res.headers };
  };
  return {
    get: (path: string) => call('GET', path),
    post: (path: string, body: unknown = {}) => call('POST', path, body),
  };
}

/** Parses a text/event-stream body into events. */
export function parseSse(text: string): { event: string; data: string }[] {
  return text
    .split(/\n\n/)
    .filter((b) => b.trim())
    .map((block) => {
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      return { event, data: data.join('\n') };
    });
}
