// The metadata_props every exported graph carries (keys from shared/policy-io.ts), so a runtime holding only
// the .onnx file can tell which config, tokenizer and version it has. Read them back with
// shared/onnx-metadata.ts (runtime-neutral; onnxruntime's JS API does not expose metadata_props).
import { createHash } from 'node:crypto';
import type { ModelConfig } from '../../shared/model-config';
import { METADATA_KEYS } from '../../shared/policy-io';

export type GraphKind = 'policy' | 'reward';

/** sha256 hex of the tokenizer file's exact bytes (what `prefloop.tokenizer_sha256` holds). */
export function tokenizerSha256(tokenizerJson: string | Uint8Array): string {
  return createHash('sha256').update(tokenizerJson).digest('hex');
}

export function graphMetadata(kind: GraphKind, config: ModelConfig, tokenizerSha: string, version: string): Record<string, string> {
  return {
    [METADATA_KEYS.kind]: kind,
    [METADATA_KEYS.config]: JSON.stringify(config),
    [METADATA_KEYS.tokenizerSha256]: tokenizerSha,
    [METADATA_KEYS.version]: version,
  };
}
