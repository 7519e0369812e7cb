/**
 * The safetensors format, read and written directly: an 8-byte little-endian header length, a JSON header
 * {name: {dtype, shape, data_offsets}}, then the raw little-endian tensor bytes. gp saves its own weights this way,
 * and Hugging Face checkpoints arrive this way.
 */
import { readFileSync } from 'node:fs';
import { GpError } from '../errors.js';
import { writeFileAtomic } from '../io.js';

export interface NamedArray {
  shape: number[];
  data: Float32Array | Int32Array;
}

const DTYPE_OF = { float32: 'F32', int32: 'I32' } as const;

export function encodeSafetensors(tensors: Map<string, NamedArray>, metadata: Record<string, string> = {}): Buffer {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  const names = [...tensors.keys()].sort();
  for (const name of names) {
    const t = tensors.get(name)!;
    const dtype = t.data instanceof Float32Array ? DTYPE_OF.float32 : DTYPE_OF.int32;
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  // Pad the header with spaces to a multiple of 8 so tensor data stays aligned for readers that map it directly.
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + headerBytes.length + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, 8);
  let at = 8 + headerBytes.length;
  for (const name of names) {
    const { data } = tensors.get(name)!;
    Buffer.from(data.buffer, data.byteOffset, data.byteLength).copy(out, at);
    at += data.byteLength;
  }
  return out;
}

export function writeSafetensors(file: string, tensors: Map<string, NamedArray>, metadata?: Record<string, string>): void {
  writeFileAtomic(file, encodeSafetensors(tensors, metadata));
}

function bf16ToF32(src: Uint8Array): Float32Array {
  const out = new Uint32Array(src.byteLength / 2);
  const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = view.getUint16(2 * i, true) << 16;
  return new Float32Array(out.buffer);
}

function f16ToF32(src: Uint8Array): Float32Array {
  const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
  const out = new Float32Array(src.byteLength / 2);
  for (let i = 0; i < out.length; i++) {
    const h = view.getUint16(2 * i, true);
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    out[i] =
      exp === 0 ? sign * 2 ** -14 * (frac / 1024) : exp === 31 ? (frac ? NaN : sign * Infinity) : sign * 2 ** (exp - 15) * (1 + frac / 1024);
  }
  return out;
}

interface TensorEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

const BYTES_PER_VALUE: Record<string, number | undefined> = { F32: 4, F16: 2, BF16: 2, I32: 4, I64: 8 };

/** A header entry that would make the reader index outside the data or build a typed array of the wrong size. */
function entryProblem(entry: unknown): string | null {
  if (typeof entry !== 'object' || entry === null) return 'entry is not an object';
  const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
  if (typeof dtype !== 'string') return 'no dtype';
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) return `shape ${JSON.stringify(shape)} is not a list of sizes`;
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isInteger(o) && o >= 0) || offsets[0] > offsets[1]) {
    return `data_offsets ${JSON.stringify(offsets)} is not a [start, end] pair`;
  }
  return null;
}

/** Parse a safetensors file; F16 and BF16 are widened to float32, I64 narrowed to int32. */
export function readSafetensors(file: string): { tensors: Map<string, NamedArray>; metadata: Record<string, string> } {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new GpError(`${file}: cannot read weights: ${(err as Error).message}`);
  }
  const fail = (problem: string): never => {
    throw new GpError(`${file}: not a valid safetensors file: ${problem}`);
  };
  if (bytes.length < 8) fail('shorter than its 8-byte header length');
  const headerLength = Number(bytes.readBigUInt64LE(0));
  if (8 + headerLength > bytes.length) fail(`header length ${headerLength} runs past the end of the file (${bytes.length} bytes)`);
  let header: unknown;
  try {
    header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
  } catch (err) {
    return fail(`header is not JSON (${(err as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) return fail('header is not a JSON object');
  const base = 8 + headerLength;
  const tensors = new Map<string, NamedArray>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = entry as Record<string, string>;
      continue;
    }
    const problem = entryProblem(entry);
    if (problem) return fail(`tensor ${name}: ${problem}`);
    const { dtype, shape, data_offsets } = entry as TensorEntry;
    const [start, end] = data_offsets;
    if (base + end > bytes.length) fail(`tensor ${name} lies outside the file (truncated?)`);
    const count = shape.reduce((a, b) => a * b, 1);
    const width = BYTES_PER_VALUE[dtype];
    if (width !== undefined && end - start !== count * width) fail(`tensor ${name} has ${end - start} bytes for shape [${shape}] of ${dtype}`);
    // Copy so the typed array is aligned and independent of the file buffer.
    const raw = new Uint8Array(bytes.subarray(base + start, base + end));
    let data: Float32Array | Int32Array;
    if (dtype === 'F32') data = new Float32Array(raw.buffer);
    else if (dtype === 'F16') data = f16ToF32(raw);
    else if (dtype === 'BF16') data = bf16ToF32(raw);
    else if (dtype === 'I32') data = new Int32Array(raw.buffer);
    else if (dtype === 'I64') data = Int32Array.from(new BigInt64Array(raw.buffer), (v) => Number(v));
    else return fail(`tensor ${name} has unsupported dtype ${dtype}`);
    tensors.set(name, { shape, data });
  }
  return { tensors, metadata };
}
