// The GPT configuration every side agrees on: the worker builds and trains the model from it, the exporter
// writes it into the ONNX metadata and config.json, the API reads it to size prompts and KV caches.
// Names follow nanoGPT/GPT-2 (nLayer, nHead, dModel, contextLength).
import { z } from 'zod';

export const modelConfigSchema = z
  .object({
    /** Vocabulary size including the special tokens (BOS/EOS/PAD). */
    vocabSize: z.number().int().positive(),
    /** Longest sequence (prompt + response) the learned position table covers. */
    contextLength: z.number().int().positive(),
    nLayer: z.number().int().positive(),
    nHead: z.number().int().positive(),
    dModel: z.number().int().positive(),
    /** MLP hidden width = mlpRatio * dModel (GPT-2: 4). */
    mlpRatio: z.number().int().positive().default(4),
    /** LayerNorm epsilon (GPT-2: 1e-5). */
    layerNormEps: z.number().positive().default(1e-5),
  })
  .strict()
  .refine((c) => c.dModel % c.nHead === 0, { message: 'dModel must be divisible by nHead', path: ['dModel'] });

export type ModelConfig = z.infer<typeof modelConfigSchema>;

/** Refuses unknown or mistyped keys (nanoGPT's configurator does the same). */
export function parseModelConfig(raw: unknown): ModelConfig {
  return modelConfigSchema.parse(raw);
}

/** Derived once, never stored. */
export function headDim(c: ModelConfig): number {
  return c.dModel / c.nHead;
}
