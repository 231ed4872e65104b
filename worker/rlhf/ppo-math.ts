// The plain-number parts of PPO for language models (CleanRL ppo.py; TRL ppo_trainer.py), kept apart from
// the tensors so each can be checked against hand-computed values: the per-token KL penalty, GAE, advantage
// whitening and the adaptive KL controller (Ziegler et al. 2019).
import type { PpoConfig } from '../../shared/training-config';

/**
 * Per-token KL estimate of π against π_ref at a token sampled from π, from the two log-probabilities.
 *  k3 = (r − 1) − log r with r = π_ref/π (Schulman's estimator: unbiased and ≥ 0 per token);
 *  k1_clamped = max(0, log π − log π_ref) (the plain log-ratio, clamped so the optimiser cannot farm
 *  negative estimates by making reference-likely tokens even more likely than the reference does).
 */
export function klPenalty(logp: number, refLogp: number, estimator: PpoConfig['klEstimator']): number {
  const d = refLogp - logp; // log r
  if (estimator === 'k1_clamped') return Math.max(0, -d);
  // expm1(d) − d is (r − 1) − log r without cancellation when r ≈ 1.
  return Math.expm1(d) - d;
}

/**
 * Generalised advantage estimation over one response (Schulman et al. 2016), bootstrapping 0 after the last
 * token (the episode ends with the response).   rewards, values [L] → advantages, returns [L]
 *   δ_t = r_t + γ V_{t+1} − V_t;  A_t = δ_t + γλ A_{t+1};  returns = A + V
 */
export function computeGae(rewards: ArrayLike<number>, values: ArrayLike<number>, gamma: number, lambda: number): { advantages: Float64Array; returns: Float64Array } {
  const L = rewards.length;
  const advantages = new Float64Array(L), returns = new Float64Array(L);
  let next = 0, nextValue = 0;
  for (let t = L - 1; t >= 0; t--) {
    const delta = rewards[t] + gamma * nextValue - values[t];
    next = delta + gamma * lambda * next;
    advantages[t] = next;
    returns[t] = next + values[t];
    nextValue = values[t];
  }
  return { advantages, returns };
}

/** (x − mean) / (std + 1e-8) in place over all the given arrays together (unbiased variance, as TRL's masked_whiten). */
export function whiten(arrays: Float64Array[], shiftMean = true): void {
  let n = 0, sum = 0;
  for (const a of arrays) for (const x of a) (sum += x), n++;
  if (n === 0) return;
  const mean = sum / n;
  let ss = 0;
  for (const a of arrays) for (const x of a) ss += (x - mean) ** 2;
  const std = Math.sqrt(n > 1 ? ss / (n - 1) : 0);
  for (const a of arrays) for (let i = 0; i < a.length; i++) a[i] = ((a[i] - mean) / (std + 1e-8)) + (shiftMean ? 0 : mean);
}

/**
 * Adaptive KL coefficient (Ziegler et al. 2019; TRL AdaptiveKLController): after a batch of n episodes with
 * mean KL `kl` (nats per response), error = clip(kl / target − 1, −0.2, 0.2) and β ← β·(1 + error·n / horizon).
 * With `adaptive` false β never moves (TRL's current fixed-β default).
 */
export class AdaptiveKlController {
  constructor(
    public beta: number,
    readonly target: number,
    readonly horizon: number,
    readonly adaptive = true,
  ) {}

  update(kl: number, nEpisodes: number): number {
    if (!this.adaptive || !Number.isFinite(kl)) return this.beta;
    const error = Math.min(0.2, Math.max(-0.2, kl / this.target - 1));
    this.beta *= 1 + (error * nEpisodes) / this.horizon;
    return this.beta;
  }
}
