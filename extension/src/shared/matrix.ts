// Attention matrices on the client. Layout, documented once: one head's matrix is [query, key],
// row-major: value (i, j) = how much query token i attends to key token j; each row sums to 1
// (before pooling). Causal models have zeros above the diagonal (j > i).

export interface Matrix {
  rows: number;
  cols: number;
  layer: number;
  head: number;
  pooled: boolean;
  /** Tokens per pooled cell along each axis (1 when not pooled). */
  poolFactor: number;
  data: Float32Array;
}

const littleEndianHost = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Decodes base64 to bytes, in Node (Buffer) or a browser (atob). */
export function base64ToBytes(b64: string): Uint8Array {
  const B = (globalThis as { Buffer?: { from(s: string, enc: string): Uint8Array } }).Buffer;
  if (B) {
    const buf = B.from(b64, 'base64');
    // Copy into a fresh, aligned ArrayBuffer (Buffer slices share a pool at odd offsets).
    const out = new Uint8Array(buf.length);
    out.set(buf);
    return out;
  }
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Base64 of little-endian float32 values → Float32Array of `expected` values (throws on a length mismatch). */
export function decodeFloat32(b64: string, expected?: number): Float32Array {
  const bytes = base64ToBytes(b64);
  if (bytes.length % 4 !== 0) throw new Error(`matrix data has ${bytes.length} bytes, not a multiple of 4`);
  const n = bytes.length / 4;
  if (expected !== undefined && n !== expected) throw new Error(`matrix data has ${n} values, expected ${expected}`);
  if (littleEndianHost) return new Float32Array(bytes.buffer, bytes.byteOffset, n);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

/** Max-pools an n×m matrix into blocks of `factor`×`factor` (the last block may be smaller). */
export function maxPool(data: Float32Array, rows: number, cols: number, factor: number): { rows: number; cols: number; data: Float32Array } {
  if (factor <= 1) return { rows, cols, data };
  const pr = Math.ceil(rows / factor), pc = Math.ceil(cols / factor);
  const out = new Float32Array(pr * pc);
  for (let i = 0; i < rows; i++) {
    const oi = Math.floor(i / factor) * pc;
    for (let j = 0; j < cols; j++) {
      const v = data[i * cols + j]!;
      const o = oi + Math.floor(j / factor);
      if (v > out[o]!) out[o] = v;
    }
  }
  return { rows: pr, cols: pc, data: out };
}

/** The pool factor that brings n tokens to at most maxSize cells per axis. */
export function poolFactorFor(n: number, maxSize: number): number {
  return n <= maxSize ? 1 : Math.ceil(n / maxSize);
}

/** Token index range [first, last] covered by pooled cell index `cell`. */
export function cellTokens(cell: number, poolFactor: number, tokenCount: number): [number, number] {
  const first = cell * poolFactor;
  return [first, Math.min(tokenCount - 1, first + poolFactor - 1)];
}

export function maxValue(data: Float32Array): number {
  let m = 0;
  for (let i = 0; i < data.length; i++) if (data[i]! > m) m = data[i]!;
  return m;
}

export function value(m: Matrix, row: number, col: number): number {
  return m.data[row * m.cols + col]!;
}

/** Indices of the k largest scores, best first; ties keep the lower index first. `exclude` drops indices. */
export function topK(scores: ArrayLike<number>, k: number, exclude?: (i: number) => boolean): { token: number; score: number }[] {
  const idx: number[] = [];
  for (let i = 0; i < scores.length; i++) if (!exclude || !exclude(i)) idx.push(i);
  idx.sort((a, b) => (scores[b]! - scores[a]!) || (a - b));
  return idx.slice(0, Math.max(0, k)).map((token) => ({ token, score: scores[token]! }));
}
