const test = require('node:test');
const assert = require('node:assert/strict');
const { matrix } = require('./lib.cjs');

test('decodeFloat32 reads little-endian float32 from base64', () => {
  // 1.0 = 00 00 80 3f, -2.5 = 00 00 20 c0, 0.1234 ≈ 0x3dfcb924 → 24 b9 fc 3d
  const b64 = Buffer.from([0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x20, 0xc0, 0x24, 0xb9, 0xfc, 0x3d]).toString('base64');
  const f = matrix.decodeFloat32(b64, 3);
  assert.ok(f instanceof Float32Array);
  assert.equal(f[0], 1);
  assert.equal(f[1], -2.5);
  assert.ok(Math.abs(f[2] - 0.1234) < 1e-7);
  assert.equal(f.byteOffset, 0, 'own, aligned buffer (transferable as a whole)');
  assert.throws(() => matrix.decodeFloat32(b64, 4), /3 values, expected 4/);
  assert.throws(() => matrix.decodeFloat32(Buffer.from([1, 2, 3]).toString('base64')), /multiple of 4/);
  assert.equal(matrix.decodeFloat32('').length, 0);
});

test('decodeFloat32 round-trips a large random matrix', () => {
  const n = 300, src = new Float32Array(n * n).map(() => Math.random());
  const out = matrix.decodeFloat32(Buffer.from(src.buffer).toString('base64'), n * n);
  assert.deepEqual(out, src);
});

test('base64ToBytes without Buffer (browser path, atob)', () => {
  const saved = globalThis.Buffer;
  const bytes = Buffer.from([0, 0, 0x80, 0x3f]).toString('base64');
  try {
    globalThis.Buffer = undefined;
    const f = matrix.decodeFloat32(bytes, 1);
    assert.equal(f[0], 1);
  } finally {
    globalThis.Buffer = saved;
  }
});

test('maxValue is the largest value', () => {
  assert.equal(matrix.maxValue(Float32Array.from([0.1, 0.4, 0.2, 0.4, 0.05])), Math.fround(0.4));
});
