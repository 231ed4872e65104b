// The simulation's only door into prefloop: a small typed client over the public REST API (fetch + Bearer
// key). Everything the simulated users and the measurements do goes through here, as an app would.
export interface ApiErrorBody {
  error: { code: string; message: string; details?: unknown };
}

export class ApiCallError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    what: string,
  ) {
    super(`${what}: HTTP ${status} ${JSON.stringify(body).slice(0, 500)}`);
  }
}

export interface GenerationOut {
  id: string;
  index: number;
  text: string;
  finish_reason: 'stop' | 'length';
  completion_tokens: number;
}
export interface GenerationResponse {
  request_id: string;
  policy_version: number;
  seed: number;
  generations: GenerationOut[];
}

export interface CompletionResponse {
  model: string;
  choices: { index: number; text: string; finish_reason: string | null; generation_id: string }[];
}

export interface PolicyJson {
  version: number;
  parent_version: number | null;
  status: 'candidate' | 'live' | 'rejected' | 'retired';
  metrics: Record<string, number | string | null>;
  training_run_id: string | null;
  created_at: number;
  activated_at: number | null;
}

/** A training run as GET /v1/training-runs returns it (fields the simulation reads; the rest pass through). */
export interface TrainingRunJson {
  id: string;
  status: string;
  stage?: string | null;
  metrics?: unknown;
  [k: string]: unknown;
}

export type FeedbackEvent = Record<string, unknown> & { type: 'thumbs' | 'comparison' | 'correction' | 'score' };

export class PrefloopClient {
  /** Requests sent and total milliseconds spent waiting on them, by route (for the report). */
  readonly calls = new Map<string, { n: number; ms: number }>();

  constructor(
    readonly baseUrl: string,
    readonly apiKey: string,
  ) {}

  async request<T>(method: string, path: string, body?: unknown, route = path): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const t0 = performance.now();
      let res: Response;
      try {
        res = await fetch(`${this.baseUrl}${path}`, {
          method,
          headers: { authorization: `Bearer ${this.apiKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      } catch (e) {
        // A keep-alive socket the server closed just as it was reused (ECONNRESET): send again. Safe here:
        // feedback carries idempotency ids, and a repeated generation only stores one more output.
        if (attempt < 3) continue;
        throw e;
      }
      const text = await res.text();
      const c = this.calls.get(route) ?? { n: 0, ms: 0 };
      c.n++;
      c.ms += performance.now() - t0;
      this.calls.set(route, c);
      // 429 (rate limit) and 503 (a policy still loading) are worth a short retry; anything else is a bug.
      if ((res.status === 429 || res.status === 503) && attempt < 20) {
        await new Promise((r) => setTimeout(r, 100 * (attempt + 1)));
        continue;
      }
      const json = text ? JSON.parse(text) : undefined;
      if (!res.ok) throw new ApiCallError(res.status, json, `${method} ${path}`);
      return json as T;
    }
  }

  generate(req: { prompt: string; n: number; max_tokens: number; temperature?: number; seed: number; policy_version?: string | number }) {
    return this.request<GenerationResponse>('POST', '/v1/generations', req);
  }

  /** OpenAI-style completion from a named version ("v3") or "live". */
  complete(req: { model: string; prompt: string; n?: number; max_tokens: number; temperature?: number; seed: number }) {
    return this.request<CompletionResponse>('POST', '/v1/completions', req);
  }

  sendFeedback(events: FeedbackEvent[]) {
    return this.request<{ created: number; replayed: number; failed: number; results: { status: number; error?: unknown }[] }>('POST', '/v1/feedback/batch', { events });
  }

  policies() {
    return this.request<{ policies: PolicyJson[]; serving_version: number | null }>('GET', '/v1/policies');
  }

  livePolicy() {
    return this.request<{ policy: PolicyJson; serving_version: number | null }>('GET', '/v1/policies/live');
  }

  trainingRuns() {
    return this.request<unknown>('GET', '/v1/training-runs').then(runsOf);
  }

  trainingRun(id: string) {
    return this.request<unknown>('GET', `/v1/training-runs/${encodeURIComponent(id)}`, undefined, '/v1/training-runs/{id}').then(runOf);
  }
}

/** The list route may answer `{runs: [...]}`, `{data: [...]}` or a bare array: accept each. */
function runsOf(body: unknown): TrainingRunJson[] {
  if (Array.isArray(body)) return body as TrainingRunJson[];
  const b = body as Record<string, unknown>;
  for (const k of ['runs', 'training_runs', 'data']) if (Array.isArray(b?.[k])) return b[k] as TrainingRunJson[];
  throw new Error(`unexpected GET /v1/training-runs body: ${JSON.stringify(body).slice(0, 300)}`);
}

function runOf(body: unknown): TrainingRunJson {
  const b = body as Record<string, unknown>;
  if (b && typeof b === 'object' && 'run' in b && typeof b.run === 'object') return { ...(b.run as TrainingRunJson), ...(b as object) } as TrainingRunJson;
  return b as TrainingRunJson;
}
