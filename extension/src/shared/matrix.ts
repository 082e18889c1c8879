// Attention matrices on the client: the host decodes the backend's base64 here, once; the webview
// scales colours by the largest value. Layout, documented once: one head's matrix is [query, key],
// row-major: value (i, j) = how much query token i attends to key token j; each row sums to 1
// (before pooling). Causal models have zeros above the diagonal (j > i).

const littleEndianHost = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Decodes base64 to bytes, in Node (Buffer) or a browser (atob). */
function base64ToBytes(b64: string): Uint8Array {
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

export function maxValue(data: Float32Array): number {
  let m = 0;
  for (let i = 0; i < data.length; i++) if (data[i]! > m) m = data[i]!;
  return m;
}
