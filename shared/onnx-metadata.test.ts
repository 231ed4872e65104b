import onnxProto from 'onnx-proto';
import { describe, expect, it } from 'vitest';
import { readOnnxMetadataProps, readPrefloopMetadata } from './onnx-metadata';

const { onnx } = onnxProto;

function model(props: Record<string, string>, withGraph = true): Uint8Array {
  return onnx.ModelProto.encode(
    onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'test',
      opsetImport: [{ domain: '', version: 17 }],
      // A graph with a large raw initializer before and after which the scanner must skip correctly.
      graph: withGraph
        ? { name: 'g', initializer: [{ name: 'w', dims: [300], dataType: 1, rawData: new Uint8Array(1200).fill(7) }] }
        : undefined,
      metadataProps: Object.entries(props).map(([key, value]) => ({ key, value })),
      docString: 'ünïcode after the metadata',
    }),
  ).finish();
}

describe('readOnnxMetadataProps', () => {
  it('agrees with a full protobuf decode', () => {
    const props = { 'prefloop.kind': 'policy', note: 'ü ✓ 😀', empty: '' };
    const bytes = model(props);
    const decoded = onnx.ModelProto.decode(bytes).metadataProps.map((p) => [p.key, p.value]);
    expect(Object.fromEntries(decoded)).toEqual(props);
    expect(readOnnxMetadataProps(bytes)).toEqual(props);
    expect(readOnnxMetadataProps(model({}, false))).toEqual({});
  });

  it('validates the prefloop keys and refuses truncated files', () => {
    const config = { vocabSize: 10, contextLength: 8, nLayer: 1, nHead: 1, dModel: 4, mlpRatio: 4, layerNormEps: 1e-5 };
    const good = model({ 'prefloop.kind': 'reward', 'prefloop.config': JSON.stringify(config), 'prefloop.tokenizer_sha256': 'ab', 'prefloop.version': 'v1' });
    expect(readPrefloopMetadata(good)).toEqual({ kind: 'reward', config, tokenizerSha256: 'ab', version: 'v1' });
    expect(() => readPrefloopMetadata(model({ 'prefloop.kind': 'other' }))).toThrow(/prefloop.kind/);
    expect(() => readPrefloopMetadata(model({ 'prefloop.kind': 'policy', 'prefloop.config': JSON.stringify({ ...config, extra: 1 }), 'prefloop.tokenizer_sha256': 'a', 'prefloop.version': 'v' }))).toThrow();
    expect(() => readOnnxMetadataProps(good.subarray(0, good.length - 3))).toThrow(/truncated/);
  });
});
