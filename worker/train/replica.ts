// One data-parallel replica: a GPT whose weights mirror a flat parameter array, that turns windows of the
// token stream into a loss and a flat gradient, or into held-out nats. The same class runs in the trainer's
// own thread (threads = 1, tests) and inside each worker thread (grad-worker.ts).
import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from '../../shared/model-config';
import { BOS_ID } from '../../shared/tokenizer';
import { GPT, type HeadOptions } from '../model/gpt';
import { type ParamLayout, layoutOf, writeParams } from './flat';
import { gatherWindows } from './lm-data';

export class Replica {
  readonly model: GPT;
  readonly layout: ParamLayout;
  private readonly trainVars: tf.Variable[];
  private syncedVersion = -1;

  constructor(config: ModelConfig, heads: HeadOptions, private readonly params: Float32Array, private readonly tokens: Uint16Array) {
    this.model = new GPT(config, { heads });
    this.layout = layoutOf(this.model.specs);
    // LM training moves the trunk (the tied LM head is wte); the scalar heads get no gradient from it.
    this.trainVars = this.model.variables(['trunk']);
  }

  /** Loads the shared parameters if they changed since the last call. */
  sync(version: number): void {
    if (version === this.syncedVersion) return;
    writeParams(this.model, this.layout, this.params);
    this.syncedVersion = version;
  }

  /** Mean next-token loss (nats) over B windows; writes the gradient into `grad` (flat, layout order). */
  gradient(starts: ArrayLike<number>, T: number, grad: Float32Array): number {
    const windows = gatherWindows(this.tokens, starts, T);
    const weights = this.targetWeights(windows, starts.length, T, null);
    return tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => this.model.lmLoss(windows, starts.length, weights), this.trainVars);
      grad.fill(0);
      for (const e of this.layout.entries) {
        const v = this.model.weights.get(e.name)!;
        const g = grads[v.name];
        if (g) grad.set(g.dataSync() as Float32Array, e.offset);
      }
      return value.dataSync()[0];
    });
  }

  /** Summed nats over the counted targets of each window (targets before countFrom[b] and BOS targets skipped). */
  evalNats(starts: ArrayLike<number>, countFrom: ArrayLike<number>, T: number): { nats: number; count: number } {
    const windows = gatherWindows(this.tokens, starts, T);
    const weights = this.targetWeights(windows, starts.length, T, countFrom);
    let count = 0;
    for (const w of weights) count += w;
    if (count === 0) return { nats: 0, count: 0 };
    const mean = tf.tidy(() => this.model.lmLoss(windows, starts.length, weights).dataSync()[0]);
    return { nats: mean * count, count };
  }

  /** 1 per target that is counted: never a BOS (document starts are given, not predicted). */
  private targetWeights(windows: Int32Array, B: number, T: number, countFrom: ArrayLike<number> | null): Float32Array {
    const w = new Float32Array(B * T);
    for (let b = 0; b < B; b++)
      for (let j = countFrom ? Math.max(0, countFrom[b]) : 0; j < T; j++) if (windows[b * (T + 1) + j + 1] !== BOS_ID) w[b * T + j] = 1;
    return w;
  }
}
