// Probe (not a test, not a benchmark): how far can a per-token policy change get on the VADER preference within the
// KL budget, if it knew each token's valence exactly? The tilted policy is π(v | ctx) ∝ π_base(v | ctx) ·
// exp(α · valence(v)), valence from VADER's own lexicon for the vocabulary tokens that are whole lexicon words:
// the best a reward model that scores tokens (the mean-pooled RM) could teach PPO about single tokens. For each
// α it samples one 24-token response per evaluation prompt (the loop's prompt set) from the tilted and the base
// policy, and reports the labeler's expected win rate (mean σ(Δ/T)), the mean hidden score and KL to base
// (Σ over tokens of log π/π_base, exact per step).
//
//   npx tsx sim/probes/lexical-tilt.ts [--alphas 0.5,1,1.25,1.5,2] [--prompts 200]
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { headDim, parseModelConfig } from '../../shared/model-config';
import { ortSessionOptions } from '../../shared/onnx-session';
import { ARTIFACT_FILES } from '../../shared/policy-io';
import { SessionLane } from '../../shared/sampling/lane';
import { Xoshiro128 } from '../../shared/sampling/rng';
import { Tokenizer } from '../../shared/tokenizer';
import { Labeler } from '../labeler';
import { vaderPreference } from '../preferences';
import { buildPromptSet } from '../prompts';

const { values: args } = parseArgs({ options: { alphas: { type: 'string', default: '0.5,1,1.25,1.5,2' }, prompts: { type: 'string', default: '200' } } });
const dir = 'models/base';
const cfg = parseModelConfig(JSON.parse(readFileSync(join(dir, ARTIFACT_FILES.config), 'utf8')));
const tok = Tokenizer.fromJSON(readFileSync(join(dir, ARTIFACT_FILES.tokenizer), 'utf8'));
const session = await ort.InferenceSession.create(readFileSync(join(dir, ARTIFACT_FILES.policyOnnx)), ortSessionOptions());
const lane = new SessionLane(session, { nLayer: cfg.nLayer, nHead: cfg.nHead, headDim: headDim(cfg), contextLength: cfg.contextLength, vocabSize: cfg.vocabSize });
const V = cfg.vocabSize;
const labeler = new Labeler(vaderPreference);

const lexicon = new Map<string, number>();
const lexiconDir = dirname(createRequire(import.meta.url).resolve('vader-sentiment/package.json'));
for (const line of readFileSync(join(lexiconDir, 'vader_lexicon.txt'), 'utf8').split('\n')) {
  const [word, valence] = line.split('\t');
  if (word && valence) lexicon.set(word, Number(valence));
}
const valence = new Float64Array(V);
for (let v = 0; v < V; v++) {
  const word = tok.decode([v]).trim().toLowerCase();
  if (/^[a-z']+$/.test(word)) valence[v] = lexicon.get(word) ?? 0;
}
console.log(`${valence.filter((x) => x !== 0).length} of ${V} tokens are whole VADER words`);

/** One response: next-token logits from a fresh prefill of prompt + response so far (24 tokens: cheap enough). */
async function respond(prompt: string, alpha: number, seed: number): Promise<{ text: string; kl: number }> {
  const ids = [tok.bosId, ...tok.encode(prompt)];
  const out: number[] = [];
  const rng = new Xoshiro128(seed, 0);
  const q = new Float64Array(V);
  let kl = 0;
  for (let t = 0; t < 24; t++) {
    const all = [...ids, ...out];
    lane.clear();
    const { logits } = await lane.prefill(Int32Array.from(all), 1, all.length, [], []);
    let max = -Infinity;
    for (let v = 0; v < V; v++) max = Math.max(max, logits[v]);
    let zBase = 0;
    let zTilt = 0;
    for (let v = 0; v < V; v++) {
      const p = Math.exp(logits[v] - max);
      zBase += p;
      q[v] = p * Math.exp(alpha * valence[v]);
      zTilt += q[v];
    }
    const target = rng.next() * zTilt;
    let a = V - 1;
    for (let v = 0, cum = 0; v < V; v++) if ((cum += q[v]) > target) { a = v; break; }
    kl += alpha * valence[a] - Math.log(zTilt / zBase); // log π(a) − log π_base(a)
    out.push(a);
  }
  return { text: tok.decode(out), kl };
}

const prompts = buildPromptSet({ evalCount: Number(args.prompts), seed: 1 }).evaluation;
for (const alpha of args.alphas!.split(',').map(Number)) {
  let win = 0, kl = 0, score = 0;
  for (const [i, prompt] of prompts.entries()) {
    const base = await respond(prompt, 0, 1000 + i);
    const tilted = await respond(prompt, alpha, 5000 + i);
    win += labeler.pPrefers(tilted.text, base.text);
    kl += tilted.kl;
    score += labeler.score(tilted.text);
  }
  const n = prompts.length;
  console.log(`alpha ${alpha}: expected win rate ${(win / n).toFixed(3)}, KL to base ${(kl / n).toFixed(2)} nats, hidden score ${(score / n).toFixed(3)}`);
}
await session.release();
