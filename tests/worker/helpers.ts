// Set-up for the training worker integration tests: a temp directory with a tiny randomly initialised base
// model written by the real exporter (config.json, tokenizer.json, model.safetensors, policy.onnx), a real
// SQLite file, the real API over HTTP (policy registry polling the database), and feedback with a hidden
// preference sent through POST /v1/feedback/batch.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eq } from 'drizzle-orm';
import { nodeServingPorts } from '../../api/adapters/node-serving';
import { startServer, type RunningServer } from '../../api/server';
import { randomPolicyWeights, TINY_POLICY_CONFIG } from '../../bench/random-policy';
import { splitOf } from '../../shared/preference-pairs';
import { policies, trainingRuns } from '../../shared/schema';
import { Tokenizer } from '../../shared/tokenizer';
import { exportArtifacts } from '../../worker/export';
import type { WorkerEnv } from '../../worker/run/env';

export const ADMIN_KEY = 'pfk_test_worker_admin_0123456789abcdef';

/** Small and fast: every stage finishes in seconds on 2 cores. */
export const TEST_TRAINING = {
  rewardModel: { epochs: 4, batchSize: 16, maxLength: 48, learningRate: 1e-3 },
  sft: { epochs: 1, batchSize: 8 },
  ppo: { totalEpisodes: 192, rolloutBatchSize: 32, miniBatchSize: 16, ppoEpochs: 2, responseLength: 12, learningRate: 2e-3, maxPromptLength: 24 },
  run: { evalPrompts: 12, klBudget: 100 },
};

export interface WorkerFixture {
  dir: string;
  dbPath: string;
  baseDir: string;
  artifactsDir: string;
  api: RunningServer;
  /** Environment for a worker on this fixture (in-process or child). */
  env(extra?: Partial<WorkerEnv>): WorkerEnv;
  /** The same as process environment strings (for a child `npm run worker`). */
  processEnv(extra?: Record<string, string>): Record<string, string>;
  call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  cleanup(): Promise<void>;
}

export async function makeWorkerFixture(): Promise<WorkerFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'prefloop-worker-'));
  const baseDir = join(dir, 'base');
  const artifactsDir = join(dir, 'artifacts');
  const dbPath = join(dir, 'prefloop.db');
  const c = TINY_POLICY_CONFIG;
  await exportArtifacts(randomPolicyWeights(c, 7), c, JSON.stringify(Tokenizer.byteLevel().toJSON()), baseDir, { kinds: ['policy'] });
  const api = await startServer({
    dbPath,
    port: 0,
    apiKey: ADMIN_KEY,
    settings: { rateLimit: { requestsPerSecond: 0, burst: 1 } },
    ports: nodeServingPorts({ artifactsDir, baseModelDir: baseDir, pollMs: 200, log: () => undefined }),
  });
  const env = (extra: Partial<WorkerEnv> = {}): WorkerEnv => ({
    PREFLOOP_DB: dbPath,
    PREFLOOP_ARTIFACT_ROOT: 'file://',
    PREFLOOP_BASE_URI: 'base://',
    PREFLOOP_WORKER_LEASE_MS: 60_000,
    PREFLOOP_WORKER_POLL_MS: 100,
    PREFLOOP_SCHEDULER_TICK_MS: 0,
    ...extra,
  });
  return {
    dir,
    dbPath,
    baseDir,
    artifactsDir,
    api,
    env,
    processEnv: (extra = {}) => ({
      PREFLOOP_DB: dbPath,
      PREFLOOP_ARTIFACTS: artifactsDir,
      PREFLOOP_BASE_MODEL_DIR: baseDir,
      PREFLOOP_ARTIFACT_ROOT: 'file://',
      PREFLOOP_WORKER_POLL_MS: '100',
      PREFLOOP_SCHEDULER_TICK_MS: '0',
      ...extra,
    }),
    async call(method, path, body) {
      const res = await fetch(api.url + path, {
        method,
        headers: { authorization: `Bearer ${ADMIN_KEY}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, body: await res.json() };
    },
    async cleanup() {
      await api.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function mulberry(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Prompts with at least `heldOut` of them in the held-out split (stable prompt hash), and comparison + thumbs
 * + correction feedback whose hidden preference is "more letters e": an easy feature for a tiny RM to learn
 * and for PPO to move.
 */
export function syntheticFeedback(nPrompts: number, heldOut: number, seed = 1) {
  const r = mulberry(seed);
  const word = (eRate: number) =>
    Array.from({ length: 3 + Math.floor(r() * 4) }, () => (r() < eRate ? 'e' : String.fromCharCode(97 + Math.floor(r() * 26)))).join('');
  const text = (eRate: number) => Array.from({ length: 4 }, () => word(eRate)).join(' ');
  const prompts: string[] = [];
  let held = 0;
  for (let i = 0; prompts.length < nPrompts || held < heldOut; i++) {
    const p = `Q${i}: tell me about ${word(0.1)}`;
    const isHeld = splitOf(p) === 'heldout';
    if (isHeld && held >= heldOut) continue;
    if (!isHeld && prompts.length - held >= nPrompts - heldOut) continue;
    prompts.push(p);
    if (isHeld) held++;
  }
  const events: unknown[] = [];
  for (const [i, prompt] of prompts.entries()) {
    for (let k = 0; k < 3; k++) events.push({ type: 'comparison', prompt, chosen: text(0.7), rejected: text(0.02) });
    events.push({ type: 'thumbs', value: 'up', prompt, response: text(0.6) });
    events.push({ type: 'thumbs', value: 'down', prompt, response: text(0.01) });
    if (i % 4 === 0) events.push({ type: 'correction', prompt, response: text(0.02), correction: text(0.8) });
  }
  return { prompts, events };
}

export async function sendFeedback(f: WorkerFixture, events: unknown[]): Promise<void> {
  for (let i = 0; i < events.length; i += 500) {
    const r = await f.call('POST', '/v1/feedback/batch', { events: events.slice(i, i + 500) });
    if (r.status !== 200 && r.status !== 207) throw new Error(`feedback batch: ${r.status} ${JSON.stringify(r.body)}`);
    const failed = (r.body.results ?? []).filter((x: any) => x.status >= 400);
    if (failed.length) throw new Error(`feedback refused: ${JSON.stringify(failed[0])}`);
  }
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs: number, everyMs = 200): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function runRow(f: WorkerFixture, runId: string) {
  const [r] = await f.api.db.select().from(trainingRuns).where(eq(trainingRuns.id, runId));
  return r;
}

export async function policyRows(f: WorkerFixture, projectId: string) {
  return (await f.api.db.select().from(policies).where(eq(policies.projectId, projectId))).sort((a, b) => a.version - b.version);
}

import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';

export const REPO_ROOT = join(import.meta.dirname, '..', '..');

/** `npm run worker` equivalent (node --import tsx worker/main.ts) in a child process; logs to <dir>/worker-N.log. */
export function spawnWorker(f: WorkerFixture, extra: Record<string, string> = {}, n = 1): { child: ChildProcess; logPath: string; exited: Promise<number | null> } {
  const logPath = join(f.dir, `worker-${n}.log`);
  const out = createWriteStream(logPath);
  const child = spawn(process.execPath, ['--import', 'tsx', 'worker/main.ts'], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...f.processEnv(extra) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.pipe(out);
  child.stderr!.pipe(out);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, logPath, exited };
}
