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
// And its logits (and probs) are the LAST position's only, [batch, 1, vocab]: a decode step feeds one position
// anyway, and a prefill samples only from its last, so the LM head's Gemm, the softmax and the copy-out over the
// other prompt positions (a [len, vocab] matrix each) were work for nothing. Applied when the head has the
// exporter's shape (logits = Reshape(Gemm(hidden [rows, d], wte)), worker/onnx/export-policy.ts).
import { POLICY_INPUTS, POLICY_OUTPUTS, STEP_PROBS, pastKeyName, pastValueName, presentKeyName, presentValueName, stepKeyName, stepValueName } from '../policy-io';

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

/** An int64 as a protobuf varint: negative values are ten bytes of two's complement. */
function int64Varint(n: number): number[] {
  let v = BigInt.asUintN(64, BigInt(n));
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}

/** A NodeProto (input 1, output 2, name 3, op_type 4, attribute 5). */
function node(op: string, inputs: string[], output: string, attrs: Uint8Array[] = []): Uint8Array {
  return concat([...inputs.map((i) => str(1, i)), str(2, output), str(3, `${output}/${op.toLowerCase()}`), str(4, op), ...attrs.map((a) => lenField(5, a))]);
}

/** AttributeProto of type INT (name 1, i 3, type 20 = 2). */
const intAttr = (name: string, n: number) => concat([str(1, name), new Uint8Array([...varint(3 * 8), ...int64Varint(n)]), int(20, 2)]);

/** A Constant node holding an int64 tensor (TensorProto: dims 1, data_type 2 = INT64 7, int64_data 7); `dims` [] = a scalar. */
function int64Constant(output: string, values: number[], dims: number[]): Uint8Array {
  const tensor = concat([...dims.map((d) => int(1, d)), int(2, 7), ...values.map((v) => new Uint8Array([...varint(7 * 8), ...int64Varint(v)]))]);
  const attr = concat([str(1, 'value'), lenField(5, tensor), int(20, 4 /* TENSOR */)]);
  return node('Constant', [], output, [attr]);
}

/** Identity (the step outputs are the fed tokens' key/value, renamed). */
const identityNode = (input: string, output: string) => node('Identity', [input], output);

/** Softmax over the last axis. */
const softmaxNode = (input: string, output: string) => node('Softmax', [input], output, [intAttr('axis', -1)]);

/**
 * The nodes that replace the LM head's output Reshape (`reshape`, whose output `out` feeds the logits output):
 * hidden [rows, d] → [batch, seq, d] → the last position [batch, d] → the head's own Gemm (its attributes kept) →
 * [batch, 1, vocab], under the same output name, so everything downstream (Identity → logits, the softmax) is as before.
 */
function lastPositionHead(gemm: Uint8Array, hidden: string, out: string): Uint8Array[] {
  const p = `${out}/last`;
  const gemmFields = fields(gemm);
  const weights = gemmFields.filter((f) => f.field === 1 && f.body).slice(1).map((f) => utf8.decode(f.body!));
  const gemmAttrs = gemmFields.filter((f) => f.field === 5 && f.body).map((f) => f.body!);
  return [
    node('Shape', [POLICY_INPUTS.inputIds], `${p}/ids_shape`),
    int64Constant(`${p}/minus_one`, [-1], [1]),
    node('Concat', [`${p}/ids_shape`, `${p}/minus_one`], `${p}/hidden_shape`, [intAttr('axis', 0)]),
    node('Reshape', [hidden, `${p}/hidden_shape`], `${p}/hidden`), // [batch, seq, d]
    int64Constant(`${p}/index`, [-1], []),
    node('Gather', [`${p}/hidden`, `${p}/index`], `${p}/hidden_last`, [intAttr('axis', 1)]), // [batch, d]
    node('Gemm', [`${p}/hidden_last`, ...weights], `${p}/logits2d`, gemmAttrs), // [batch, vocab]
    int64Constant(`${p}/axis`, [1], [1]),
    node('Unsqueeze', [`${p}/logits2d`, `${p}/axis`], out), // [batch, 1, vocab]
  ];
}

/** ValueInfoProto for a float32 tensor output (shape left to the runtime's inference: [batch, nHead, seq, headDim]). */
function floatOutput(name: string): Uint8Array {
  return concat([str(1, name), lenField(2, lenField(1, int(1, 1 /* FLOAT */)))]);
}

type GraphNode = { inputs: string[]; outputs: string[]; op: string } | null;

/**
 * Where the LM head has the exporter's shape, logits = Identity(Reshape(Gemm(hidden, wte, …), shape)): the index of
 * its Reshape, the nodes that replace it (lastPositionHead; its inputs are defined before it and its readers come
 * after, so topological order holds), and the nodes that no longer have a reader (the full-sequence Gemm, the shape
 * Concat and its Shape).
 */
function lastPositionRewrite(graph: Field[], nodes: GraphNode[]): { at: number; nodes: Uint8Array[]; drop: number[] } | null {
  const producer = (name: string) => nodes.findIndex((n) => n !== null && n.outputs[0] === name);
  const readers = (name: string) => nodes.filter((n) => n?.inputs.includes(name)).length;
  const identity = nodes[producer(POLICY_OUTPUTS.logits)];
  if (identity?.op !== 'Identity') return null;
  const at = producer(identity.inputs[0]);
  const reshape = nodes[at];
  if (reshape?.op !== 'Reshape') return null;
  const gemmAt = producer(reshape.inputs[0]);
  if (nodes[gemmAt]?.op !== 'Gemm' || readers(reshape.inputs[0]) !== 1) return null;
  const drop = [gemmAt];
  const shapeAt = producer(reshape.inputs[1]);
  if (shapeAt >= 0 && readers(reshape.inputs[1]) === 1) {
    drop.push(shapeAt);
    for (const input of nodes[shapeAt]!.inputs) {
      const from = producer(input);
      if (nodes[from]?.op === 'Shape' && readers(input) === 1) drop.push(from);
    }
  }
  return { at, nodes: lastPositionHead(graph[gemmAt].body!, nodes[gemmAt]!.inputs[0], reshape.outputs[0]), drop };
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
 * `present = Concat(past, new)` pattern for every layer. Metadata, inputs and values are unchanged; logits (and probs)
 * are [batch, 1, vocab], the last position's, when the head has the exporter's shape.
 */
export function deriveStepGraph(onnx: Uint8Array, opts: StepGraphOptions = {}): Uint8Array | null {
  const model = fields(onnx);
  const graphIdx = model.findIndex((f) => f.field === 7 && f.body);
  if (graphIdx < 0) return null;
  const graph = fields(model[graphIdx].body!);
  const nodes: GraphNode[] = graph.map((f) => (f.field === 1 && f.body ? { inputs: strings(f.body, 1), outputs: strings(f.body, 2), op: strings(f.body, 4)[0] } : null));
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
  const head = lastPositionRewrite(graph, nodes);
  for (const at of head?.drop ?? []) drop.add(at);
  const kept = graph.flatMap((f, i): Field[] => {
    if (drop.has(i)) return [];
    if (head?.at === i) return head.nodes.map((body) => ({ field: 1, raw: lenField(1, body), body }));
    if (f.field === 12 && f.body && present.has(strings(f.body, 1)[0])) return [];
    return [f];
  });
  // Initializers only the dropped nodes read (the head's vocabulary shape) go too: onnxruntime warns about each.
  const read = new Set(kept.flatMap((f) => (f.field === 1 && f.body ? strings(f.body, 1) : [])));
  const dropped = new Set([...drop].flatMap((i) => nodes[i]?.inputs ?? []));
  const out = kept.filter((f) => !(f.field === 5 && f.body && dropped.has(strings(f.body, 8)[0]) && !read.has(strings(f.body, 8)[0])));
  // Nodes must stay in topological order: the Identity nodes go after the last node, outputs after the rest.
  const lastNode = out.reduce((m, f, i) => (f.field === 1 ? i : m), -1);
  const body = concat([...out.slice(0, lastNode + 1).map((f) => f.raw), ...extra, ...out.slice(lastNode + 1).map((f) => f.raw), ...extraOutputs]);
  return concat([...model.slice(0, graphIdx).map((f) => f.raw), lenField(7, body), ...model.slice(graphIdx + 1).map((f) => f.raw)]);
}
