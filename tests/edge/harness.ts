// The edge test harness: bundles an entry exactly as `wrangler deploy` would (wrangler.toml, esbuild, the
// .wasm module rule), runs it in workerd through Miniflare (the engine `wrangler dev --local` uses) with a
// local D1 and R2, and applies ./migrations to that D1 with drizzle's d1 migrator. Also the edge flavour of the
// Node tests' TestServer (tests/api/helpers.ts), so their contract tests run unchanged against workerd.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/d1';
import { migrate } from 'drizzle-orm/d1/migrator';
import { Miniflare } from 'miniflare';
import type { AppSettings, Database } from '../../api/deps';
import { addKey, createProject, DEFAULT_PROJECT, ensureProject } from '../../api/keys';
import { nodeSha256Hex } from '../../api/server';
import type { Scope } from '../../api/auth';
import { newId } from '../../shared/ids';
import * as schema from '../../shared/schema';
import { generations } from '../../shared/schema';
import type { TestServer } from '../api/helpers';

export const root = join(import.meta.dirname, '..', '..');

export interface Bundle {
  dir: string;
  /** Bytes of every uploaded module, and their gzip total as wrangler reports it. */
  totalKiB: number;
  gzipKiB: number;
  cleanup(): void;
}

/** `wrangler deploy --dry-run --outdir` for an entry (default: wrangler.toml's main). */
export async function bundle(entry?: string): Promise<Bundle> {
  const dir = mkdtempSync(join(tmpdir(), 'prefloop-edge-'));
  const args = ['deploy', '--dry-run', '--outdir', dir, ...(entry ? [entry] : [])];
  const { stdout } = await promisify(execFile)(join(root, 'node_modules/.bin/wrangler'), args, {
    cwd: root,
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false', NO_COLOR: '1', CI: '1' },
    maxBuffer: 16 << 20,
  });
  const m = /Total Upload: ([\d.]+) KiB \/ gzip: ([\d.]+) KiB/.exec(stdout);
  if (!m) throw new Error(`wrangler printed no upload size:\n${stdout}`);
  return { dir, totalKiB: Number(m[1]), gzipKiB: Number(m[2]), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** compatibility_date / _flags as wrangler.toml states them, so the tests run what a deploy would. */
export function wranglerCompat(): { compatibilityDate: string; compatibilityFlags: string[] } {
  const toml = readFileSync(join(root, 'wrangler.toml'), 'utf8');
  const date = /^compatibility_date\s*=\s*"([^"]+)"/m.exec(toml)?.[1];
  const flags = /^compatibility_flags\s*=\s*\[([^\]]*)\]/m.exec(toml)?.[1];
  if (!date) throw new Error('wrangler.toml has no compatibility_date');
  return { compatibilityDate: date, compatibilityFlags: [...(flags ?? '').matchAll(/"([^"]+)"/g)].map((x) => x[1]) };
}

export interface EdgeRuntime {
  mf: Miniflare;
  url: string;
  /** The `DB` binding, migrated. */
  db: Database;
  /** Another D1 binding of the runtime, migrated. */
  database(binding: string): Promise<Database>;
  bundle: Bundle;
  dispose(): Promise<void>;
}

/** Bundles `entry`, starts it in workerd on 127.0.0.1 with a migrated local D1 and an R2 bucket. */
/** How many separate D1 databases (DB_1..DB_n) the runtime offers test servers, one each: like the Node tests' files. */
export const TEST_DATABASES = 12;

export async function startEdge(entry: string, bindings: Record<string, string> = {}, options: { inspectorPort?: number } = {}): Promise<EdgeRuntime> {
  const b = await bundle(entry);
  // The entry (the one .js file wrangler writes) must come first: it is workerd's main module.
  const modules = readdirSync(b.dir)
    .filter((f) => f.endsWith('.js') || f.endsWith('.wasm'))
    .sort((x, y) => Number(y.endsWith('.js')) - Number(x.endsWith('.js')));
  const mf = new Miniflare({
    ...wranglerCompat(),
    modulesRoot: b.dir,
    modules: modules.map((f) => ({ type: f.endsWith('.wasm') ? ('CompiledWasm' as const) : ('ESModule' as const), path: join(b.dir, f) })),
    d1Databases: ['DB', ...Array.from({ length: TEST_DATABASES }, (_, i) => `DB_${i + 1}`)],
    r2Buckets: ['ARTIFACTS'],
    bindings: { ARTIFACTS_BUCKET: 'prefloop-artifacts', GENERATION: 'edge', SQS_QUEUE_URL: '', SQS_DLQ_URL: '', ...bindings },
    host: '127.0.0.1',
    port: 0,
    ...(options.inspectorPort ? { inspectorPort: options.inspectorPort, inspectorHost: '127.0.0.1' } : {}),
  });
  const url = (await mf.ready).toString().replace(/\/$/, '');
  const database = async (binding: string) => {
    const db = drizzle((await mf.getD1Database(binding)) as never, { schema }) as unknown as Database;
    await migrate(db as never, { migrationsFolder: join(root, 'migrations') });
    return db;
  };
  return {
    mf,
    url,
    db: await database('DB'),
    database,
    bundle: b,
    async dispose() {
      await mf.dispose();
      b.cleanup();
    },
  };
}

/** Puts every file of `dir` into the runtime's R2 bucket under `prefix` (e.g. `base/` = base:// at the edge). */
export async function uploadDir(edge: EdgeRuntime, dir: string, prefix: string): Promise<void> {
  const r2 = (await edge.mf.getR2Bucket('ARTIFACTS')) as unknown as { put(key: string, value: Uint8Array): Promise<unknown> };
  for (const f of readdirSync(dir)) {
    // A Node Buffer does not cross Miniflare's proxy (its devalue rejects the Buffer constructor): a plain Uint8Array.
    if (statSync(join(dir, f)).isFile()) await r2.put(`${prefix}${f}`, new Uint8Array(readFileSync(join(dir, f))));
  }
}

/** Bytes of a directory's files (the bundle), for the size report. */
export function dirBytes(dir: string): number {
  return readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
}

export const ADMIN_KEY = `pfk_test_admin_${'a'.repeat(24)}`;

let instances = 0;

/**
 * A TestServer (tests/api/helpers.ts) backed by a fresh app instance inside the edge runtime's workerd, on a D1
 * database of its own (several servers are alive at once, as in the Node tests): same seeding as startServer
 * (default project + ADMIN_KEY), requests over real HTTP.
 */
export async function startEdgeTestServer(
  edge: EdgeRuntime,
  opts: { settings?: Partial<AppSettings>; clock?: () => number; vars?: Record<string, string> } = {},
): Promise<TestServer> {
  const clock = opts.clock ?? Date.now;
  const id = `s${++instances}`;
  if (instances > TEST_DATABASES) throw new Error(`more than ${TEST_DATABASES} edge test servers: raise TEST_DATABASES`);
  const binding = `DB_${instances}`;
  const db = await edge.database(binding);
  const { project } = await ensureProject(db, DEFAULT_PROJECT, clock());
  await addKey(db, { projectId: project.id, name: 'PREFLOOP_API_KEY', scopes: ['admin'], key: ADMIN_KEY, now: clock(), sha256: nodeSha256Hex });
  const made = await fetch(`${edge.url}/__test/instances`, { method: 'POST', body: JSON.stringify({ id, binding, settings: opts.settings, now: clock(), vars: opts.vars }) });
  if (!made.ok) throw new Error(`test instance: ${made.status} ${await made.text()}`);
  const url = `${edge.url}/__i/${id}`;
  const t = {
    url,
    port: Number(new URL(edge.url).port),
    db,
    defaultProjectId: project.id,
    dir: '',
    app: undefined as never,
    call(path: string, init: RequestInit & { key?: string | null; json?: unknown } = {}) {
      const headers = new Headers(init.headers);
      const key = init.key === undefined ? ADMIN_KEY : init.key;
      if (key !== null && !headers.has('authorization')) headers.set('authorization', `Bearer ${key}`);
      headers.set('x-test-now', String(clock()));
      let body = init.body;
      if (init.json !== undefined) {
        body = JSON.stringify(init.json);
        if (!headers.has('content-type')) headers.set('content-type', 'application/json');
      }
      return fetch(`${url}${path}`, { ...init, headers, body });
    },
    async key(projectId: string, scopes: Scope[]) {
      return (await addKey(db, { projectId, name: `test ${scopes.join('+')}`, scopes, now: clock(), sha256: nodeSha256Hex })).key;
    },
    async project(name: string) {
      const p = await createProject(db, name, clock());
      return { id: p.id, admin: await t.key(p.id, ['admin']), ingest: await t.key(p.id, ['ingest']) };
    },
    async generation(projectId: string, prompt: string, output: string) {
      const gid = newId('gen');
      await db.insert(generations).values({
        id: gid,
        projectId,
        requestId: newId('req'),
        policyVersion: 0,
        prompt,
        output,
        params: {},
        promptTokens: 3,
        completionTokens: 5,
        finishReason: 'stop' as const,
        createdAt: clock(),
      });
      return gid;
    },
    async count(table: string) {
      const [row] = await db.all<{ n: number }>(sql.raw(`SELECT count(*) AS n FROM ${table}`));
      return Number(row.n);
    },
    async close() {},
    async stop() {},
  };
  return t as unknown as TestServer;
}
