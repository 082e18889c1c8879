// The heatmap's zoom arithmetic (extension/src/webview/zoom.ts): viewports, what the panel asks for, what a drawn
// cell covers, and the request coalescing that keeps late answers for old viewports off the screen.
const test = require('node:test');
const assert = require('node:assert/strict');
const { zoom } = require('./lib.cjs');

const E = { rows: 8000, cols: 8000 };

test('clampSpan keeps the length and moves the window inside the matrix', () => {
  assert.deepEqual(zoom.clampSpan(-10, 100, 8000), [0, 100]);
  assert.deepEqual(zoom.clampSpan(7950, 100, 8000), [7900, 8000]);
  assert.deepEqual(zoom.clampSpan(10, 1, 8000), [10, 10 + zoom.MIN_SPAN], 'at least MIN_SPAN units');
  assert.deepEqual(zoom.clampSpan(0, 20, 3), [0, 3], 'never more than the matrix, even below MIN_SPAN');
  assert.deepEqual(zoom.clampSpan(5, 1e6, 8000), [0, 8000]);
});

test('zoomAt keeps the point under the pointer in place; zooming out fully gives the whole matrix', () => {
  const full = zoom.fullViewport(E);
  const v = zoom.zoomAt(full, E, 4, 2000, 6000);
  assert.deepEqual(v, { rows: [1500, 3500], cols: [4500, 6500] });
  // The point sits at the same fraction of the window before and after.
  const frac = (s, x) => (x - s[0]) / (s[1] - s[0]);
  assert.equal(frac(v.rows, 2000), frac(full.rows, 2000));
  assert.equal(frac(v.cols, 6000), frac(full.cols, 6000));
  const back = zoom.zoomAt(zoom.zoomAt(v, E, 1 / 4, 2000, 6000), E, 1 / 8, 0, 0);
  assert.ok(zoom.isFull(back, E));
  assert.ok(!zoom.isFull(v, E));
});

test('pan moves by a fraction of the window and stops at the edges', () => {
  const v = { rows: [0, 400], cols: [1000, 1400] };
  assert.deepEqual(zoom.pan(v, E, 0.25, 0), { rows: [100, 500], cols: [1000, 1400] });
  assert.deepEqual(zoom.pan(v, E, -0.25, -0.25), { rows: [0, 400], cols: [900, 1300] }, 'rows already at the top');
  const tiny = { rows: [10, 14], cols: [10, 14] };
  assert.deepEqual(zoom.pan(tiny, E, 0.1, 0).rows, [11, 15], 'a small window still moves by a unit');
  assert.deepEqual(zoom.centreOn(v, E, 7990, 200), { rows: [7600, 8000], cols: [0, 400] });
});

test('cellSpan and unitCell agree on pooled answers, last block shorter', () => {
  // 8000 tokens pooled by 32 into 250 cells; a window [100, 164) at full resolution.
  assert.deepEqual(zoom.cellSpan([0, 8000], 32, 0), [0, 32]);
  assert.deepEqual(zoom.cellSpan([0, 8000], 32, 249), [7968, 8000]);
  assert.deepEqual(zoom.cellSpan([0, 1000], 32, 31), [992, 1000], 'the last block is cut at the end');
  assert.deepEqual(zoom.cellSpan([100, 164], 1, 5), [105, 106]);
  for (const u of [0, 31, 32, 999]) {
    const c = zoom.unitCell([0, 1000], 32, u);
    const s = zoom.cellSpan([0, 1000], 32, c);
    assert.ok(s[0] <= u && u < s[1], `unit ${u} in cell ${c} = [${s}]`);
  }
  assert.equal(zoom.unitCell([100, 164], 1, 99), null);
  assert.equal(zoom.unitCell([100, 164], 1, 164), null, 'end is exclusive');
  assert.equal(zoom.unitCell([100, 164], 1, 163), 63);
});

test('fromCells: a dragged rectangle covers whole cells, corners in either order', () => {
  const served = { rowRange: [0, 8000], colRange: [0, 8000], poolFactor: 32 };
  const v = zoom.fromCells(served, { row: 10, col: 3 }, { row: 5, col: 7 });
  assert.deepEqual(v, { rows: [160, 352], cols: [96, 256] });
  const win = { rowRange: [100, 164], colRange: [200, 260], poolFactor: 1 };
  assert.deepEqual(zoom.fromCells(win, { row: 0, col: 0 }, { row: 0, col: 0 }), { rows: [100, 101], cols: [200, 201] });
});

test('windowParams: whole matrix without ranges; a window at full resolution unless still bigger than maxSize', () => {
  assert.deepEqual(zoom.windowParams(zoom.fullViewport(E), E, 512, 'max'), { maxSize: 512, pooling: 'max' });
  assert.deepEqual(zoom.windowParams({ rows: [100, 164], cols: [0, 64] }, E, 512, 'mean'), { rowRange: [100, 164], colRange: [0, 64] });
  assert.deepEqual(zoom.windowParams({ rows: [0, 600], cols: [0, 300] }, E, 512, 'mean'),
    { rowRange: [0, 600], colRange: [0, 300], maxSize: 512, pooling: 'mean' });
  assert.deepEqual(zoom.windowParams({ rows: [0, 512], cols: [0, 512] }, E, 512, 'max'), { rowRange: [0, 512], colRange: [0, 512] }, 'exactly maxSize fits');
  assert.deepEqual(zoom.windowParams(zoom.fullViewport({ rows: 19, cols: 19 }), { rows: 19, cols: 19 }, 512, 'max'), {}, 'a short matrix: nothing to add');
});

test('labels: pooling factor and spans as people read them', () => {
  assert.equal(zoom.poolLabel(1, 'max'), 'full resolution');
  assert.equal(zoom.poolLabel(16, 'mean'), 'mean-pooled: a cell is 16×16 tokens');
  assert.equal(zoom.poolLabel(2, 'max', 'units'), 'max-pooled: a cell is 2×2 units');
  assert.equal(zoom.spanLabel([100, 164]), '#100–163', 'end exclusive: the last unit shown is 163');
  assert.equal(zoom.spanLabel([7, 8]), '#7');
  assert.deepEqual([100, 300, 511, 512, 900, 5000].map(zoom.overviewSize), [64, 256, 256, 512, 512, 1024]);
});

test('a deliberately off-by-one cellSpan (end inclusive) is caught by the same checks', () => {
  // The checks above, run against a variant that makes the classic mistake: they must fail on it.
  const wrong = (served, p, i) => { const s = served[0] + i * p; return [s, Math.min(served[1], s + p + 1)]; };
  const check = (cellSpan) => {
    assert.deepEqual(cellSpan([0, 8000], 32, 0), [0, 32]);
    assert.deepEqual(cellSpan([100, 164], 1, 5), [105, 106]);
  };
  check(zoom.cellSpan);
  assert.throws(() => check(wrong), assert.AssertionError);
  // And a windowParams that pools at exactly maxSize (>= instead of >) breaks the "fits" case.
  const wrongParams = (v, e, maxSize, pooling) => {
    const side = Math.max(v.rows[1] - v.rows[0], v.cols[1] - v.cols[0]);
    return { rowRange: [...v.rows], colRange: [...v.cols], ...(side >= maxSize ? { maxSize, pooling } : {}) };
  };
  const fits = (f) => assert.deepEqual(f({ rows: [0, 512], cols: [0, 512] }, E, 512, 'max'), { rowRange: [0, 512], colRange: [0, 512] });
  fits(zoom.windowParams);
  assert.throws(() => fits(wrongParams), assert.AssertionError);
});

/** A request the test answers by hand. */
function deferred() {
  let resolve;
  const p = new Promise((r) => (resolve = r));
  return { p, resolve };
}

test('Coalescer: one request in flight, only the newest waiting one is sent, late answers are dropped', async () => {
  const c = new zoom.Coalescer();
  const started = [];
  const job = (name) => () => { const d = deferred(); started.push({ name, d }); return d.p; };
  const a = c.ask(job('a'));
  const b = c.ask(job('b')); // waits
  const d = c.ask(job('d')); // replaces b before it starts
  assert.deepEqual(started.map((s) => s.name), ['a'], 'one in flight');
  assert.equal(await b, undefined, 'b was superseded without being sent');
  started[0].d.resolve('answer a');
  assert.equal(await a, undefined, 'a late answer for an older viewport is not delivered');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(started.map((s) => s.name), ['a', 'd'], 'the newest waiting request went out after a');
  started[1].d.resolve('answer d');
  assert.equal(await d, 'answer d');
  // A failed request settles as undefined and does not block the next.
  const e = c.ask(() => Promise.reject(new Error('boom')));
  assert.equal(await e, undefined);
  const f = c.ask(() => Promise.resolve('f'));
  assert.equal(await f, 'f');
  // reset: what is running is not delivered.
  const g = c.ask(() => new Promise((r) => setTimeout(() => r('g'), 10)));
  c.reset();
  assert.equal(await g, undefined);
});
