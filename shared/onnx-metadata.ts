// Reads an ONNX model's metadata_props (prefloop.config, prefloop.kind, ...) without decoding the graph:
// onnxruntime's JS API does not expose them, and a full protobuf decode would copy every weight. This scans
// ModelProto's top-level fields and skips everything except field 14 (metadata_props). Runtime-neutral.
import { METADATA_KEYS } from './policy-io';
import { parseModelConfig, type ModelConfig } from './model-config';

function readVarint(b: Uint8Array, pos: number): [number, number] {
  let result = 0;
  let mul = 1;
  for (;;) {
    if (pos >= b.length) throw new Error('onnx metadata: truncated varint');
    const byte = b[pos++];
    result += (byte & 0x7f) * mul; // arithmetic, not bit ops: lengths may exceed 2^31
    if ((byte & 0x80) === 0) return [result, pos];
    mul *= 128;
  }
}

/** Skips one field of the given wire type; returns the position after it. */
function skip(b: Uint8Array, pos: number, wire: number): number {
  if (wire === 0) return readVarint(b, pos)[1];
  if (wire === 1) return pos + 8;
  if (wire === 5) return pos + 4;
  if (wire === 2) {
    const [len, p] = readVarint(b, pos);
    return p + len;
  }
  throw new Error(`onnx metadata: unsupported wire type ${wire}`);
}

/** Decodes a StringStringEntryProto (key = field 1, value = field 2). */
function readEntry(b: Uint8Array): [string, string] {
  const dec = new TextDecoder();
  let key = '';
  let value = '';
  let pos = 0;
  while (pos < b.length) {
    const [tag, p] = readVarint(b, pos);
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (wire === 2 && (field === 1 || field === 2)) {
      const [len, q] = readVarint(b, p);
      const s = dec.decode(b.subarray(q, q + len));
      if (field === 1) key = s;
      else value = s;
      pos = q + len;
    } else pos = skip(b, p, wire);
  }
  return [key, value];
}

/** All metadata_props of an ONNX model file as a plain object. */
export function readOnnxMetadataProps(model: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < model.length) {
    const [tag, p] = readVarint(model, pos);
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (field === 14 && wire === 2) {
      const [len, q] = readVarint(model, p);
      const [k, v] = readEntry(model.subarray(q, q + len));
      out[k] = v;
      pos = q + len;
    } else pos = skip(model, p, wire);
    if (pos > model.length) throw new Error('onnx metadata: truncated model');
  }
  return out;
}

export interface PrefloopOnnxMetadata {
  kind: 'policy' | 'reward';
  config: ModelConfig;
  tokenizerSha256: string;
  version: string;
}

/** The prefloop metadata of a policy or reward graph; throws if any key is missing or malformed. */
export function readPrefloopMetadata(model: Uint8Array): PrefloopOnnxMetadata {
  const props = readOnnxMetadataProps(model);
  const kind = props[METADATA_KEYS.kind];
  if (kind !== 'policy' && kind !== 'reward') throw new Error(`onnx metadata: ${METADATA_KEYS.kind} is ${String(kind)}`);
  const cfg = props[METADATA_KEYS.config];
  const sha = props[METADATA_KEYS.tokenizerSha256];
  const version = props[METADATA_KEYS.version];
  if (cfg === undefined || sha === undefined || version === undefined) throw new Error('onnx metadata: prefloop keys missing');
  return { kind, config: parseModelConfig(JSON.parse(cfg)), tokenizerSha256: sha, version };
}
