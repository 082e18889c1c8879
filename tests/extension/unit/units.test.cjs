// Per-token answers mapped onto a view's units (shared/units.ts), checked against the recorded real
// attention/view units (fixtures/minilm-analysis.json).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { units: U } = require('./lib.cjs');

const fixture = JSON.parse(fs.readFileSync(path.join(__dirname, '../fixtures/minilm-analysis.json'), 'utf8'));
const { rpcKey } = require('../fixtures/record-fixture.cjs');
const view = (flags) => fixture.rpc[rpcKey('attention/view', { layer: 0, head: 0, ...flags })];
const unit = (firstToken, lastToken, special = false) => ({ text: 'x', start: 0, end: 0, firstToken, lastToken, special });

test('sumPerUnit adds each unit\'s pieces; hidden tokens are left out', () => {
  assert.deepEqual(U.sumPerUnit([1, 2, 3, 4, 5], [unit(1, 1), unit(2, 3)]), [2, 7]);
  assert.deepEqual(U.sumPerUnit([1, 2], []), []);
});

test('unitCommunities: a unit takes its first token\'s community and mixed units are counted', () => {
  const r = U.unitCommunities([unit(0, 0), unit(1, 2), unit(3, 4)], [0, 1, 1, 2, 0]);
  assert.deepEqual(r.communities, [0, 1, 2]);
  assert.equal(r.mixed, 1);
});

test('unitOfToken: the unit holding a token, -1 for a hidden one', () => {
  const v = view({ hideSpecial: true, wordLevel: true });
  const n = fixture.analysis.tokens.length;
  assert.equal(U.unitOfToken(v.units, 0), -1, '[CLS] is hidden');
  assert.equal(U.unitOfToken(v.units, n - 1), -1, '[SEP] is hidden');
  const merged = v.units.findIndex((u) => u.lastToken > u.firstToken);
  assert.ok(merged >= 0);
  assert.equal(U.unitOfToken(v.units, v.units[merged].lastToken), merged);
});

test('flowForView on the recorded flow: identity units keep it, words sum pieces, hidden specials renormalise', () => {
  const n = fixture.analysis.tokens.length;
  const f = fixture.rpc[rpcKey('attention/flow', { token: 4 })].flow;
  const identity = Array.from({ length: n }, (_, i) => unit(i, i));
  const same = U.flowForView(f, identity);
  assert.deepEqual(same.values, f);
  assert.equal(same.hidden, 0);
  const words = U.flowForView(f, view({ wordLevel: true }).units);
  assert.equal(words.hidden, 0);
  assert.ok(Math.abs(words.values.reduce((a, b) => a + b, 0) - 1) < 1e-9);
  const both = view({ hideSpecial: true, wordLevel: true }).units;
  const h = U.flowForView(f, both);
  const specials = f[0] + f[n - 1];
  assert.ok(Math.abs(h.hidden - specials) < 1e-12, `hidden share ${h.hidden} vs ${specials}`);
  both.forEach((u, k) => {
    let s = 0; for (let t = u.firstToken; t <= u.lastToken; t++) s += f[t];
    assert.ok(Math.abs(h.values[k] - s / (1 - specials)) < 1e-12);
  });
});

test('partialFlowForView: exact sums where every piece was computed, null otherwise, upper bounds summed', () => {
  const f = fixture.rpc[rpcKey('attention/flow', { token: 4 })];
  const words = view({ wordLevel: true }).units;
  const merged = words.findIndex((u) => u.lastToken > u.firstToken);
  assert.ok(merged >= 0, 'the fixture has a word of several pieces');
  // The budget ran out before the merged word's last piece: that word has no value; a single-piece word keeps its own.
  const raw = f.raw.map((v, t) => (t === words[merged].lastToken ? null : v));
  const p = U.partialFlowForView(raw, f.upperBound, words);
  assert.equal(p.values[merged], null);
  words.forEach((u, k) => {
    let bound = 0, exact = 0;
    for (let t = u.firstToken; t <= u.lastToken; t++) { bound += f.upperBound[t]; exact += f.raw[t]; }
    assert.ok(Math.abs(p.upper[k] - bound) < 1e-12);
    if (k !== merged) assert.ok(Math.abs(p.values[k] - exact) < 1e-12, `word ${k}`);
  });
});
