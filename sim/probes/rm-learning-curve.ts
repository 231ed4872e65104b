// Probe (not a test, not a benchmark): how the reward model's held-out accuracy grows with the number of
// comparisons it is trained on, the loop's way (a fresh RM from models/base, the worker's default rewardModel
// settings), on comparisons of base outputs answered by the simulated labeler. Issue 6 asks for RM accuracy ≥ 0.80
// after ≤ 2,000 feedback events (of which ~1,000–1,300 become training pairs); this shows how many comparisons
// that accuracy takes with this model, and the labeler's own ceiling on the same held-out pairs (the share its
// hidden score orders as its noisy choice did).
//
// Pairs as the simulated users make them (sim/population.ts): n = 2 outputs of 24 tokens at temperature 1 for a
// feedback prompt; equal hidden scores → "no preference" (no pair); else one Bradley-Terry choice. Training pairs
// come from the feedback prompts (each prompt asked again with another seed when more pairs are wanted), held-out
// pairs from the evaluation prompts. Comparisons only: no thumbs, no corrections.
//
//   npx tsx sim/probes/rm-learning-curve.ts [--preference vader|topic] [--sizes 250,500,1000,2000,4000] [--heldout 600]
//     [--rm '{"epochs":4}'] [--merge K] [--out FILE]
//
// --merge K: also train K reward models per size from the same initialisation with training seeds seed … seed + K − 1
// (the order of the pairs) and average their weights (WARM, Ramé et al. 2024), reporting each seed's accuracy and the
// averaged model's.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { nodeOnnxRuntime } from '../../api/adapters/onnxruntime-node';
import { parseModelConfig } from '../../shared/model-config';
import { ARTIFACT_FILES } from '../../shared/policy-io';
import { GenerationEngine } from '../../shared/sampling';
import { Xoshiro128 } from '../../shared/sampling/rng';
import { Tokenizer } from '../../shared/tokenizer';
import { trainingConfigSchema } from '../../shared/training-config';
import { ensureBackend } from '../../worker/backend';
import { evaluateRewardModel, trainRewardModel, type PairExample } from '../../worker/rlhf';
import { WeightMean } from '../../worker/model/weight-mean';
import { gptFrom } from '../../worker/run/models';
import { readSafetensors } from '../../worker/safetensors';
import { Labeler } from '../labeler';
import { defaultPopulation } from '../population';
import { PREFERENCES } from '../preferences';
import { buildPromptSet } from '../prompts';

const { values: args } = parseArgs({
  options: {
    preference: { type: 'string', default: 'vader' },
    sizes: { type: 'string', default: '250,500,1000,2000,4000' },
    heldout: { type: 'string', default: '600' },
    seed: { type: 'string', default: '1' },
    out: { type: 'string' },
    /** JSON overrides of the worker's rewardModel settings, e.g. '{"epochs":4}'. */
    rm: { type: 'string', default: '{}' },
    merge: { type: 'string', default: '1' },
  },
});
const sizes = args.sizes!.split(',').map(Number);
const seed = Number(args.seed);
const merge = Number(args.merge);
const preference = PREFERENCES[args.preference!];
if (!preference) throw new Error(`unknown preference ${args.preference}`);
const labeler = new Labeler(preference);
const dir = 'models/base';
const config = parseModelConfig(JSON.parse(readFileSync(join(dir, ARTIFACT_FILES.config), 'utf8')));
const tokenizer = Tokenizer.fromJSON(readFileSync(join(dir, ARTIFACT_FILES.tokenizer), 'utf8'));
const weights = readSafetensors(new Uint8Array(readFileSync(join(dir, ARTIFACT_FILES.weights)))).tensors;
const backend = await ensureBackend();
console.log(`TF.js backend: ${backend.name}`);

const session = await nodeOnnxRuntime().createSession(readFileSync(join(dir, ARTIFACT_FILES.policyOnnx)));
const engine = new GenerationEngine(session, { config, tokenizer, maxBatchRows: 64 });
const prompts = buildPromptSet({ evalCount: 400, seed });

/** `count` labelled comparisons from `pool`, cycling through it with fresh seeds; `stream` keeps train and held-out draws apart. */
async function comparisons(pool: string[], count: number, stream: number): Promise<{ pairs: PairExample[]; ordered: number }> {
  const pairs: PairExample[] = [];
  let ordered = 0; // pairs whose hidden scores order them as the labeler chose
  let i = 0;
  while (pairs.length < count) {
    const batch = Array.from({ length: 64 }, () => i++);
    const results = await Promise.all(
      batch.map((k) => engine.generate({ prompt: pool[k % pool.length], n: 2, maxTokens: defaultPopulation.maxTokens, temperature: defaultPopulation.temperature, seed: stream * 1_000_003 + k })),
    );
    for (const [j, r] of results.entries()) {
      const prompt = pool[batch[j] % pool.length];
      const [a, b] = r.sequences.map((s) => s.text);
      if (labeler.indifferent(a, b) || pairs.length >= count) continue;
      const aWins = labeler.prefers(a, b, new Xoshiro128(seed + stream, batch[j]));
      const [chosen, rejected] = aWins ? [a, b] : [b, a];
      if (labeler.score(chosen) > labeler.score(rejected)) ordered++;
      pairs.push({ prompt, chosen, rejected });
    }
  }
  return { pairs, ordered };
}

const t0 = performance.now();
const heldOut = await comparisons(prompts.evaluation, Number(args.heldout), 2);
const train = await comparisons(prompts.feedback, Math.max(...sizes), 1);
console.log(`${train.pairs.length} training and ${heldOut.pairs.length} held-out comparisons of base outputs in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
const ceiling = heldOut.ordered / heldOut.pairs.length;
console.log(`labeler ceiling (hidden score orders the held-out pair as chosen): ${ceiling.toFixed(3)}`);

const rmConfig = trainingConfigSchema.parse({ rewardModel: JSON.parse(args.rm!) }).rewardModel;
const curve = [];
/** A fresh RM from models/base (score head initialised with `seed`) trained on the first n pairs in `trainSeed`'s order. */
async function fit(n: number, trainSeed: number) {
  const model = gptFrom(config, weights, { value: false, reward: true }, seed);
  const res = await trainRewardModel({ model, tokenizer, train: train.pairs.slice(0, n), heldOut: heldOut.pairs, pointwise: [], config: rmConfig, seed: trainSeed });
  return { model, res };
}
for (const n of sizes) {
  const { model, res } = await fit(n, seed);
  const row: Record<string, number | number[]> = { train_pairs: n, heldout_accuracy: +res.heldOutAccuracy.toFixed(3), heldout_loss: +res.heldOutLoss.toFixed(3), train_loss: +res.trainLoss.toFixed(3), seconds: +res.seconds.toFixed(0) };
  if (merge > 1) {
    // Same initialisation (score head included), other orders of the pairs: WARM averages fine-tunes of one init.
    const seeds = new WeightMean();
    seeds.add(model);
    const seedAccuracy = [res.heldOutAccuracy];
    for (let k = 1; k < merge; k++) {
      const other = await fit(n, seed + k);
      seedAccuracy.push(other.res.heldOutAccuracy);
      seeds.add(other.model);
      other.model.dispose();
    }
    model.loadWeights(seeds.mean());
    row.seed_accuracies = seedAccuracy.map((a) => +a.toFixed(3));
    row.merged_accuracy = +evaluateRewardModel(model, tokenizer, heldOut.pairs, rmConfig).accuracy.toFixed(3);
  }
  model.dispose();
  curve.push(row);
  console.log(JSON.stringify(row));
}
const result = { probe: 'rm-learning-curve', preference: preference.name, date: new Date().toISOString(), heldout_pairs: heldOut.pairs.length, labeler_ceiling: +ceiling.toFixed(3), reward_model: rmConfig, curve };
if (args.out) writeFileSync(args.out, `${JSON.stringify(result, null, 2)}\n`);
await session.release();
