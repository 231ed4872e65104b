// Starts prefloop the way a user does — `npm start` (api/main.ts) on its embedded defaults: SQLite file, local
// artifact store, in-process worker and scheduler — in a child process with its own temporary data directory,
// then creates the simulation's project and API key with the admin CLI (api/cli.ts). The simulation talks to
// it only over HTTP. The child's output goes to `<dataDir>/service.log`.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';

const repoRoot = resolve(import.meta.dirname, '..');

export interface ServiceOptions {
  /** Scratch directory for the database, artifacts and logs (created). */
  dataDir: string;
  /** Artifact directory of the base model (version 1). */
  baseModelDir: string;
  /** Extra environment for the service (e.g. worker settings). */
  env?: Record<string, string>;
  /** How long to wait for "ready" (ms). Default 180 s (a cold tsx start on a busy 2-core machine is slow). */
  startTimeoutMs?: number;
  /** Also start `npm run worker` (worker/main.ts) as its own process on the same database, for when the API
   *  process does not run one in-process. */
  separateWorker?: boolean;
}

export interface Service {
  url: string;
  /** Admin key of the `default` project (seeded through PREFLOOP_API_KEY). */
  adminKey: string;
  dbPath: string;
  logPath: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Runs a TypeScript entry of this repository with Node + tsx (no npm wrapper process in between). */
function node(args: string[], env: Record<string, string>, stdio: 'pipe' | 'inherit' = 'pipe'): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ['ignore', stdio, stdio] });
}

export async function startService(o: ServiceOptions): Promise<Service> {
  await mkdir(o.dataDir, { recursive: true });
  const dbPath = join(o.dataDir, 'prefloop.db');
  const logPath = join(o.dataDir, 'service.log');
  const adminKey = `sim_admin_${randomBytes(16).toString('hex')}`;
  const env: Record<string, string> = {
    PREFLOOP_DB: dbPath,
    HOST: '127.0.0.1',
    PORT: '0',
    PREFLOOP_API_KEY: adminKey,
    PREFLOOP_ARTIFACTS: join(o.dataDir, 'artifacts'),
    // New policies and reward models go under the same scratch directory (absolute file:// URI).
    PREFLOOP_ARTIFACT_ROOT: `file://${resolve(o.dataDir, 'artifacts')}/`,
    PREFLOOP_BASE_MODEL_DIR: resolve(o.baseModelDir),
    // The simulated users are one client sending as fast as the service answers: no rate limit.
    PREFLOOP_RATE_LIMIT_RPS: '0',
    // Follow a newly published policy quickly (the default 2 s would only add latency to each measurement).
    PREFLOOP_POLICY_POLL_MS: '250',
    // Notice the feedback threshold within a second (default tick: 60 s) and claim queued runs promptly.
    PREFLOOP_SCHEDULER_TICK_MS: '1000',
    PREFLOOP_WORKER_POLL_MS: '250',
    // A TF.js step can hold the worker's event loop for many seconds on a busy machine; a long lease keeps a
    // slow heartbeat from handing the run to a second attempt mid-way (the default 60 s is for real fleets).
    PREFLOOP_WORKER_LEASE_MS: '600000',
    ...o.env,
  };
  const child = node(['api/main.ts'], env);
  const log = createWriteStream(logPath);
  child.stdout!.pipe(log, { end: false });
  child.stderr!.pipe(log, { end: false });

  const startTimeoutMs = o.startTimeoutMs ?? 180_000;
  const url = await new Promise<string>((resolveUrl, reject) => {
    let seen = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`service did not start within ${startTimeoutMs} ms; see ${logPath}`));
    }, startTimeoutMs);
    child.stdout!.on('data', (d: Buffer) => {
      seen += d.toString();
      const m = /prefloop API ready on (http:\/\/\S+)/.exec(seen);
      if (m) {
        clearTimeout(timer);
        resolveUrl(m[1]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`service exited with ${code} before it was ready; see ${logPath}`));
    });
  });

  let worker: ChildProcess | undefined;
  if (o.separateWorker) {
    worker = node(['worker/main.ts'], env);
    worker.stdout!.pipe(log, { end: false });
    worker.stderr!.pipe(log, { end: false });
  }
  // If this process dies first, take the service down with it (no orphaned servers holding the data dir).
  const killAll = () => {
    child.kill('SIGKILL');
    worker?.kill('SIGKILL');
  };
  process.once('exit', killAll);
  const stopChild = async (p: ChildProcess) => {
    if (p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(t);
  };

  return {
    url,
    adminKey,
    dbPath,
    logPath,
    child,
    async stop() {
      await Promise.all([stopChild(child), ...(worker ? [stopChild(worker)] : [])]);
      process.removeListener('exit', killAll);
      log.end();
    },
  };
}

/** Runs the admin CLI against the service's database and returns its output. */
export async function cli(dbPath: string, args: string[]): Promise<string> {
  const p = node(['api/cli.ts', ...args], { PREFLOOP_DB: dbPath });
  let out = '';
  p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((r) => p.once('exit', r));
  if (code !== 0) throw new Error(`cli ${args.join(' ')} exited with ${code}: ${out}`);
  return out;
}

/** `projects create <name>` + `keys create --project <name> --scopes ingest,admin`: returns the new key. */
export async function createProjectAndKey(dbPath: string, name: string): Promise<{ projectId: string; key: string }> {
  const created = await cli(dbPath, ['projects', 'create', name]);
  const projectId = /\((proj_[^)]+)\)/.exec(created)?.[1];
  const out = await cli(dbPath, ['keys', 'create', '--project', name, '--scopes', 'ingest,admin', '--name', 'simulation']);
  const key = out
    .trim()
    .split('\n')
    .filter((l) => !l.startsWith('npm warn'))
    .at(-1)
    ?.trim();
  if (!projectId || !key) throw new Error(`could not parse the CLI output: ${created} ${out}`);
  return { projectId, key };
}
