// The loop end to end, in CI time on a tiny random base: feedback in over HTTP → POST /v1/training-runs →
// the worker (`npm run worker` in a child process, on the real SQL queue) runs pairs → RM → SFT → PPO → evaluate → gate →
// publish → the API serves the new live policy, whose RM score on held-out prompts beat the old one and whose
// KL to the reference is within budget. Then a second run with a tiny KL budget: the gate rejects the
// candidate, keeps it as `rejected` with the numbers, and the live policy does not change.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { splitOf } from '../../shared/preference-pairs';
import { makeWorkerFixture, policyRows, sendFeedback, spawnWorker, syntheticFeedback, TEST_TRAINING, waitFor, type WorkerFixture } from './helpers';

let f: WorkerFixture;
let worker: ReturnType<typeof spawnWorker>;
beforeAll(async () => {
  f = await makeWorkerFixture();
  // A separate process, as in production: training blocks its event loop for seconds at a time.
  worker = spawnWorker(f);
}, 60_000);
afterAll(async () => {
  if (worker && worker.child.exitCode === null) {
    worker.child.kill('SIGTERM'); // graceful: waits for a run in progress, so bound it
    const t = setTimeout(() => worker.child.kill('SIGKILL'), 5_000);
    await worker.exited;
    clearTimeout(t);
  }
  if (process.env.PREFLOOP_TEST_LOGS) console.log(readFileSync(worker.logPath, 'utf8'));
  await f?.cleanup();
});

describe('training run', () => {
  it('turns feedback into a new live policy that scores higher on held-out prompts within the KL budget', async () => {
    expect((await f.call('PUT', '/v1/config/training', TEST_TRAINING)).status).toBe(200);
    const { events } = syntheticFeedback(48, 10);
    await sendFeedback(f, events);
    expect((await f.call('GET', '/v1/policies/live')).body.policy.version).toBe(1); // bootstraps the base

    const created = await f.call('POST', '/v1/training-runs', {});
    expect(created.status).toBe(201);
    const id = created.body.run.id as string;

    // Watch it move through the API while it trains.
    const seen = new Set<string>();
    let sawProgress = false;
    const done = await waitFor(
      'the run to finish',
      async () => {
        const r = (await f.call('GET', `/v1/training-runs/${id}`)).body.run;
        if (r.status === 'running' && r.stage) seen.add(r.stage);
        if (r.status === 'running' && r.progress > 0 && r.eta_s !== null) sawProgress = true;
        return r.status === 'succeeded' || r.status === 'failed' ? r : undefined;
      },
      85_000,
      100,
    );
    expect(done.error).toBeNull();
    expect(done.status).toBe('succeeded');
    expect(done.progress).toBe(1);
    expect(seen.size).toBeGreaterThanOrEqual(2);
    expect(sawProgress).toBe(true);

    // Every per-iteration PPO metric of METHOD.md, and the RM's, are on the run.
    for (const name of ['objective/score', 'objective/kl', 'policy/entropy', 'policy/clipfrac', 'loss/value', 'policy/approx_kl', 'response/length']) {
      expect(done.history[name]?.length, name).toBeGreaterThanOrEqual(2);
    }
    expect(done.metrics['rm/accuracy']).toBeGreaterThan(0.5);
    expect(done.metrics['data/demonstrations']).toBeGreaterThan(0);

    // The gate's numbers: the candidate beat live under the new RM and stayed within the KL budget.
    expect(done.policy_version).toBe(2);
    const m = done.metrics;
    expect(m['gate/passed']).toBe(1);
    expect(m['gate/candidate_score']).toBeGreaterThan(m['gate/live_score']);
    expect(m['gate/candidate_kl']).toBeLessThanOrEqual(TEST_TRAINING.run.klBudget);
    const rows = await policyRows(f, f.api.defaultProjectId);
    expect(rows.map((r) => [r.version, r.status])).toEqual([
      [1, 'retired'],
      [2, 'live'],
    ]);
    expect(rows[1].trainingRunId).toBe(id);
    expect(rows[1].sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(rows[1].metrics['gate/candidate_score']).toBe(m['gate/candidate_score']);

    // The API swaps to it (registry polling) and generates with it.
    await waitFor('the API to serve v2', async () => (await f.call('GET', '/v1/policies/live')).body.serving_version === 2, 10_000);
    const gen = await f.call('POST', '/v1/generations', { prompt: 'Q1: tell me', max_tokens: 4 });
    expect(gen.status).toBe(200);
    expect(gen.body.policy_version ?? gen.body.generations?.[0]?.policy_version ?? 2).toBe(2);
  }, 90_000);

  it('keeps a candidate beyond the KL budget as rejected, with the numbers, and leaves live alone', async () => {
    expect((await f.call('PUT', '/v1/config/training', { ...TEST_TRAINING, ppo: { ...TEST_TRAINING.ppo, totalEpisodes: 32 }, run: { ...TEST_TRAINING.run, klBudget: 1e-9 } })).status).toBe(200);
    const second = syntheticFeedback(8, 1, 99).events as { type: string; prompt: string }[];
    await sendFeedback(f, second);
    const created = await f.call('POST', '/v1/training-runs', {});
    expect(created.status).toBe(201);
    const id = created.body.run.id as string;
    const done = await waitFor(
      'the second run',
      async () => {
        const r = (await f.call('GET', `/v1/training-runs/${id}`)).body.run;
        return r.status === 'succeeded' || r.status === 'failed' ? r : undefined;
      },
      85_000,
    );
    expect(done.status).toBe('succeeded');
    expect(done.policy_version).toBe(3);
    expect(done.metrics['gate/passed']).toBe(0);
    // SFT takes only the corrections new since the first run (that run trained the older ones).
    expect(done.metrics['data/demonstrations']).toBe(second.filter((e) => e.type === 'correction' && splitOf(e.prompt) === 'train').length);
    expect(done.metrics['data/replay_demonstrations']).toBe(0);
    expect(done.metrics['gate/candidate_kl']).toBeGreaterThan(1e-9);
    expect(String(done.metrics['gate/reason'])).toMatch(/KL .* > klBudget/);
    const rows = await policyRows(f, f.api.defaultProjectId);
    expect(rows.map((r) => [r.version, r.status])).toEqual([
      [1, 'retired'],
      [2, 'live'],
      [3, 'rejected'],
    ]);
    expect(rows[2].metrics['gate/passed']).toBe(0);
    expect(rows[2].metrics['gate/kl_budget']).toBe(1e-9);
    expect(typeof rows[2].metrics['gate/candidate_kl']).toBe('number');
    expect((await f.call('GET', '/v1/policies/live')).body.policy.version).toBe(2);
  }, 90_000);
});
