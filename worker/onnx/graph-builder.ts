// A small typed helper over onnx-proto for writing ONNX graphs by hand: named initializers, constants, nodes
// with attributes, graph inputs/outputs with symbolic dimensions, and the final ModelProto bytes. It knows
// nothing about GPTs; worker/onnx/gpt-graph.ts uses it to lay out the transformer.
import onnxProto from 'onnx-proto';
import type { onnx as P } from 'onnx-proto';

const { onnx } = onnxProto;

/** ONNX opset the exporters target (LayerNormalization needs 17; ORT 1.30 and python onnx 1.12 both read it). */
export const OPSET = 17;
/** IR version 8 is what opset 17 pairs with and the newest onnx-proto 8.0.1 can express. */
export const IR_VERSION = 8;

export const DType = { float: onnx.TensorProto.DataType.FLOAT, int64: onnx.TensorProto.DataType.INT64, bool: onnx.TensorProto.DataType.BOOL } as const;
export type DTypeCode = (typeof DType)[keyof typeof DType];

/** A dimension is a fixed size or a symbolic name such as 'batch'. */
export type Dim = number | string;

type AttrValue = number | number[] | string | { float: number } | { floats: number[] } | { tensor: P.ITensorProto };

function attribute(name: string, v: AttrValue): P.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'number') return { name, type: T.INT, i: v };
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  if ('float' in v) return { name, type: T.FLOAT, f: v.float };
  if ('floats' in v) return { name, type: T.FLOATS, floats: v.floats };
  return { name, type: T.TENSOR, t: v.tensor };
}

function valueInfo(name: string, elemType: DTypeCode, dims: Dim[]): P.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function floatTensor(name: string, dims: number[], data: Float32Array): P.ITensorProto {
  // rawData is little-endian by the ONNX spec; copy so a later change to `data` cannot alter the model.
  const raw = new Uint8Array(data.byteLength);
  raw.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return { name, dims, dataType: DType.float, rawData: raw };
}

function int64Tensor(name: string, dims: number[], values: number[]): P.ITensorProto {
  const raw = new BigInt64Array(values.map((v) => BigInt(v)));
  return { name, dims, dataType: DType.int64, rawData: new Uint8Array(raw.buffer) };
}

export class GraphBuilder {
  private readonly nodes: P.INodeProto[] = [];
  private readonly initializers: P.ITensorProto[] = [];
  private readonly inputs: P.IValueInfoProto[] = [];
  private readonly outputs: P.IValueInfoProto[] = [];
  private readonly names = new Set<string>();
  private counter = 0;

  constructor(readonly graphName: string) {}

  /** A fresh value name with a readable prefix (node outputs are named `${prefix}_${n}`). */
  fresh(prefix: string): string {
    let name: string;
    do name = `${prefix}_${this.counter++}`;
    while (this.names.has(name));
    this.names.add(name);
    return name;
  }

  private claim(name: string): string {
    if (this.names.has(name)) throw new Error(`ONNX value name "${name}" used twice`);
    this.names.add(name);
    return name;
  }

  input(name: string, elemType: DTypeCode, dims: Dim[]): string {
    this.inputs.push(valueInfo(this.claim(name), elemType, dims));
    return name;
  }

  /** Declares `value` as a graph output under `name` (an Identity renames it when needed). */
  output(name: string, value: string, elemType: DTypeCode, dims: Dim[]): void {
    if (value !== name) this.node('Identity', [value], { outputs: [name] });
    this.outputs.push(valueInfo(name, elemType, dims));
  }

  /** A float32 initializer (a weight). */
  weight(name: string, dims: number[], data: Float32Array): string {
    const n = dims.reduce((a, b) => a * b, 1);
    if (n !== data.length) throw new Error(`initializer "${name}": dims [${dims}] need ${n} values, got ${data.length}`);
    this.initializers.push(floatTensor(this.claim(name), dims, data));
    return name;
  }

  /** A small float32 constant; a scalar when `dims` is []. */
  constFloat(prefix: string, values: number[], dims: number[] = values.length === 1 ? [] : [values.length]): string {
    const name = this.fresh(prefix);
    this.initializers.push(floatTensor(name, dims, new Float32Array(values)));
    return name;
  }

  /** A small int64 constant; a scalar when `dims` is []. */
  constInt(prefix: string, values: number[], dims: number[] = [values.length]): string {
    const name = this.fresh(prefix);
    this.initializers.push(int64Tensor(name, dims, values));
    return name;
  }

  /**
   * Appends one node and returns its first output's name. `outputs` may name the outputs (for graph outputs
   * such as `present.0.key`); `count` asks for several fresh outputs (see nodeMulti).
   */
  node(op: string, inputs: string[], opts: { attrs?: Record<string, AttrValue>; outputs?: string[]; name?: string } = {}): string {
    return this.nodeMulti(op, inputs, { ...opts, count: opts.outputs?.length ?? 1 })[0];
  }

  nodeMulti(op: string, inputs: string[], opts: { attrs?: Record<string, AttrValue>; outputs?: string[]; count: number; name?: string }): string[] {
    const outs = opts.outputs ? opts.outputs.map((o) => this.claim(o)) : Array.from({ length: opts.count }, () => this.fresh(opts.name ?? op));
    this.nodes.push({
      opType: op,
      name: this.fresh(`${opts.name ?? op}_node`),
      input: inputs,
      output: outs,
      attribute: Object.entries(opts.attrs ?? {}).map(([k, v]) => attribute(k, v)),
    });
    return outs;
  }

  /** Encodes the model with opset 17, IR 8 and the given metadata_props. */
  toBytes(opts: { producerVersion: string; docString?: string; metadata: Record<string, string> }): Uint8Array {
    const model: P.IModelProto = {
      irVersion: IR_VERSION,
      opsetImport: [{ domain: '', version: OPSET }],
      producerName: 'prefloop',
      producerVersion: opts.producerVersion,
      docString: opts.docString ?? '',
      graph: {
        name: this.graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
      metadataProps: Object.entries(opts.metadata).map(([key, value]) => ({ key, value })),
    };
    return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
  }
}
