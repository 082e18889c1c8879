// The TypeScript side of the protocol is generated from the C# records (extension/src/shared/generated;
// Backend.Tests fails when it is stale). Here: the client's method table is the generated map, and the
// responses recorded from the REAL backend (fixtures/minilm-analysis.json, recorded by
// fixtures/record-fixture.cjs) type-check against the generated types.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { protocol, matrix } = require('./lib.cjs');
const { typecheck } = require('../fixtures/typecheck.cjs');
const { rpcMethod } = require('../fixtures/record-fixture.cjs');
const fakeAnswers = require('../fake/answers.cjs');

const fixturePath = path.join(__dirname, '../fixtures/minilm-analysis.json');
const fixture = JSON.parse(fs.readFileSync(fixturePath, 'utf8'));
const keys = (o) => Object.keys(o).sort();

test('the client\'s method table is the generated RequestMap and NotificationMap; the error codes include the backend\'s', () => {
  const protocolModule = path.resolve(__dirname, '../../../extension/src/shared/protocol');
  const errors = typecheck(`
import { Methods, ANALYSIS_METHODS, type NotificationMap } from ${JSON.stringify(protocolModule)};
type Equal<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Method = keyof RequestMap | keyof NotificationMap;
export const everyMethodHasAKey: Equal<(typeof Methods)[keyof typeof Methods], Method> = true;
export const exitIsANotification: Equal<keyof NotificationMap, 'exit'> = true;
export const notificationsAreNoRequests: Equal<keyof NotificationMap & keyof RequestMap, never> = true;
export const analysisMethodsAreMethods: (typeof ANALYSIS_METHODS)[number] extends keyof RequestMap ? true : false = true;
`);
  assert.deepEqual(errors, []);
  assert.ok(protocol.ANALYSIS_METHODS.includes('attention/flow'), 'the panel may ask for attention flow');
  assert.equal(protocol.Methods.exportAttention, 'attention/export');
  const codes = protocol.ErrorCodes;
  assert.deepEqual([codes.InvalidParams, codes.MethodNotFound, codes.RequestCanceled], [-32602, -32601, -32800]);
  assert.deepEqual([codes.ModelLoadFailed, codes.ModelFileInvalid, codes.InternalError], [-32001, -32002, -32003]);
});

test('the recorded real responses type-check against the generated types (no field more, none missing)', () => {
  const json = (v) => JSON.stringify(v);
  const rpc = Object.entries(fixture.rpc).map(([key, result]) => {
    const { method, params } = rpcMethod(key);
    const withId = { analysisId: fixture.analysis.analysisId, ...params };
    return `  { method: ${json(method)}, params: ${json(withId)}, result: ${json(result)} },`;
  });
  const errors = typecheck(`
export const initialize = ${json(fixture.initialize)} satisfies Result<'initialize'>;
export const models = ${json(fixture.models)} satisfies Result<'models/list'>;
export const analysis = ${json(fixture.analysis)} satisfies Result<'attention/analyze'>;
export const matrices = ${json(fixture.matrices)} satisfies Record<string, Result<'attention/matrix'>>;
export const row = ${json(fixture.row)} satisfies Result<'attention/row'>;
export const rpc = [
${rpc.join('\n')}
] satisfies Recording[];
`);
  assert.deepEqual(errors, []);
  // The check has teeth: a field the types do not declare fails.
  const extra = typecheck(`export const r = ${json({ ...fixture.row, extra: 1 })} satisfies Result<'attention/row'>;`);
  assert.match(extra.join('\n'), /extra\W* does not exist in type 'RowDto'/);
});

test('the fake backend\'s answers, recorded from the real backend, type-check against the generated types', () => {
  const { recordedWith, answers } = JSON.parse(fs.readFileSync(fakeAnswers.file, 'utf8'));
  assert.match(recordedWith, /real model/);
  const methods = new Set(Object.values(protocol.Methods));
  const typed = answers.filter((a) => methods.has(a.method));
  const unknown = answers.filter((a) => !methods.has(a.method));
  assert.deepEqual(unknown.map((a) => [a.method, a.error?.code]), [['no/such', -32601]]);
  assert.deepEqual(typecheck(`export const answers = ${JSON.stringify(typed)} satisfies Recording[];`), []);
  assert.equal(typed.find((a) => a.method === protocol.Methods.initialize).result.protocolVersion, '1.0');
});

test('recorded responses carry exactly the fields the client reads', () => {
  assert.match(fixture.recordedWith, /real model/);
  assert.deepEqual(keys(fixture.initialize), ['defaultModel', 'protocolVersion', 'serverVersion']);
  for (const m of fixture.models) for (const k of ['id', 'name', 'architecture', 'layers', 'heads', 'source']) assert.ok(k in m, k);
  const a = fixture.analysis;
  for (const k of ['analysisId', 'model', 'tokens', 'truncated', 'elapsedMs', 'memoryBytes', 'window']) assert.ok(k in a, k);
  assert.equal(a.window, 512, "MiniLM's window");
  assert.ok(a.memoryBytes >= a.model.layers * a.model.heads * a.tokens.length ** 2 * 4, 'it stores the probabilities');
  assert.deepEqual(keys(a.model), ['architecture', 'causal', 'heads', 'id', 'layers']);
  for (const t of a.tokens) {
    assert.deepEqual(keys(t), ['continuation', 'display', 'end', 'id', 'leadingSpace', 'special', 'start', 'text', 'typeId']);
  }
  const n = a.tokens.length;
  for (const m of Object.values(fixture.matrices)) {
    assert.deepEqual(keys(m), ['colRange', 'cols', 'data', 'head', 'layer', 'poolFactor', 'pooled', 'rowRange', 'rows']);
    assert.deepEqual([m.rowRange, m.colRange], [[0, n], [0, n]], 'the whole matrix was asked for');
  }
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

test('recorded analysis responses (metrics, modularity, view, rollout, histogram) carry the fields protocol.ts declares', () => {
  const r = fixture.rpc;
  const { layers, heads } = fixture.analysis.model;
  const n = fixture.analysis.tokens.length;
  const metrics = r['attention/metrics {}'];
  assert.deepEqual(keys(metrics), ['causal', 'elapsedMs', 'heads', 'layers', 'metrics', 'sinkThreshold']);
  assert.equal(metrics.metrics.length, layers * heads);
  for (const m of metrics.metrics) {
    for (const k of ['layer', 'head', 'sink', ...protocol.METRIC_NAMES]) assert.ok(k in m, k);
  }
  assert.deepEqual(keys(r['attention/modularity {"head":0,"layer":0}']), ['communities', 'communityCount', 'head', 'includeSelfLoops', 'layer', 'q']);
  assert.equal(r['attention/modularity {"head":0,"layer":0}'].communities.length, n);
  assert.deepEqual(keys(r['attention/modularityAll {}']), ['elapsedMs', 'heads', 'includeSelfLoops']);
  const view = r['attention/view {"head":0,"hideSpecial":true,"layer":0}'];
  assert.deepEqual(keys(view), ['colRange', 'cols', 'data', 'head', 'layer', 'poolFactor', 'pooled', 'pooling', 'rowRange', 'rows', 'units']);
  assert.equal(view.rows, n - 2, 'hideSpecial drops [CLS] and [SEP]');
  assert.deepEqual([view.rowRange, view.colRange, view.pooling], [[0, n - 2], [0, n - 2], 'max']);
  for (const u of view.units) {
    assert.deepEqual(keys(u), ['display', 'end', 'firstToken', 'lastToken', 'special', 'start', 'text']);
  }
  const rollout = r['attention/rollout {}'];
  assert.equal(rollout.head, -1);
  assert.equal(rollout.layer, layers - 1);
  // One token's rollout row equals that row of the whole rollout (both recorded from the real backend).
  const last = r[`attention/rolloutRow {"token":${n - 1}}`];
  assert.deepEqual(keys(last), ['complete', 'elapsedMs', 'layer', 'partial', 'reachedLayer', 'scores', 'token']);
  assert.deepEqual([last.complete, last.layer, last.reachedLayer, last.scores.length], [true, layers - 1, 0, n]);
  const whole = new Float32Array(Uint8Array.from(Buffer.from(rollout.data, 'base64')).buffer);
  for (let j = 0; j < n; j++) assert.ok(Math.abs(last.scores[j] - whole[(n - 1) * n + j]) < 1e-5, `rollout row ${n - 1}, input ${j}`);
  const h = r['attention/histogram {"bins":20,"head":0,"layer":0}'];
  assert.deepEqual(keys(h), ['counts', 'edges', 'max', 'min', 'total']);
  assert.equal(h.counts.length, 20);
  assert.equal(h.total, n * n);
  for (const name of protocol.ANALYSIS_METHODS) assert.ok(Object.keys(r).some((k) => k.startsWith(name + ' ')), name);
});

test('recorded attention/flow answers: the FlowResult fields, one value per token, flow = raw normalised', () => {
  const n = fixture.analysis.tokens.length;
  const flows = Object.entries(fixture.rpc).filter(([k]) => k.startsWith('attention/flow '));
  assert.equal(flows.length, n, 'one flow per token recorded');
  for (const [, f] of flows) {
    assert.deepEqual(keys(f), ['complete', 'elapsedMs', 'flow', 'layer', 'raw', 'token', 'upperBound']);
    assert.equal(f.complete, true, 'a short text finishes within the default budget');
    f.raw.forEach((r, j) => assert.ok(r <= f.upperBound[j] + 1e-12, `raw ≤ upperBound at ${j}`));
    assert.equal(f.layer, fixture.analysis.model.layers - 1, 'layer omitted = the last');
    assert.equal(f.flow.length, n); assert.equal(f.raw.length, n);
    const sum = f.raw.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(f.flow.reduce((a, b) => a + b, 0) - 1) < 1e-9);
    f.raw.forEach((r, j) => assert.ok(Math.abs(r / sum - f.flow[j]) < 1e-9));
  }
});
