// Probe (not a test, not a benchmark): how far does the worker's PPO get within the loop's compute and KL budget
// when its reward is the users' hidden score itself instead of a learned reward model? The loop's PPO gets 8
// runs of `ppo.totalEpisodes` episodes over 2,000 events; this gives PPO the same runs, from models/base, with the
// reward of a response = the preference's score of its text (a perfect reward model: per token by default, each token
// credited with the score change it made; `--sparse`: the whole score at the last token), and
// after each run measures what the loop measures: the labeler's expected win rate against the base on the
// evaluation prompts (same sampling seed per prompt for both, as sim/evaluate.ts does), ties, and KL to the base.
// It splits issue 6's gap: if PPO falls short with a perfect reward, the reward model is not the only limit
// (measured: it does not fall short per token; README "2026-12-02, late night").
// `--learned N` runs the same PPO against a reward model instead: the worker's default RM, fresh from models/base,
// trained once on N simulated interactions with base outputs (every fifth a correction of the output the user likes
// less, the others a comparison, "no preference" ties dropped), as a fixed middle ground between the two.
//
//   npx tsx sim/probes/oracle-ppo.ts [--preference vader|topic] [--runs 8] [--sparse] [--learned 1290] [--ppo '{"ppoEpochs":1}']
//     [--prompts 400] [--only corrections|comparisons] [--occlusion] [--interpolate 0.5,0.75]
//
// --interpolate η,…: after each run also measure the policy whose weights are θ_base + η·(θ_run − θ_base) (WARP's
// interpolation towards the initialisation, Ramé et al. 2024; WiSE-FT): does it buy more win rate per nat of KL
// than the PPO path itself? η > 1 extrapolates past the run (ExPO, Zheng et al. 2024). PPO keeps going from θ_run.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Tensor, type InferenceSession } from 'onnxruntime-common';
import { parseModelConfig } from '../../shared/model-config';
import { ARTIFACT_FILES, POLICY_INPUTS, REWARD_OUTPUT, REWARD_TOKENS_OUTPUT } from '../../shared/policy-io';
import { Tokenizer } from '../../shared/tokenizer';
import { GenerationEngine } from '../../shared/sampling';
import { Xoshiro128 } from '../../shared/sampling/rng';
import { trainingConfigSchema } from '../../shared/training-config';
import { ensureBackend } from '../../worker/backend';
import { evaluatePolicy, evaluateRewardModel, exportPolicySession, exportRewardSession, runPpo, trainRewardModel, type OnnxSession, type PairExample } from '../../worker/rlhf';
import { promptIdsFor } from '../../worker/rlhf/rollout';
import { rewardScores } from '../../worker/rlhf/scoring';
import { gptFrom, sessionFrom } from '../../worker/run/models';
import { readSafetensors } from '../../worker/safetensors';
import { Labeler } from '../labeler';
import { defaultPopulation } from '../population';
import { PREFERENCES } from '../preferences';
import { buildPromptSet } from '../prompts';

const { values: args } = parseArgs({
  options: {
    preference: { type: 'string', default: 'vader' },
    runs: { type: 'string', default: '8' },
    prompts: { type: 'string', default: '400' },
    /** JSON overrides of the worker's ppo settings (responseLength is the users' 24 tokens unless given). */
    ppo: { type: 'string', default: '{}' },
    klStop: { type: 'string', default: '9' },
    /** Sequence reward only, at the last token (ppo.denseReward false); else dense, as the loop's RM gives it. */
    sparse: { type: 'boolean', default: false },
    learned: { type: 'string' },
    /** With --learned: train the RM on one kind of pair only (`corrections` or `comparisons`). */
    only: { type: 'string' },
    /** With --learned: per-token terms by occlusion, term_j = r(response) − r(response without token j), instead of
     *  the RM's own mean-pooled shares (which a prefix's state smears over every later token). */
    occlusion: { type: 'boolean', default: false },
    interpolate: { type: 'string' },
  },
});
const preference = PREFERENCES[args.preference!];
if (!preference) throw new Error(`unknown preference ${args.preference}`);
const labeler = new Labeler(preference);
await ensureBackend();

const dir = 'models/base';
const config = parseModelConfig(JSON.parse(readFileSync(join(dir, ARTIFACT_FILES.config), 'utf8')));
const tokenizer = Tokenizer.fromJSON(readFileSync(join(dir, ARTIFACT_FILES.tokenizer), 'utf8'));
const weights = readSafetensors(new Uint8Array(readFileSync(join(dir, ARTIFACT_FILES.weights)))).tensors;
const ppo = trainingConfigSchema.shape.ppo.parse({ responseLength: defaultPopulation.maxTokens, denseReward: !args.sparse, ...JSON.parse(args.ppo!) });
const { feedback, evaluation } = buildPromptSet({ evalCount: Number(args.prompts), seed: 1 });

// The oracle "reward model": a session that reads each row's response (the tokens after a known prompt) and
// returns the hidden score, in reward.onnx's output layout. Prompts are recognised by their token ids. Its per-token
// terms are each token's marginal share, score(response up to t) − score(response before t): they sum to the score
// (potential-based shaping), so the dense reward credits the token that moved the score, as a perfect token-level RM.
const promptLength = new Map<string, number>();
for (const p of [...feedback, ...evaluation]) {
  const ids = promptIdsFor(tokenizer, p, ppo.maxPromptLength, ppo.responseLength, config);
  promptLength.set(ids.join(','), ids.length);
}
/** Where the response starts in a row of prompt + response ids (the prompts are known). */
function responseStart(row: number[]): number {
  for (let k = row.length - 1; k >= 1; k--) if (promptLength.get(row.slice(0, k).join(',')) === k) return k;
  throw new Error('row starts with no known prompt');
}

/** The unpadded rows of a reward session's left-padded feeds, and the padded width S. */
function feedRows(feeds: InferenceSession.FeedsType): { rows: number[][]; S: number } {
  const ids = (feeds[POLICY_INPUTS.inputIds] as Tensor).data as BigInt64Array, mask = (feeds[POLICY_INPUTS.attentionMask] as Tensor).data as BigInt64Array;
  const [B, S] = (feeds[POLICY_INPUTS.inputIds] as Tensor).dims as number[];
  const rows = Array.from({ length: B }, (_, b) => {
    const row: number[] = [];
    for (let t = 0; t < S; t++) if (mask[b * S + t] === 1n) row.push(Number(ids[b * S + t]));
    return row;
  });
  return { rows, S };
}

const oracle: OnnxSession = {
  async run(feeds: InferenceSession.FeedsType) {
    const { rows, S } = feedRows(feeds), B = rows.length;
    const scores = new Float32Array(B);
    const terms = new Float32Array(B * S);
    for (let b = 0; b < B; b++) {
      const row = rows[b];
      const cut = responseStart(row);
      const first = b * S + (S - row.length) + cut; // left padding
      let prev = 0;
      for (let j = cut; j < row.length; j++) {
        const s = labeler.score(tokenizer.decode(row.slice(cut, j + 1)));
        terms[first + j - cut] = s - prev;
        prev = s;
      }
      scores[b] = prev;
    }
    return { [REWARD_OUTPUT]: new Tensor('float32', scores, [B]), [REWARD_TOKENS_OUTPUT]: new Tensor('float32', terms, [B, S]) };
  },
};

/** A reward session whose per-token terms are occlusion credits: how much the score drops without that token. */
function occlusionTerms(rm: OnnxSession): OnnxSession {
  // The worker's scoring reads the score head as PPO does; a row is split anywhere, the RM reads it whole.
  const score = (rows: number[][]) => rewardScores(rm, rows.map((r) => ({ promptIds: r.slice(0, 1), responseIds: r.slice(1) })));
  return {
    async run(feeds: InferenceSession.FeedsType) {
      const { rows, S } = feedRows(feeds), B = rows.length;
      const variants: number[][] = [], owner: [number, number][] = [];
      rows.forEach((row, b) => {
        for (let j = responseStart(row); j < row.length; j++) variants.push([...row.slice(0, j), ...row.slice(j + 1)]), owner.push([b, S - row.length + j]);
      });
      const [full, without] = [await score(rows), await score(variants)];
      const terms = new Float32Array(B * S);
      owner.forEach(([b, col], k) => (terms[b * S + col] = full[b] - without[k]));
      return { [REWARD_OUTPUT]: new Tensor('float32', full, [B]), [REWARD_TOKENS_OUTPUT]: new Tensor('float32', terms, [B, S]) };
    },
  };
}

const reference = await sessionFrom(readFileSync(join(dir, ARTIFACT_FILES.policyOnnx)));

/** Comparisons and corrections of base outputs, as sim/population.ts makes them (no thumbs). */
async function feedbackOnBase(pool: string[], interactions: number, stream: number): Promise<{ comparisons: PairExample[]; corrections: PairExample[] }> {
  const engine = new GenerationEngine(reference, { config, tokenizer, maxBatchRows: 64 });
  const comparisons: PairExample[] = [], corrections: PairExample[] = [];
  for (let i = 0; i < interactions; i += 64) {
    const ks = Array.from({ length: Math.min(64, interactions - i) }, (_, j) => i + j);
    const outs = await Promise.all(ks.map((k) => engine.generate({ prompt: pool[k % pool.length], n: 2, maxTokens: ppo.responseLength, temperature: 1, seed: stream * 1_000_003 + k })));
    outs.forEach((r, j) => {
      const k = ks[j], prompt = pool[k % pool.length], rng = new Xoshiro128(stream, k);
      const [a, b] = r.sequences.map((x) => x.text);
      if (k % 5 === 0) {
        const worse = labeler.score(a) <= labeler.score(b) ? a : b;
        corrections.push({ prompt, chosen: labeler.correct(worse, rng), rejected: worse });
      } else if (!labeler.indifferent(a, b)) comparisons.push(labeler.prefers(a, b, rng) ? { prompt, chosen: a, rejected: b } : { prompt, chosen: b, rejected: a });
    });
  }
  return { comparisons, corrections };
}

let rewardModel: OnnxSession = oracle;
if (args.learned) {
  const train = await feedbackOnBase(feedback, Number(args.learned), 1);
  const heldOut = await feedbackOnBase(evaluation, 600, 2);
  const rmConfig = trainingConfigSchema.shape.rewardModel.parse({});
  const rm = gptFrom(config, weights, { value: false, reward: true }, 1);
  const res = await trainRewardModel({ model: rm, tokenizer, train: args.only === 'corrections' ? train.corrections : args.only === 'comparisons' ? train.comparisons : [...train.comparisons, ...train.corrections], heldOut: heldOut.comparisons, pointwise: [], config: rmConfig, seed: 1 });
  const corr = evaluateRewardModel(rm, tokenizer, heldOut.corrections, rmConfig).accuracy;
  console.log(
    `reward model: ${train.comparisons.length} comparisons + ${train.corrections.length} corrections; held-out accuracy ${res.heldOutAccuracy.toFixed(3)} ` +
      `on comparisons, ${corr.toFixed(3)} on corrections`,
  );
  rewardModel = await exportRewardSession(rm, rmConfig.pooling);
  rm.dispose();
  if (args.occlusion) rewardModel = occlusionTerms(rewardModel);
}
const evalOpts = { config, reference, rewardModel, tokenizer, prompts: evaluation, samplingSeed: 77, responseLength: ppo.responseLength };
const base = await evaluatePolicy({ ...evalOpts, policy: reference });
const baseScore = base.texts.reduce((a, t) => a + labeler.score(t), 0) / base.texts.length;
console.log(`${preference.name}: base hidden score ${baseScore.toFixed(3)}; ${args.learned ? 'learned' : 'oracle'} ${args.sparse ? 'sparse' : 'dense'} reward, ppo ${JSON.stringify(JSON.parse(args.ppo!))}`);

const policy = gptFrom(config, weights, { value: true, reward: false }, 2);
/** The labeler's expected win rate, ties and mean hidden score of a policy against the base, and its KL. */
async function measure(model: typeof policy) {
  const session = await exportPolicySession(model);
  const ev = await evaluatePolicy({ ...evalOpts, policy: session });
  await session.release();
  const n = ev.texts.length;
  let win = 0, ties = 0, hidden = 0;
  ev.texts.forEach((t, i) => {
    win += labeler.pPrefers(t, base.texts[i]);
    ties += labeler.indifferent(t, base.texts[i]) ? 1 : 0;
    hidden += labeler.score(t);
  });
  return { win: win / n, ties: ties / n, hidden: hidden / n, kl: ev.klToRef };
}
const describe = (m: Awaited<ReturnType<typeof measure>>) => `expected win ${m.win.toFixed(3)}, ties ${m.ties.toFixed(2)}, hidden ${m.hidden.toFixed(3)}, KL ${m.kl.toFixed(2)}`;
const etas = args.interpolate ? args.interpolate.split(',').map(Number) : [];
/** With --interpolate: the weights PPO starts from, and a model the mixes are loaded into. */
const mix = etas.length ? { start: policy.toNamedArrays(), model: gptFrom(config, weights, { value: true, reward: false }, 2) } : undefined;
const t0 = performance.now();
for (let run = 1; run <= Number(args.runs); run++) {
  const res = await runPpo({ policy, reference, rewardModel, tokenizer, prompts: feedback, config: ppo, seed: run, stopAtKl: Number(args.klStop) });
  const m = await measure(policy);
  const last = res.iterations[res.iterations.length - 1];
  const secs = (k: 'rolloutS' | 'scoreS' | 'updateS') => res.iterations.reduce((a, m) => a + m[k], 0).toFixed(0);
  console.log(
    `run ${run}: ${describe(m)} ` +
      `(rollout KL ${last?.kl.toFixed(2) ?? '-'}, β ${res.finalBeta.toFixed(3)}, ${res.stoppedBy}; rollout/score/update ${secs('rolloutS')}/${secs('scoreS')}/${secs('updateS')} s), ${((performance.now() - t0) / 1000).toFixed(0)} s`,
  );
  if (mix) {
    const { start, model } = mix;
    const end = policy.toNamedArrays();
    for (const eta of etas) {
      model.loadWeights(Object.fromEntries(Object.entries(end).map(([name, a]) => [name, { ...a, data: a.data.map((x, j) => start[name].data[j] + eta * (x - start[name].data[j])) }])));
      console.log(`  η ${eta}: ${describe(await measure(model))}`);
    }
  }
  if (res.stoppedBy === 'kl') break;
}
mix?.model.dispose();
await reference.release();
