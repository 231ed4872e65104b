// Speed probe of the RLHF stages at a given model size (default: the base config, 4 layers, d 128, vocab 2048,
// context 256), on random weights and Brown-corpus text: RM training pairs/s, PPO rollout tokens/s (sampler on
// onnxruntime), scoring time (reference log-probs + RM), PPO update tokens/s (TF.js). Prints one JSON object.
//   npx tsx worker/rlhf/speed-probe.ts [pairs=64] [episodes=64]
// bench:rlhf measures the whole loop; this isolates the stages for tuning.
import { parseModelConfig } from '../../shared/model-config';
import { parseTrainingConfig } from '../../shared/training-config';
import { ensureBackend } from '../backend';
import { loadBrown } from '../data/brown';
import { GPT } from '../model/gpt';
import { trainBpe } from '../train/bpe';
import { exportPolicySession, exportRewardSession, runPpo, trainRewardModel, type PairExample } from './index';

const pairs = Number(process.argv[2] ?? 64), episodes = Number(process.argv[3] ?? 64);
await ensureBackend({ log: () => {} });
const brown = loadBrown();
const texts = brown.train.map((d) => d.text);
const tok = trainBpe(texts.slice(0, 200), 2048);
const config = parseModelConfig({ vocabSize: tok.vocabSize, contextLength: 256, nLayer: 4, nHead: 4, dModel: 128, mlpRatio: 4, layerNormEps: 1e-5 });
const sentences = texts.join(' ').split(/(?<=[.!?])\s+/).filter((s) => s.length > 20 && s.length < 160);
const words = (s: string, n: number) => s.split(' ').slice(0, n).join(' ');
const data: PairExample[] = Array.from({ length: pairs }, (_, i) => ({ prompt: words(sentences[3 * i], 8), chosen: words(sentences[3 * i + 1], 24), rejected: words(sentences[3 * i + 2], 24) }));

const cfg = parseTrainingConfig({ rewardModel: { epochs: 1 }, ppo: { totalEpisodes: episodes, rolloutBatchSize: episodes } });
const rm = new GPT(config, { heads: { value: false, reward: true }, seed: 1 });
// CPU seconds as well as wall seconds: on a shared machine wall time says little about the code.
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };
let c0 = cpu();
const rmRes = await trainRewardModel({ model: rm, tokenizer: tok, train: data, heldOut: [], pointwise: [], config: cfg.rewardModel, seed: 1 });
const tokensPerPair = data.reduce((s, p) => s + 2 + tok.encode(p.prompt).length * 2 + tok.encode(p.chosen).length + tok.encode(p.rejected).length + 2, 0) / pairs;

const rmCpuS = cpu() - c0;
const policy = new GPT(config, { heads: { value: true }, seed: 2 });
const ref = await exportPolicySession(policy);
const rmSession = await exportRewardSession(rm);
const prompts = sentences.slice(0, 500).map((s) => words(s, 12));
c0 = cpu();
const ppo = await runPpo({ policy, reference: ref, rewardModel: rmSession, tokenizer: tok, prompts, config: cfg.ppo, seed: 1 });
const ppoCpuS = cpu() - c0;
const it = ppo.iterations[0];
console.log(JSON.stringify({
  config,
  rm: { pairs, pairsPerS: rmRes.pairsPerS, tokensPerPair, seconds: rmRes.seconds, cpuS: rmCpuS, pairsPerCpuS: pairs / rmCpuS, batchSize: cfg.rewardModel.batchSize },
  ppo: { episodes, responseLength: it.responseLength, exportS: it.exportS, rolloutS: it.rolloutS, scoreS: it.scoreS, updateS: it.updateS, epochs: it.epochs, rolloutTokensPerS: it.rolloutTokensPerS, updateTokensPerS: it.updateTokensPerS, wallS: ppo.seconds, cpuS: ppoCpuS },
}, null, 2));
process.exit(0);
