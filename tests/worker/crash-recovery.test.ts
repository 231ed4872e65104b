// Crash safety, with a real process kill: `npm run worker` (child process) is SIGKILLed in the middle of a run.
// The live policy and the feedback are untouched; after the lease runs out the job is delivered again to a
// second worker, which resumes (the first attempt's reward model is reused, not retrained into a second row)
// and publishes exactly one new policy version.
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeWorkerFixture, policyRows, runRow, sendFeedback, spawnWorker, syntheticFeedback, TEST_TRAINING, waitFor, type WorkerFixture } from './helpers';

let f: WorkerFixture;
const children: ReturnType<typeof spawnWorker>[] = [];
beforeAll(async () => {
  f = await makeWorkerFixture();
}, 60_000);
afterAll(async () => {
  for (const w of children) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
  await Promise.all(children.map((w) => w.exited));
  await f?.cleanup();
});

const count = async (table: string) => Number((await f.api.db.all<{ n: number }>(sql.raw(`SELECT count(*) AS n FROM ${table}`)))[0].n);

describe('worker crash', () => {
  it('a SIGKILLed worker leaves live alone; the redelivered job yields exactly one new version', async () => {
    expect((await f.call('PUT', '/v1/config/training', TEST_TRAINING)).status).toBe(200);
    await sendFeedback(f, syntheticFeedback(40, 8, 3).events);
    expect((await f.call('GET', '/v1/policies/live')).body.policy.version).toBe(1);
    const feedbackBefore = await count('feedback');
    const id = (await f.call('POST', '/v1/training-runs', {})).body.run.id as string;

    // A short lease so the job comes back quickly once its holder is dead.
    const lease = { PREFLOOP_WORKER_LEASE_MS: '3000' };
    const first = spawnWorker(f, lease, 1);
    children.push(first);
    // Kill it once the reward model is published (the run is past its first stages, in SFT or PPO).
    await waitFor('the first worker to reach PPO', async () => ['sft', 'ppo'].includes((await runRow(f, id))?.stage ?? ''), 80_000, 50);
    first.child.kill('SIGKILL');
    await first.exited;

    const mid = await runRow(f, id);
    expect(mid.status).toBe('running');
    expect(mid.attempts).toBe(1);
    expect((await policyRows(f, f.api.defaultProjectId)).map((r) => [r.version, r.status])).toEqual([[1, 'live']]);
    expect((await f.call('GET', '/v1/policies/live')).body.policy.version).toBe(1);
    expect(await count('feedback')).toBe(feedbackBefore);
    expect(await count('reward_models')).toBe(1);

    const second = spawnWorker(f, lease, 2);
    children.push(second);
    const done = await waitFor(
      'the redelivered run to finish',
      async () => {
        const r = await runRow(f, id);
        return r.status === 'succeeded' || r.status === 'failed' ? r : undefined;
      },
      85_000,
    );
    expect(done.error).toBeNull();
    expect(done.status).toBe('succeeded');
    expect(done.attempts).toBe(2);
    expect(done.policyVersion).toBe(2);
    const rows = await policyRows(f, f.api.defaultProjectId);
    expect(rows.map((r) => r.version)).toEqual([1, 2]); // exactly one new version
    expect(rows.filter((r) => r.trainingRunId === id)).toHaveLength(1);
    expect(await count('reward_models')).toBe(1); // resumed with the first attempt's RM
    expect(await count('feedback')).toBe(feedbackBefore);
    // The worker acknowledges the job after the handler has marked the run succeeded: wait for that write.
    const job = await waitFor(
      'the job to be acknowledged',
      async () => {
        const [j] = await f.api.db.all<{ attempts: number; status: string }>(sql.raw(`SELECT attempts, status FROM jobs WHERE dedupe_key = '${id}'`));
        return j?.status === 'leased' ? undefined : j;
      },
      10_000,
    );
    expect(job).toMatchObject({ attempts: 2, status: 'done' });
  }, 180_000);
});
