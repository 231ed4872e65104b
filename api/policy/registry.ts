// The policy registry: which policy each project serves, loaded and ready, kept in step with the database.
//
// - Lazy bootstrap: a project with no policy row at all gets version 1 = the bundled base model (`base://`)
//   registered live the first time it asks for a generation (not at project creation, so projects created
//   by the CLI, the API or a test need no extra step, and a process without the base model can still start).
// - Swap: a new live version is loaded in the background (sha256, session, smoke pass: loader.ts), then
//   installed with one assignment. Requests hold a lease on the model they started with, so in-flight
//   requests finish on the old session; a model is released once no project serves it and no lease holds it.
// - Refusal: a version that fails to load is logged and remembered; the previous policy keeps serving.
// - Convergence: every PREFLOOP_POLICY_POLL_MS (default 2000) the registry reads the live rows, so several
//   API processes on one database serve the same version within one poll interval (plus load time).
// - Models are shared by sha256: every project still on the base model uses one session and one batch.
import { and, eq } from 'drizzle-orm';
import { artifactFileUri, type ArtifactStore } from '../../shared/artifact-store';
import { ARTIFACT_FILES } from '../../shared/policy-io';
import { policies, type PolicyStatus } from '../../shared/schema';
import { inJsonList } from '../../shared/sql-lists';
import type { Database } from '../deps';
import { loadPolicy, PolicyLoadError, sha256Bytes, type LoadedModel } from './loader';
import type { OnnxRuntimePort } from './onnx-runtime';

export type PolicyRow = typeof policies.$inferSelect;

export interface PolicyRegistryOptions {
  db: Database;
  artifacts: ArtifactStore;
  runtime: OnnxRuntimePort;
  clock: () => number;
  /** How often the live rows are re-read (ms). Default 2000 (PREFLOOP_POLICY_POLL_MS). */
  pollMs?: number;
  /** Most sequences decoded together per model. Default 64. */
  maxBatchRows?: number;
  /** Artifact URI of the base model registered as version 1. Default `base://`. */
  baseUri?: string;
  /** Structured log sink (default: console). */
  log?: (event: string, fields: Record<string, unknown>) => void;
}

export class NoLivePolicyError extends Error {
  readonly code = 'no_live_policy';
}
export class PolicyNotFoundError extends Error {
  readonly code = 'policy_not_found';
}
export class PolicyUnavailableError extends Error {
  readonly code = 'policy_unavailable';
}

/** A request's hold on a model: release it when the request is done (the session is freed only after). */
export interface PolicyLease {
  version: number;
  model: LoadedModel;
  release(): void;
}

interface ModelEntry {
  model: LoadedModel;
  /** Leases held by requests. */
  leases: number;
  /** Projects (live) and pinned versions currently pointing at this model. */
  users: number;
}

interface Serving {
  row: PolicyRow;
  entry: ModelEntry;
}

export class PolicyRegistry {
  private readonly o: Required<Omit<PolicyRegistryOptions, 'log'>> & Pick<PolicyRegistryOptions, 'log'>;
  /** Loaded models by sha256. */
  private readonly models = new Map<string, ModelEntry>();
  private readonly loading = new Map<string, Promise<ModelEntry>>();
  /** What each project serves now. */
  private readonly live = new Map<string, Serving>();
  /** Non-live versions requested by name (OpenAI `model: "v2"`), kept loaded until evicted. */
  private readonly pinned = new Map<string, Serving & { lastUsed: number }>();
  /** Versions that failed to load: `project:version:sha` → reason (not retried by polling). */
  private readonly refused = new Map<string, string>();
  private readonly swapping = new Map<string, Promise<void>>();
  private timer: ReturnType<typeof setInterval> | null = null;
  private polling: Promise<void> | null = null;

  constructor(opts: PolicyRegistryOptions) {
    this.o = { pollMs: 2000, maxBatchRows: 64, baseUri: 'base://', ...opts };
  }

  private log(event: string, fields: Record<string, unknown>): void {
    if (this.o.log) this.o.log(event, fields);
    else console.warn(JSON.stringify({ event, ...fields }));
  }

  /** Starts polling the database for live-version changes. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.poll(), this.o.pollMs);
    (this.timer as { unref?: () => void }).unref?.();
  }

  /** Stops polling, waits for in-flight requests, releases every session. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.polling;
    await Promise.allSettled([...this.swapping.values()]);
    const entries = new Set([...this.models.values()]);
    this.live.clear();
    this.pinned.clear();
    this.models.clear();
    for (const e of entries) {
      await e.model.engine.drain();
      await e.model.session.release().catch(() => undefined);
    }
  }

  /** The version this process serves for a project (null before first use or when none is live). */
  servingVersion(projectId: string): number | null {
    return this.live.get(projectId)?.row.version ?? null;
  }

  /**
   * A lease on the project's live policy, or on a named version. Loads on first use (bootstrapping version 1
   * from the base model when the project has no policy at all).
   */
  async acquire(projectId: string, version: number | 'live' = 'live'): Promise<PolicyLease> {
    if (version === 'live') {
      let serving = this.live.get(projectId);
      if (!serving) {
        await this.ensureLive(projectId);
        serving = this.live.get(projectId);
      }
      if (!serving) throw new NoLivePolicyError(`project ${projectId} has no live policy`);
      return this.lease(serving);
    }
    const liveNow = this.live.get(projectId);
    if (liveNow && liveNow.row.version === version) return this.lease(liveNow);
    const key = `${projectId}:${version}`;
    let pin = this.pinned.get(key);
    if (!pin) {
      const [row] = await this.o.db.select().from(policies).where(and(eq(policies.projectId, projectId), eq(policies.version, version)));
      if (!row) throw new PolicyNotFoundError(`project ${projectId} has no policy version ${version}`);
      if (row.status === 'live') {
        await this.ensureLive(projectId);
        const s = this.live.get(projectId);
        if (s && s.row.version === version) return this.lease(s);
      }
      const entry = await this.loadOrThrow(row);
      pin = this.pinned.get(key); // another request may have pinned it meanwhile
      if (!pin) {
        entry.users++;
        pin = { row, entry, lastUsed: this.o.clock() };
        this.pinned.set(key, pin);
        this.evictPinned();
      }
    }
    pin.lastUsed = this.o.clock();
    return this.lease(pin);
  }

  private lease(s: Serving): PolicyLease {
    const entry = s.entry;
    entry.leases++;
    let released = false;
    return {
      version: s.row.version,
      model: entry.model,
      release: () => {
        if (released) return;
        released = true;
        entry.leases--;
        this.maybeFree(entry);
      },
    };
  }

  /** Keeps at most two pinned (non-live) versions loaded. */
  private evictPinned(): void {
    const pins = [...this.pinned.entries()].sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    while (pins.length > 2) {
      const [key, pin] = pins.shift()!;
      this.pinned.delete(key);
      pin.entry.users--;
      this.maybeFree(pin.entry);
    }
  }

  private maybeFree(entry: ModelEntry): void {
    if (entry.users > 0 || entry.leases > 0) return;
    if (this.models.get(entry.model.sha256) === entry) this.models.delete(entry.model.sha256);
    void entry.model.engine
      .drain()
      .then(() => entry.model.session.release())
      .catch((e) => this.log('policy_release_failed', { sha256: entry.model.sha256, error: String(e) }));
  }

  /** Loads (or reuses) the model for a row; a refusal is remembered and rethrown as PolicyUnavailableError. */
  private async loadOrThrow(row: PolicyRow): Promise<ModelEntry> {
    const key = `${row.projectId}:${row.version}:${row.sha256}`;
    const reason = this.refused.get(key);
    if (reason) throw new PolicyUnavailableError(`policy v${row.version} was refused: ${reason}`);
    const existing = this.models.get(row.sha256);
    if (existing) return existing;
    let p = this.loading.get(row.sha256);
    if (!p) {
      const started = Date.now();
      p = loadPolicy({ artifacts: this.o.artifacts, runtime: this.o.runtime, maxBatchRows: this.o.maxBatchRows }, row.artifactUri, row.sha256)
        .then((model) => {
          const entry: ModelEntry = { model, leases: 0, users: 0 };
          this.models.set(model.sha256, entry);
          this.log('policy_loaded', { project: row.projectId, version: row.version, uri: row.artifactUri, ms: Date.now() - started });
          return entry;
        })
        .finally(() => this.loading.delete(row.sha256));
      this.loading.set(row.sha256, p);
    }
    try {
      return await p;
    } catch (e) {
      const msg = e instanceof PolicyLoadError ? `${e.stage}: ${e.message}` : String(e);
      if (!(e instanceof PolicyLoadError && e.transient)) this.refused.set(key, msg);
      this.log('policy_refused', { project: row.projectId, version: row.version, uri: row.artifactUri, reason: msg });
      throw new PolicyUnavailableError(`policy v${row.version} could not be loaded: ${msg}`);
    }
  }

  /** Installs `entry` as what `projectId` serves for `row`; the previous model is freed when its leases end. */
  private install(projectId: string, row: PolicyRow, entry: ModelEntry): void {
    const prev = this.live.get(projectId);
    entry.users++;
    this.live.set(projectId, { row, entry });
    if (prev) {
      prev.entry.users--;
      this.maybeFree(prev.entry);
      if (prev.row.version !== row.version) this.log('policy_swapped', { project: projectId, from: prev.row.version, to: row.version });
    }
  }

  /** Makes the process serve the project's live row (bootstrapping the base model when it has no rows). */
  private ensureLive(projectId: string): Promise<void> {
    let p = this.swapping.get(projectId);
    if (!p) {
      p = (async () => {
        let row = await this.liveRow(projectId);
        if (!row) row = await this.bootstrap(projectId);
        if (!row) {
          this.live.delete(projectId);
          return;
        }
        const cur = this.live.get(projectId);
        if (cur && cur.row.version === row.version && cur.row.sha256 === row.sha256) {
          cur.row = row;
          return;
        }
        try {
          this.install(projectId, row, await this.loadOrThrow(row));
        } catch (e) {
          if (!cur) throw e; // nothing to keep serving: the caller sees the refusal
          // else: refused and logged; the old policy stays live in this process.
        }
      })().finally(() => this.swapping.delete(projectId));
      this.swapping.set(projectId, p);
    }
    return p;
  }

  private async liveRow(projectId: string): Promise<PolicyRow | undefined> {
    const rows = await this.o.db.select().from(policies).where(and(eq(policies.projectId, projectId), eq(policies.status, 'live')));
    return rows.sort((a, b) => (b.activatedAt ?? 0) - (a.activatedAt ?? 0))[0];
  }

  /** Version 1 = the base model, for a project with no policy rows at all. Idempotent across processes. */
  private async bootstrap(projectId: string): Promise<PolicyRow | undefined> {
    const any = await this.o.db.select({ v: policies.version }).from(policies).where(eq(policies.projectId, projectId)).limit(1);
    if (any.length) return undefined;
    let sha256: string;
    try {
      sha256 = await sha256Bytes(await this.o.artifacts.get(artifactFileUri(this.o.baseUri, ARTIFACT_FILES.policyOnnx)));
    } catch (e) {
      this.log('base_model_missing', { project: projectId, uri: this.o.baseUri, error: String(e) });
      return undefined;
    }
    const now = this.o.clock();
    await this.o.db
      .insert(policies)
      .values({ projectId, version: 1, parentVersion: null, artifactUri: this.o.baseUri, sha256, status: 'live', metrics: {}, createdAt: now, activatedAt: now })
      .onConflictDoNothing();
    return this.liveRow(projectId);
  }

  /** Re-reads the live rows of every project this process serves and swaps where the version changed. */
  poll(): Promise<void> {
    if (this.polling) return this.polling;
    this.polling = (async () => {
      const projects = [...this.live.keys()];
      if (!projects.length) return;
      const rows = await this.o.db.select().from(policies).where(and(inJsonList(policies.projectId, projects), eq(policies.status, 'live')));
      const byProject = new Map<string, PolicyRow>();
      for (const r of rows) {
        const cur = byProject.get(r.projectId);
        if (!cur || (r.activatedAt ?? 0) > (cur.activatedAt ?? 0)) byProject.set(r.projectId, r);
      }
      await Promise.allSettled(
        projects.map(async (p) => {
          const row = byProject.get(p);
          const cur = this.live.get(p);
          if (!row || !cur || (cur.row.version === row.version && cur.row.sha256 === row.sha256)) return;
          if (this.refused.has(`${p}:${row.version}:${row.sha256}`)) return;
          await this.ensureLive(p);
        }),
      );
    })()
      .catch((e) => this.log('policy_poll_failed', { error: String(e) }))
      .finally(() => (this.polling = null));
    return this.polling;
  }

  /** Every policy of a project, newest first. */
  async list(projectId: string): Promise<PolicyRow[]> {
    const rows = await this.o.db.select().from(policies).where(eq(policies.projectId, projectId));
    return rows.sort((a, b) => b.version - a.version);
  }

  async liveInfo(projectId: string): Promise<{ row: PolicyRow | undefined; servingVersion: number | null }> {
    return { row: await this.liveRow(projectId), servingVersion: this.servingVersion(projectId) };
  }

  /**
   * Makes `version` the project's live policy (rollback = activating an older one). The artifact is loaded
   * and checked first; only then is the database changed (previous live → retired) and the swap made. A
   * broken artifact throws PolicyUnavailableError and changes nothing.
   */
  async activate(projectId: string, version: number): Promise<{ row: PolicyRow; previousVersion: number | null }> {
    const [row] = await this.o.db.select().from(policies).where(and(eq(policies.projectId, projectId), eq(policies.version, version)));
    if (!row) throw new PolicyNotFoundError(`project ${projectId} has no policy version ${version}`);
    const prev = await this.liveRow(projectId);
    if (prev?.version === version) {
      await this.ensureLive(projectId).catch(() => undefined);
      return { row: prev, previousVersion: version };
    }
    this.refused.delete(`${projectId}:${row.version}:${row.sha256}`); // an explicit activation retries
    const entry = await this.loadOrThrow(row);
    entry.users++; // hold it while the database changes
    try {
      const now = this.o.clock();
      const retired: PolicyStatus = 'retired';
      await this.o.db.batch([
        this.o.db.update(policies).set({ status: retired }).where(and(eq(policies.projectId, projectId), eq(policies.status, 'live'))),
        this.o.db.update(policies).set({ status: 'live', activatedAt: now }).where(and(eq(policies.projectId, projectId), eq(policies.version, version))),
      ]);
      const live = { ...row, status: 'live' as const, activatedAt: now };
      await this.swapping.get(projectId)?.catch(() => undefined);
      this.install(projectId, live, entry);
      this.log('policy_activated', { project: projectId, version, previous: prev?.version ?? null });
      return { row: live, previousVersion: prev?.version ?? null };
    } finally {
      entry.users--;
      this.maybeFree(entry);
    }
  }
}
