// The element-wise mean of several models' weights: how merged PPO runs (WARP) and averaged reward models (WARM)
// combine fine-tunes of one initialisation.
import type { GPT, NamedArray } from './gpt';

export class WeightMean {
  private readonly sum = new Map<string, NamedArray>();
  private count = 0;

  /** Adds a copy of `g`'s current weights. */
  add(g: GPT): void {
    for (const [name, a] of Object.entries(g.toNamedArrays())) {
      const s = this.sum.get(name);
      if (!s) this.sum.set(name, { ...a, shape: [...a.shape], data: Float32Array.from(a.data) });
      else for (let j = 0; j < s.data.length; j++) s.data[j] += a.data[j];
    }
    this.count++;
  }

  /** The mean of the weights added so far, ready for GPT.loadWeights. */
  mean(): Record<string, NamedArray> {
    if (this.count === 0) throw new Error('WeightMean: no weights added');
    const out: Record<string, NamedArray> = {};
    for (const [name, s] of this.sum) out[name] = { ...s, shape: [...s.shape], data: s.data.map((x) => x / this.count) };
    return out;
  }
}
