// The TypeScript side of the protocol must not drift from the backend: compare the client's field
// lists with responses recorded from the REAL backend (fixtures/minilm-analysis.json, recorded by
// fixtures/record-fixture.cjs).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { protocol, matrix } = require('./lib.cjs');

const fixture = JSON.parse(fs.readFileSync(path.join(__dirname, '../fixtures/minilm-analysis.json'), 'utf8'));
const keys = (o) => Object.keys(o).sort();

test('method names', () => {
  assert.deepEqual(Object.values(protocol.Methods).sort(),
    ['attention/analyze', 'attention/matrix', 'attention/row', 'exit', 'initialize', 'models/list', 'shutdown']);
  assert.equal(protocol.ErrorCodes.InvalidParams, -32602);
  assert.equal(protocol.ErrorCodes.RequestCancelled, -32800);
});

test('recorded responses carry exactly the fields the client reads', () => {
  assert.match(fixture.recordedWith, /real model/);
  assert.deepEqual(keys(fixture.initialize), ['defaultModel', 'protocolVersion', 'serverVersion']);
  for (const m of fixture.models) for (const k of ['id', 'name', 'architecture', 'layers', 'heads', 'source']) assert.ok(k in m, k);
  const a = fixture.analysis;
  for (const k of ['analysisId', 'model', 'tokens', 'truncated', 'elapsedMs']) assert.ok(k in a, k);
  assert.deepEqual(keys(a.model), ['architecture', 'causal', 'heads', 'id', 'layers']);
  for (const t of a.tokens) assert.deepEqual(keys(t), ['end', 'id', 'special', 'start', 'text', 'typeId']);
  for (const m of Object.values(fixture.matrices)) assert.deepEqual(keys(m), ['cols', 'data', 'head', 'layer', 'poolFactor', 'pooled', 'rows']);
  assert.deepEqual(keys(fixture.row), ['scores', 'top']);
});

test('recorded real attention: offsets index the text, rows sum to 1, the row answer matches the matrix', () => {
  const { text, analysis } = fixture;
  for (const t of analysis.tokens) {
    if (t.special) { assert.deepEqual([t.start, t.end], [0, 0]); continue; }
    assert.equal(text.slice(t.start, t.end).toLowerCase(), t.text.replace(/^##/, ''));
  }
  const n = analysis.tokens.length;
  const m = fixture.matrices['0/0'];
  assert.equal(m.rows, n);
  const d = matrix.decodeFloat32(m.data, n * n);
  for (let i = 0; i < n; i++) {
    let s = 0; for (let j = 0; j < n; j++) s += d[i * n + j];
    assert.ok(Math.abs(s - 1) < 1e-4, `row ${i}: ${s}`);
  }
  // fixture.row is layer 0, head 0, token 1, from.
  fixture.row.scores.forEach((v, j) => assert.ok(Math.abs(v - d[n + j]) < 1e-6));
  assert.deepEqual(fixture.row.top.map((t) => t.token), matrix.topK(fixture.row.scores, 5).map((t) => t.token));
  // mean of heads equals the mean of the 12 head matrices
  const mean = matrix.decodeFloat32(fixture.matrices['0/-1'].data, n * n);
  const heads = analysis.model.heads;
  for (const k of [0, 5, n * n - 1]) {
    let s = 0; for (let h = 0; h < heads; h++) s += matrix.decodeFloat32(fixture.matrices[`0/${h}`].data)[k];
    assert.ok(Math.abs(s / heads - mean[k]) < 1e-5);
  }
  // client-side max-pooling of a real matrix, as the backend pools thumbnails
  const pooled = matrix.maxPool(d, n, n, 4);
  assert.equal(pooled.rows, Math.ceil(n / 4));
});
