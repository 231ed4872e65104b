import { describe, expect, it } from 'vitest';
import { readSafetensors, writeSafetensors, type SafeTensors } from './safetensors';

function randomTensors(): SafeTensors {
  const mk = (shape: number[]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = (Math.random() - 0.5) * 10 ** ((i % 7) - 3);
    return { dtype: 'F32' as const, shape, data };
  };
  return {
    'wte.weight': mk([7, 5]),
    'h.0.attn.c_attn.weight': mk([5, 15]),
    'v_head.bias': mk([1]),
    'ln_f.weight': mk([5]),
    empty: mk([0, 3]),
  };
}

describe('safetensors', () => {
  it('round-trips bit-exactly, including special floats and metadata', () => {
    const tensors = randomTensors();
    const special = tensors['wte.weight'].data;
    special[0] = NaN;
    special[1] = -0;
    special[2] = Infinity;
    special[3] = 1.4e-45; // subnormal
    const meta = { format: 'pt', note: 'ünïcode ✓' };
    const bytes = writeSafetensors(tensors, meta);
    const back = readSafetensors(bytes);
    expect(back.metadata).toEqual(meta);
    expect(Object.keys(back.tensors).sort()).toEqual(Object.keys(tensors).sort());
    for (const [name, t] of Object.entries(tensors)) {
      const b = back.tensors[name];
      expect(b.shape).toEqual(t.shape);
      expect(b.dtype).toBe('F32');
      // Compare raw bits so NaN and -0 count.
      expect(new Uint32Array(b.data.buffer)).toEqual(new Uint32Array(t.data.buffer));
    }
    // Writing what we read gives the same bytes (deterministic).
    expect(writeSafetensors(back.tensors, back.metadata)).toEqual(bytes);
  });

  it('writes the documented layout: u64 LE header length, 8-byte aligned data, sorted names', () => {
    const tensors = randomTensors();
    tensors['v_head.bias'].data[0] = 0.375;
    const bytes = writeSafetensors(tensors);
    const view = new DataView(bytes.buffer);
    const n = Number(view.getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const headerText = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    const header = JSON.parse(headerText);
    expect(header.__metadata__).toBeUndefined();
    const names = Object.keys(header);
    expect(names).toEqual([...names].sort());
    let expectedBegin = 0;
    for (const name of names) {
      const [b, e] = header[name].data_offsets;
      expect(b).toBe(expectedBegin);
      expectedBegin = e;
    }
    expect(bytes.length).toBe(8 + n + expectedBegin);
    // Value check straight from the bytes, independent of the reader.
    const { data_offsets } = header['v_head.bias'];
    expect(view.getFloat32(8 + n + data_offsets[0], true)).toBe(0.375);
  });

  it('reads a file written by another implementation (unsorted, unpadded header, unaligned source buffer)', () => {
    const header = JSON.stringify({
      b: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      __metadata__: { format: 'pt' },
      a: { dtype: 'F32', shape: [1, 1], data_offsets: [8, 12] },
    });
    const hb = new TextEncoder().encode(header);
    const buf = new Uint8Array(1 + 8 + hb.length + 12); // leading byte makes the slice unaligned
    const view = new DataView(buf.buffer, 1);
    view.setBigUint64(0, BigInt(hb.length), true);
    buf.set(hb, 9);
    view.setFloat32(8 + hb.length, 1.5, true);
    view.setFloat32(8 + hb.length + 4, -2.25, true);
    view.setFloat32(8 + hb.length + 8, 3.125, true);
    const back = readSafetensors(buf.subarray(1));
    expect(Array.from(back.tensors.b.data)).toEqual([1.5, -2.25]);
    expect(Array.from(back.tensors.a.data)).toEqual([3.125]);
    expect(back.tensors.a.shape).toEqual([1, 1]);
    expect(back.metadata).toEqual({ format: 'pt' });
  });

  it('refuses malformed input', () => {
    const good = writeSafetensors({ x: { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) } });
    expect(() => readSafetensors(good.subarray(0, 5))).toThrow(/shorter/);
    expect(() => readSafetensors(good.subarray(0, good.length - 4))).toThrow(/offsets/);
    const huge = good.slice();
    new DataView(huge.buffer).setBigUint64(0, 1n << 40n, true);
    expect(() => readSafetensors(huge)).toThrow(/exceeds/);
    const f16 = new TextEncoder().encode(JSON.stringify({ x: { dtype: 'F16', shape: [1], data_offsets: [0, 2] } }));
    const f16file = new Uint8Array(8 + f16.length + 2);
    new DataView(f16file.buffer).setBigUint64(0, BigInt(f16.length), true);
    f16file.set(f16, 8);
    expect(() => readSafetensors(f16file)).toThrow(/F16/);
    expect(() => writeSafetensors({ x: { dtype: 'F32', shape: [3], data: new Float32Array(2) } })).toThrow(/elements/);
  });
});
