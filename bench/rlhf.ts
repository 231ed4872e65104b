// `npm run bench:rlhf`: one whole training run (pairs → RM → SFT → PPO → evaluate → gate → publish) on the base
// model config, over 1,000 preference pairs and 256 PPO episodes, through the same handler the worker runs
// (worker/run/training-run.ts) on a real SQLite file. Writes bench/results/rlhf.json: RM training pairs/s,
// PPO rollout tokens/s, PPO update tokens/s, wall_s and each stage's seconds and share. Target: wall_s ≤ 300.
// Uses models/base when it exists, else a random init of the same config (4 layers, 4 heads, d 128,
// vocab 2048, context 256) written by the real exporter.
import { existsSync, mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNodeArtifactStore } from '../api/adapters/artifact-stores';
import { openDatabase } from '../api/database';
import { createProject } from '../api/keys';
import { newId } from '../shared/ids';
import { splitOf } from '../shared/preference-pairs';
import { SqlJobQueue } from '../shared/queue/sql-queue';
import { feedback } from '../shared/schema';
import { parseTrainingConfig } from '../shared/training-config';
import { enqueueTrainingRun, TRAINING_QUEUE, type TrainingJobPayload } from '../shared/training-queue';
import { ensureBackend } from '../worker/backend';
import { exportArtifacts } from '../worker/export';
import type { BatchDb } from '../worker/run/publish';
import { trainingRunHandler } from '../worker/run/training-run';
import { randomPolicyWeights, syntheticTokenizer } from './random-policy';

const PAIRS = 1000;
const EPISODES = 256;
const BASE_CONFIG = { vocabSize: 2048, contextLength: 256, nLayer: 4, nHead: 4, dModel: 128, mlpRatio: 4, layerNormEps: 1e-5 };

const dir = mkdtempSync(join(tmpdir(), 'prefloop-bench-rlhf-'));
try {
  const backend = await ensureBackend({ log: () => undefined });
  let baseDir = join(process.cwd(), 'models', 'base');
  let source = 'models/base';
  if (!existsSync(join(baseDir, 'model.safetensors')) || !existsSync(join(baseDir, 'policy.onnx'))) {
    baseDir = join(dir, 'base');
    source = 'random init (models/base absent)';
    await exportArtifacts(randomPolicyWeights(BASE_CONFIG, 1), BASE_CONFIG, JSON.stringify(syntheticTokenizer(BASE_CONFIG.vocabSize).toJSON()), baseDir, { kinds: ['policy'] });
  }
  const { db, close } = await openDatabase(join(dir, 'bench.db'));
  const project = await createProject(db, 'bench', Date.now());

  // 1,000 train-split comparison pairs (one prompt each) plus the held-out prompts the hash puts beside them.
  const rows: (typeof feedback.$inferInsert)[] = [];
  let train = 0;
  const words = ['good', 'great', 'fine', 'bad', 'awful', 'the', 'a', 'day', 'movie', 'food', 'very', 'not'];
  for (let i = 0; train < PAIRS; i++) {
    const prompt = `Review ${i}: what did you think of the ${words[i % words.length]}?`;
    if (splitOf(prompt) === 'train') train++;
    const w = (k: number) => Array.from({ length: 6 + (k % 5) }, (_, j) => words[(i * 7 + j * 3 + k) % words.length]).join(' ');
    rows.push({ id: newId('fb'), projectId: project.id, type: 'comparison', prompt, response: `great ${w(1)}`, rejected: `awful ${w(2)}`, bodyHash: String(i), createdAt: Date.now() });
  }
  for (let i = 0; i < rows.length; i += 200) await db.insert(feedback).values(rows.slice(i, i + 200));

  const cfg = parseTrainingConfig({
    rewardModel: { epochs: 1, maxPairs: PAIRS },
    ppo: { totalEpisodes: EPISODES },
    run: { maxWallS: 3600 },
  });
  const queue = new SqlJobQueue<TrainingJobPayload>(db, { queue: TRAINING_QUEUE });
  const { run } = await enqueueTrainingRun({ db, queue, now: Date.now }, { projectId: project.id, trigger: 'manual', config: cfg as unknown as Record<string, unknown> });

  const stages: Record<string, { seconds: number }> = {};
  let info: Record<string, number> = {};
  const t0 = performance.now();
  await trainingRunHandler({
    db: db as unknown as BatchDb,
    artifacts: createNodeArtifactStore({ artifactsDir: join(dir, 'artifacts'), baseModelDir: baseDir }),
    now: Date.now,
    artifactRoot: 'file://',
    baseUri: 'base://',
    onStageDone: (stage, seconds, i) => {
      stages[stage] = { seconds };
      info = i;
      console.log(`${stage}: ${seconds.toFixed(1)} s`);
    },
  })({ runId: run.id, projectId: project.id }, { job: { id: run.jobId!, attempts: 1, maxAttempts: 5 }, signal: new AbortController().signal, log: (l, m, f) => l !== 'info' && console.log(l, m, f) });
  const wallS = (performance.now() - t0) / 1000;
  close();

  const result = {
    bench: 'rlhf',
    date: new Date().toISOString(),
    backend: backend.name,
    model: { source, config: BASE_CONFIG },
    pairs: PAIRS,
    ppo_episodes: EPISODES,
    rm_pairs_per_s: info['speed/rm_pairs_per_s'] ?? null,
    ppo_rollout_tokens_per_s: info['speed/rollout_tokens_per_s'] ?? null,
    ppo_update_tokens_per_s: info['speed/update_tokens_per_s'] ?? null,
    ppo_episodes_done: info['ppo/episodes'] ?? null,
    wall_s: wallS,
    target_wall_s: 300,
    stages: Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, { seconds: v.seconds, share: v.seconds / wallS }])),
  };
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/rlhf.json', `${JSON.stringify(result, null, 2)}\n`);
  console.log(JSON.stringify(result, null, 2));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
