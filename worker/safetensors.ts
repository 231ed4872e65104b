// The safetensors file format (https://github.com/huggingface/safetensors), written by hand because it is
// tiny and no dependency is needed:
//
//   [8 bytes]  N, the header length, unsigned little-endian 64-bit
//   [N bytes]  JSON header: { name: { dtype, shape, data_offsets: [begin, end] }, ..., "__metadata__"?: {str: str} }
//              padded with spaces so the data block starts on an 8-byte boundary
//   [rest]     the data block; offsets are relative to its start, tensors stored row-major, little-endian
//
// Tensors are written sorted by name, so the same weights always give the same bytes (checksums in the
// ONNX metadata and artifact stores stay stable). Only float32 is used by prefloop; any other dtype is refused
// on read rather than silently misread.

/** One tensor as stored: row-major float32 data of the given shape. */
export interface SafeTensor {
  dtype: 'F32';
  shape: number[];
  data: Float32Array;
}

export type SafeTensors = Record<string, SafeTensor>;

export interface SafetensorsFile {
  tensors: SafeTensors;
  /** The optional string-to-string `__metadata__` map (absent means empty). */
  metadata: Record<string, string>;
}

const METADATA_KEY = '__metadata__';
/** The Rust reference implementation refuses headers above 100 MB; so do we, before parsing. */
const MAX_HEADER_BYTES = 100_000_000;

function elementCount(shape: number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

/** Serialises `tensors` (sorted by name) and optional metadata into one safetensors file. */
export function writeSafetensors(tensors: SafeTensors, metadata?: Record<string, string>): Uint8Array {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new Error(`safetensors metadata value for "${k}" must be a string`);
    }
    header[METADATA_KEY] = metadata;
  }
  let offset = 0;
  for (const name of names) {
    if (name === METADATA_KEY) throw new Error(`"${METADATA_KEY}" is reserved and cannot name a tensor`);
    const t = tensors[name];
    if (t.dtype !== 'F32') throw new Error(`tensor "${name}": only F32 is supported, got ${String(t.dtype)}`);
    const shape = t.shape;
    if (!shape.every((d) => Number.isInteger(d) && d >= 0)) throw new Error(`tensor "${name}": bad shape [${shape}]`);
    if (elementCount(shape) !== t.data.length) {
      throw new Error(`tensor "${name}": shape [${shape}] holds ${elementCount(shape)} elements, data has ${t.data.length}`);
    }
    const bytes = t.data.length * 4;
    header[name] = { dtype: 'F32', shape: [...shape], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }

  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20); // spaces are valid trailing JSON whitespace
    p.set(json);
    json = p;
  }

  const out = new Uint8Array(8 + json.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  const dataStart = 8 + json.length;
  for (const name of names) {
    const t = tensors[name];
    const [begin] = (header[name] as { data_offsets: [number, number] }).data_offsets;
    // Float32Array uses the platform's byte order; every platform Node runs on is little-endian, but write
    // through DataView when it is not so the file is correct everywhere.
    if (LITTLE_ENDIAN) {
      out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), dataStart + begin);
    } else {
      for (let i = 0; i < t.data.length; i++) view.setFloat32(dataStart + begin + i * 4, t.data[i], true);
    }
  }
  return out;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Parses a safetensors file; validates offsets, shapes and dtypes, and copies data into fresh arrays. */
export function readSafetensors(bytes: Uint8Array): SafetensorsFile {
  if (bytes.length < 8) throw new Error('safetensors: file shorter than its 8-byte header length');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES) || Number(n) > bytes.length - 8) {
    throw new Error(`safetensors: header length ${n} exceeds the file (${bytes.length} bytes)`);
  }
  const headerLen = Number(n);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLen))) as Record<string, unknown>;
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw new Error('safetensors: header is not an object');
  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;

  const metadata: Record<string, string> = {};
  const tensors: SafeTensors = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === METADATA_KEY) {
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== 'string') throw new Error(`safetensors: metadata "${k}" is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (e.dtype !== 'F32') throw new Error(`safetensors: tensor "${name}" has dtype ${String(e.dtype)}; only F32 is supported`);
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new Error(`safetensors: tensor "${name}" has a bad shape`);
    }
    const offs = e.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isInteger(o))) {
      throw new Error(`safetensors: tensor "${name}" has bad data_offsets`);
    }
    const [begin, end] = offs as [number, number];
    const shape = e.shape as number[];
    if (begin < 0 || end < begin || end > dataLen || end - begin !== elementCount(shape) * 4) {
      throw new Error(`safetensors: tensor "${name}" offsets [${begin}, ${end}] do not match shape [${shape}] or the file`);
    }
    // Copy: the source may be an unaligned slice of a Buffer pool, and callers own their arrays.
    const data = new Float32Array(elementCount(shape));
    if (LITTLE_ENDIAN) {
      new Uint8Array(data.buffer).set(bytes.subarray(dataStart + begin, dataStart + end));
    } else {
      for (let i = 0; i < data.length; i++) data[i] = view.getFloat32(dataStart + begin + i * 4, true);
    }
    tensors[name] = { dtype: 'F32', shape: [...shape], data };
  }
  return { tensors, metadata };
}
