// Layout at real sizes (#13 point 11), in real headless Chromium: the built panel with a fake host that makes up
// synthetic analyses of 2, 14 and 40 heads and 10 and 8,000 tokens, answering what the views ask (attention/view at
// the size asked, pooled as the backend pools: a cell is the block's maximum; attention/metrics; modularityAll with
// no heads). Every view fits the panel or scrolls inside itself with its labels: the last head's cell can be brought
// into view with its H and L labels beside it, and a heatmap of 8,000 tokens fits the panel's height with labels.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { launch, servePanel } = require('../lib/browser.cjs');

const outDir = path.join(__dirname, '../.output');
fs.mkdirSync(outDir, { recursive: true });
const LAYERS = 2;

let panel, browser;
test.before(async () => {
  panel = await servePanel();
  browser = await launch();
});
test.after(async () => {
  await browser?.close();
  panel?.close();
});

/** An analysis of `n` tokens ("w0 w1 …") on a causal model of LAYERS × `heads`. */
function synthetic(n, heads) {
  const words = Array.from({ length: n }, (_, i) => `w${i}`);
  let at = 0;
  const tokens = words.map((w, i) => {
    const start = at;
    at += w.length + 1;
    return { id: i, text: i ? `Ġ${w}` : w, start, end: start + w.length, special: false, typeId: 0, display: w,
      continuation: false, leadingSpace: i > 0 };
  });
  return {
    analysisId: `synthetic-${n}-${heads}`, model: { id: '/models/synthetic', architecture: 'llama', layers: LAYERS, heads, causal: true },
    tokens, text: words.join(' '), truncated: false, elapsedMs: 1, source: `synthetic-${n}.txt:1`,
  };
}

async function openSynthetic(n, heads, viewport) {
  const page = await browser.newPage({ viewport });
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  const analysis = synthetic(n, heads);
  await page.addInitScript(({ n, heads, layers }) => {
    const posted = [];
    window.__posted = posted;
    // A causal pattern: row i attends to keys ≤ i, most to itself, then the first token; heads differ by a factor.
    // blockMax: the maximum over rows [i0, i1) × keys [j0, j1), as max pooling gives it, in constant time.
    const blockMax = (l, h, i0, i1, j0, j1) => {
      const k = (1 + ((l + h) % 3)) / 3;
      if (j0 > i1 - 1) return 0;
      if (j0 < i1 && i0 < j1) return 0.5 * k;
      return (j0 === 0 ? 0.3 : 0.2 / i0) * k;
    };
    const units = Array.from({ length: n }, (_, i) => ({ text: `w${i}`, start: 0, end: 0, firstToken: i, lastToken: i, special: false }));
    function view(p) {
      const [r0, r1] = p.rowRange ?? [0, n];
      const [c0, c1] = p.colRange ?? [0, n];
      const side = Math.max(r1 - r0, c1 - c0);
      const f = p.maxSize && side > p.maxSize ? Math.ceil(side / p.maxSize) : 1;
      const rows = Math.ceil((r1 - r0) / f), cols = Math.ceil((c1 - c0) / f);
      const data = new Float32Array(rows * cols);
      const l = Math.max(0, p.layer), h = Math.max(0, p.head);
      for (let a = 0; a < rows; a++)
        for (let b = 0; b < cols; b++)
          data[a * cols + b] = blockMax(l, h, r0 + a * f, Math.min(r1, r0 + (a + 1) * f), c0 + b * f, Math.min(c1, c0 + (b + 1) * f));
      return { result: { rows, cols, layer: p.layer, head: p.head, pooled: f > 1, poolFactor: f, units, rowRange: [r0, r1],
        colRange: [c0, c1], pooling: p.pooling ?? 'max' }, data: data.buffer };
    }
    const metrics = () => ({ result: { layers, heads, causal: true, sinkThreshold: 0.3, elapsedMs: 1,
      metrics: Array.from({ length: layers * heads }, (_, k) => ({ layer: Math.floor(k / heads), head: k % heads,
        entropy: 1 + k / 10, normalizedEntropy: 0.1 + 0.8 * k / (layers * heads), meanDistance: k, firstToken: 0.3, sink: false,
        previousToken: 0.1, self: 0.5, duplicateToken: 0 })) } });
    window.acquireVsCodeApi = () => ({
      postMessage(m) {
        posted.push(m);
        if (m.type !== 'rpc') return;
        const r = m.method === 'attention/view' ? view(m.params)
          : m.method === 'attention/metrics' ? metrics()
          : m.method === 'attention/modularityAll' ? { result: { includeSelfLoops: false, heads: [], elapsedMs: 0 } }
          : undefined;
        const msg = r ? { type: 'rpcResult', requestId: m.requestId, ...r } : { type: 'rpcError', requestId: m.requestId, message: `not made up: ${m.method}` };
        setTimeout(() => window.postMessage(msg, '*'), 1);
      },
      getState: () => undefined,
      setState: () => {},
    });
  }, { n, heads, layers: LAYERS });
  await page.goto(`${panel.origin}/panel.html`);
  await page.waitForFunction(() => window.__posted.some((m) => m.type === 'ready'));
  await page.evaluate((a) => window.postMessage({ type: 'analysis', analysis: a, state: { layer: 0, head: 0 } }, '*'), analysis);
  await page.waitForSelector('#app[data-state="painted"][data-head="0"]', { timeout: 60_000 });
  return page;
}

/**
 * Brings the last head of the last layer into view in `gridSelector` and returns where it, its H and L labels and the
 * grid are (page coordinates), with the window's size.
 */
async function lastHead(page, gridSelector, cellSelector, heads) {
  return page.evaluate(({ gridSelector, cellSelector, heads, layers }) => {
    const grid = document.querySelector(gridSelector);
    const cell = grid.querySelector(cellSelector);
    cell.scrollIntoView({ block: 'nearest', inline: 'nearest' });
    const rect = (e) => { const r = e.getBoundingClientRect(); return { left: r.left, right: r.right, top: r.top, bottom: r.bottom }; };
    const labels = [...grid.querySelectorAll('.grid-label')];
    const col = labels.find((e) => e.textContent === `H${heads - 1}`);
    const row = labels.find((e) => e.textContent === `L${layers - 1}`);
    // What is drawn at each label's centre: the label itself, not a cell scrolled over it.
    const onTop = (e) => { const r = e.getBoundingClientRect(); return document.elementFromPoint((r.left + r.right) / 2, (r.top + r.bottom) / 2) === e; };
    // The labels' own text, laid out: two neighbours' texts must not run into each other ("H10H11H12").
    const text = (e) => { const r = document.createRange(); r.selectNodeContents(e); return r.getBoundingClientRect(); };
    const cols = labels.filter((e) => /^H\d+$/.test(e.textContent)).map(text);
    const crowded = cols.slice(1).filter((r, k) => r.left < cols[k].right - 0.5).length;
    return { grid: rect(grid), cell: rect(cell), col: rect(col), row: rect(row), colOnTop: onTop(col), rowOnTop: onTop(row), crowded,
      scrollable: grid.scrollWidth > grid.clientWidth || grid.scrollHeight > grid.clientHeight,
      width: window.innerWidth, height: window.innerHeight, pageScrollX: document.scrollingElement.scrollWidth > window.innerWidth };
  }, { gridSelector, cellSelector, heads, layers: LAYERS });
}

/** The last head's cell and both label strips inside the scrolled grid and the panel, labels over the cells, apart. */
function assertGridInPanel(g, heads, cell) {
  const win = { left: 0, top: 0, right: g.width, bottom: g.height };
  assert.ok(g.grid.right <= g.width + 0.5, `the grid ends inside the panel: ${g.grid.right} of ${g.width}`);
  assertInside(g.cell, g.grid, `H${heads - 1}'s ${cell}`);
  assertInside(g.cell, win, `H${heads - 1}'s ${cell}`);
  assertInside(g.col, g.grid, `the H${heads - 1} label`);
  assertInside(g.row, g.grid, `the L${LAYERS - 1} label`);
  assert.ok(g.colOnTop && g.rowOnTop, `the labels are drawn over the scrolled ${cell}s, not under them`);
  assert.equal(g.crowded, 0, 'no H label runs into the next');
}

function assertInside(r, box, what) {
  assert.ok(r.left >= box.left - 0.5 && r.right <= box.right + 0.5 && r.top >= box.top - 0.5 && r.bottom <= box.bottom + 0.5,
    `${what} ${JSON.stringify(r)} inside ${JSON.stringify(box)}`);
}

for (const heads of [2, 14, 40]) {
  test(`Heads tab at ${heads} heads: the grid fits the panel or scrolls inside it, H${heads - 1}'s cell reachable with its labels`, async () => {
    // 520 px: a panel beside the editor (the 14 heads lost H13 there).
    const page = await openSynthetic(10, heads, { width: 520, height: 600 });
    await page.click('#tab-heads');
    await page.waitForSelector('#app[data-heads="painted"]');
    const g = await lastHead(page, '#heads-grid', `.cell[data-layer="${LAYERS - 1}"][data-head="${heads - 1}"]`, heads);
    assertGridInPanel(g, heads, 'cell');
    assert.equal(g.pageScrollX, false, 'the page itself does not scroll sideways');
    assert.ok(g.col.left < g.cell.right && g.col.right > g.cell.left && g.col.bottom <= g.cell.top + 0.5, 'H label above its column');
    assert.ok(g.row.right <= g.cell.left + 0.5 && g.row.top < g.cell.bottom && g.row.bottom > g.cell.top, 'L label left of its row');
    assert.equal(g.scrollable, heads > 2, `${heads} heads in 520 px: ${heads > 2 ? 'scrolls' : 'fits'}`);
    await page.screenshot({ path: path.join(outDir, `layout-heads-${heads}.png`) });
    assert.deepEqual(page.errors, []);
    await page.close();
  });
}

// 900 × 720: the first overview is asked for before the minimap shows (512 cells), which then leaves less height.
for (const [n, heads, height] of [[10, 2, 650], [10, 40, 650], [8000, 14, 650], [8000, 40, 650], [8000, 2, 720]]) {
  test(`heatmap and All heads at ${n} tokens, ${heads} heads, ${height} px high: the heatmap fits the panel's height with labels, the grid scrolls with its labels`, async () => {
    const page = await openSynthetic(n, heads, { width: 900, height });
    const geometry = await page.evaluate(() => {
      const c = document.getElementById('heatmap');
      const r = c.getBoundingClientRect();
      const d = c.dataset;
      // Label pixels: anything drawn in the row-label gutter left of the cells, over the cells' height.
      const dpr = window.devicePixelRatio || 1;
      const px = c.getContext('2d').getImageData(0, Number(d.top) * dpr, Math.max(1, (Number(d.left) - 2) * dpr),
        Math.max(1, Number(d.rows) * Number(d.cell) * dpr)).data;
      let lit = 0;
      for (let i = 3; i < px.length; i += 4) if (px[i] > 0) lit++;
      return { top: r.top, bottom: r.bottom, right: r.right, height: window.innerHeight, width: window.innerWidth, left: Number(d.left),
        step: Number(d.labelStep), rows: Number(d.rows), cell: Number(d.cell), lit };
    });
    await page.screenshot({ path: path.join(outDir, `layout-heatmap-${n}-${heads}-${height}.png`) });
    assert.ok(geometry.bottom <= geometry.height + 0.5, `the heatmap ends inside the panel: ${JSON.stringify(geometry)}`);
    assert.ok(geometry.right <= geometry.width + 0.5, `and inside its width: ${geometry.right} of ${geometry.width}`);
    assert.ok(geometry.left > 20, `a label gutter: ${geometry.left} px`);
    assert.ok(geometry.lit > 50, `labels drawn in it: ${geometry.lit} pixels`);
    if (n === 10) assert.equal(geometry.step, 1, 'every label at 10 tokens');
    else assert.ok(geometry.step > 1 && geometry.cell * geometry.step >= 10, `every ${geometry.step}th label, ${geometry.cell} px cells`);
    // The All heads grid: mean + every head, mean + every layer, thumbnails of the same answers.
    await page.click('#view-grid');
    await page.waitForSelector('#app[data-grid="painted"]', { timeout: 120_000 });
    const g = await lastHead(page, '#grid', `.thumb[data-layer="${LAYERS - 1}"][data-head="${heads - 1}"]`, heads);
    assertGridInPanel(g, heads, 'thumbnail');
    await page.screenshot({ path: path.join(outDir, `layout-grid-${n}-${heads}-${height}.png`) });
    assert.deepEqual(page.errors, []);
    await page.close();
  });
}
