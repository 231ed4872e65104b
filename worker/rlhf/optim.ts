// AdamW on a GPT's trainable variables, for the RLHF trainers (reward model, SFT, PPO). The update itself is
// the model helper's AdamW (worker/train/optimizer.ts) over one flat Float32Array; this wrapper owns the
// flat copy of the chosen variables, turns TF.js gradients into it, and writes the result back.
//
// Freezing: `freezeEmbeddings` leaves wte/wpe out of the variable list. TF.js then never runs the embedding
// lookup's one-hot gradient ([C, N] @ [N, V], as costly as the LM head) and AdamW skips 0.3 M floats; the tied
// LM head still moves through ln_f and the blocks. Measured numbers are in the bench (bench/rlhf.ts).
import * as tf from '@tensorflow/tfjs';
import type { GPT, ParamSpec } from '../model/gpt';
import { type AdamWConfig, type AdamWState, adamwStep, newAdamWState } from '../train/optimizer';

export interface ModelOptimizerOptions {
  /** Variable groups that train (trunk, value, reward). */
  groups: ReadonlyArray<ParamSpec['group']>;
  freezeEmbeddings: boolean;
  /** Train only the top this-many transformer blocks (plus ln_f and the heads); the blocks below stay as they
   *  are (trlx num_layers_unfrozen). -1: every block. */
  unfrozenLayers?: number;
  maxGradNorm: number;
  /** Decoupled weight decay on matrices (TRL's default for RLHF: 0). */
  weightDecay?: number;
}

export interface StepResult {
  loss: number;
  gradNorm: number;
  /** Scalars the loss function reported (clip fraction, approx KL...). */
  aux: Record<string, number>;
}

export class ModelOptimizer {
  private readonly vars: tf.Variable[];
  private readonly entries: { v: tf.Variable; offset: number; size: number; shape: number[] }[] = [];
  private readonly params: Float32Array;
  private readonly grad: Float32Array;
  private readonly decay: Uint8Array;
  private readonly state: AdamWState;
  private readonly cfg: AdamWConfig;

  constructor(private readonly model: GPT, o: ModelOptimizerOptions) {
    const firstTrained = o.unfrozenLayers === undefined || o.unfrozenLayers < 0 ? 0 : Math.max(0, model.config.nLayer - o.unfrozenLayers);
    const frozenBlock = (block: number | undefined) => block !== undefined && block < firstTrained;
    const specs = model.specs.filter(
      (s) => o.groups.includes(s.group) && !(o.freezeEmbeddings && (s.name === 'wte.weight' || s.name === 'wpe.weight')) && !frozenBlock(s.block),
    );
    let offset = 0;
    for (const s of specs) {
      const v = model.weights.get(s.name)!;
      const size = s.shape.reduce((a, b) => a * b, 1);
      this.entries.push({ v, offset, size, shape: s.shape });
      offset += size;
    }
    this.vars = this.entries.map((e) => e.v);
    this.params = new Float32Array(offset);
    this.grad = new Float32Array(offset);
    this.decay = new Uint8Array(offset);
    for (const e of this.entries) {
      this.params.set(e.v.dataSync() as Float32Array, e.offset);
      if (e.shape.length === 2 && e.shape[1] > 1) this.decay.fill(1, e.offset, e.offset + e.size);
    }
    this.state = newAdamWState(offset);
    this.cfg = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: o.weightDecay ?? 0, gradClip: o.maxGradNorm };
  }

  get numTrainable(): number {
    return this.params.length;
  }

  /**
   * One step: gradient of `lossFn` w.r.t. the trainable variables, global-norm clip, AdamW, write back.
   * `lossFn` may put scalars in `aux` to be read after the step (they are read before the tidy ends).
   */
  step(lossFn: (aux: Record<string, tf.Scalar>) => tf.Scalar, lr: number): StepResult {
    const out = tf.tidy(() => {
      // variableGrads disposes every tensor its function made except the loss: aux scalars are kept on
      // assignment and disposed here once read.
      const kept: Record<string, tf.Scalar> = {};
      const aux = new Proxy(kept, { set: (o, k, t: tf.Scalar) => ((o[k as string] = tf.keep(t)), true) });
      const { value, grads } = tf.variableGrads(() => lossFn(aux), this.vars);
      this.grad.fill(0);
      for (const e of this.entries) {
        const g = grads[e.v.name];
        if (g) this.grad.set(g.dataSync() as Float32Array, e.offset);
      }
      const auxOut: Record<string, number> = {};
      for (const [k, t] of Object.entries(kept)) (auxOut[k] = t.dataSync()[0]), t.dispose();
      return { loss: value.dataSync()[0], aux: auxOut };
    });
    const gradNorm = adamwStep(this.params, this.grad, this.state, lr, this.cfg, this.decay);
    tf.tidy(() => {
      for (const e of this.entries) e.v.assign(tf.tensor(this.params.subarray(e.offset, e.offset + e.size), e.shape, 'float32'));
    });
    return { ...out, gradNorm };
  }
}
