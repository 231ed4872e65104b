// The decode-step variant of a policy graph, derived from policy.onnx bytes at load time.
//
// Why: the policy contract (shared/policy-io.ts) returns `present.{i}.key/value`, the WHOLE cache
// [batch, nHead, past + seq, headDim], from every run. onnxruntime computes every graph output whatever the
// caller fetches, and the Node binding copies each output into a fresh JS buffer, so a decode step costs
// O(batch × past) in copies on top of the attention itself: at batch 32 and past 110 that was ~90% of a step.
// The step variant is the same graph with each present output replaced by the key/value of the fed tokens only,
// `step.{i}.key/value` [batch, nHead, seq, headDim] (policy-io.ts), so a run returns O(batch) data and the
// sampler keeps the cache in its own buffers. When nothing else reads a present Concat, it is dropped.
//
// The rewrite works on the protobuf wire format (no decoder dependency, runtime-neutral, weights are copied
// once as opaque bytes). The step variant also outputs `probs`, softmax(logits) over the vocabulary, which the
// sampler draws temperature-1 tokens from (sample.ts sampleFromProbs): the JS exp pass it replaces cost ~20 µs per
// row per step (7% of a batch-1 step here). It needs the exporter's pattern `present.{i}.* = Concat(past_key_values.{i}.*, new)`;
// a graph without it gets null, and the sampler then uses the plain contract.
import { POLICY_OUTPUTS, STEP_PROBS, pastKeyName, pastValueName, presentKeyName, presentValueName, stepKeyName, stepValueName } from '../policy-io';

interface Field {
  field: number;
  /** The whole field (tag, length and payload). */
  raw: Uint8Array;
  /** Payload of a length-delimited field. */
  body: Uint8Array | null;
}

function readVarint(b: Uint8Array, pos: number): [number, number] {
  let result = 0;
  let mul = 1;
  for (;;) {
    if (pos >= b.length) throw new Error('onnx: truncated varint');
    const byte = b[pos++];
    result += (byte & 0x7f) * mul;
    if ((byte & 0x80) === 0) return [result, pos];
    mul *= 128;
  }
}

function fields(b: Uint8Array): Field[] {
  const out: Field[] = [];
  let pos = 0;
  while (pos < b.length) {
    const start = pos;
    const [tag, p] = readVarint(b, pos);
    const wire = tag & 7;
    let body: Uint8Array | null = null;
    if (wire === 0) pos = readVarint(b, p)[1];
    else if (wire === 1) pos = p + 8;
    else if (wire === 5) pos = p + 4;
    else if (wire === 2) {
      const [len, q] = readVarint(b, p);
      body = b.subarray(q, q + len);
      pos = q + len;
    } else throw new Error(`onnx: unsupported wire type ${wire}`);
    if (pos > b.length) throw new Error('onnx: truncated field');
    out.push({ field: Math.floor(tag / 8), raw: b.subarray(start, pos), body });
  }
  return out;
}

const utf8 = new TextDecoder();
const strings = (b: Uint8Array, field: number) => fields(b).filter((f) => f.field === field && f.body).map((f) => utf8.decode(f.body!));

function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function lenField(field: number, body: Uint8Array): Uint8Array {
  return concat([new Uint8Array([...varint(field * 8 + 2), ...varint(body.length)]), body]);
}

const str = (field: number, s: string) => lenField(field, new TextEncoder().encode(s));
const int = (field: number, n: number) => new Uint8Array([...varint(field * 8), ...varint(n)]);

/** NodeProto: input 1, output 2, name 3, op_type 4. */
function identityNode(input: string, output: string): Uint8Array {
  return concat([str(1, input), str(2, output), str(3, `${output}/identity`), str(4, 'Identity')]);
}

/**
 * NodeProto of Softmax over the last axis. AttributeProto: name 1, i 3, type 20 (INT = 2); -1 as an int64 varint
 * is ten bytes of two's complement.
 */
function softmaxNode(input: string, output: string): Uint8Array {
  const minusOne = new Uint8Array([...varint(3 * 8), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
  const axis = concat([str(1, 'axis'), minusOne, int(20, 2)]);
  return concat([str(1, input), str(2, output), str(3, `${output}/softmax`), str(4, 'Softmax'), lenField(5, axis)]);
}

/** ValueInfoProto for a float32 tensor output (shape left to the runtime's inference: [batch, nHead, seq, headDim]). */
function floatOutput(name: string): Uint8Array {
  return concat([str(1, name), lenField(2, lenField(1, int(1, 1 /* FLOAT */)))]);
}

export interface StepGraphOptions {
  /**
   * Also output `probs` = softmax(logits) over the vocabulary (default true): onnxruntime's vectorised exp makes
   * the temperature-1 sampling distribution in a few µs, against ~20 µs per row for the JS exp pass (sample.ts).
   */
  probs?: boolean;
}

/**
 * policy.onnx bytes → the step variant's bytes, or null when the graph does not have the exporter's
 * `present = Concat(past, new)` pattern for every layer. Metadata, inputs and the other outputs are unchanged.
 */
export function deriveStepGraph(onnx: Uint8Array, opts: StepGraphOptions = {}): Uint8Array | null {
  const model = fields(onnx);
  const graphIdx = model.findIndex((f) => f.field === 7 && f.body);
  if (graphIdx < 0) return null;
  const graph = fields(model[graphIdx].body!);
  const nodes = graph.map((f) => (f.field === 1 && f.body ? { inputs: strings(f.body, 1), outputs: strings(f.body, 2), op: strings(f.body, 4)[0] } : null));
  const consumed = new Set(nodes.flatMap((n) => n?.inputs ?? []));
  const outputNames = new Set(graph.filter((f) => f.field === 12 && f.body).map((f) => strings(f.body!, 1)[0]));
  let nLayer = 0;
  while (outputNames.has(presentKeyName(nLayer)) && outputNames.has(presentValueName(nLayer))) nLayer++;
  if (nLayer === 0) return null;

  const drop = new Set<number>();
  const extra: Uint8Array[] = [];
  const extraOutputs: Uint8Array[] = [];
  const present = new Map<string, [string, string]>(); // present name → [past name, step name]
  for (let l = 0; l < nLayer; l++) {
    present.set(presentKeyName(l), [pastKeyName(l), stepKeyName(l)]);
    present.set(presentValueName(l), [pastValueName(l), stepValueName(l)]);
  }
  for (const [name, [past, step]] of present) {
    const at = nodes.findIndex((n) => n !== null && n.op === 'Concat' && n.outputs[0] === name && n.inputs.length === 2 && n.inputs[0] === past);
    if (at < 0) return null;
    if (!consumed.has(name)) drop.add(at);
    extra.push(lenField(1, identityNode(nodes[at]!.inputs[1], step)));
    extraOutputs.push(lenField(12, floatOutput(step)));
  }
  if ((opts.probs ?? true) && outputNames.has(POLICY_OUTPUTS.logits) && !outputNames.has(STEP_PROBS)) {
    extra.push(lenField(1, softmaxNode(POLICY_OUTPUTS.logits, STEP_PROBS)));
    extraOutputs.push(lenField(12, floatOutput(STEP_PROBS)));
  }
  const kept = graph.filter((f, i) => {
    if (drop.has(i)) return false;
    if (f.field === 12 && f.body) return !present.has(strings(f.body, 1)[0]);
    return true;
  });
  // Nodes must stay in topological order: the Identity nodes go after the last node, outputs after the rest.
  const lastNode = kept.reduce((m, f, i) => (f.field === 1 ? i : m), -1);
  const body = concat([...kept.slice(0, lastNode + 1).map((f) => f.raw), ...extra, ...kept.slice(lastNode + 1).map((f) => f.raw), ...extraOutputs]);
  return concat([...model.slice(0, graphIdx).map((f) => f.raw), lenField(7, body), ...model.slice(graphIdx + 1).map((f) => f.raw)]);
}
