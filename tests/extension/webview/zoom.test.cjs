// The heatmap's zoom on a long analysis, in real headless Chromium: the built panel (same HTML and CSP as the
// extension), a fake host answering with a long MiniLM analysis recorded from the real backend
// (fixtures/minilm-long.json: its whole 512-token window). Pooled overview, max/mean switch, drag/wheel/keyboard
// zoom, the minimap, the loading state, late answers for old viewports, and the hover readout.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { launch, servePanel } = require('../lib/browser.cjs');
const { matrix } = require('../unit/lib.cjs');
const { rpcKey } = require('../fixtures/record-fixture.cjs');

const fixture = JSON.parse(fs.readFileSync(path.join(__dirname, '../fixtures/minilm-long.json'), 'utf8'));
const outDir = path.join(__dirname, '../.output');
fs.mkdirSync(outDir, { recursive: true });
const N = fixture.analysis.tokens.length;
const FULL = fixture.rpc[rpcKey('attention/view', { layer: 0, head: 0 })];
const full = matrix.decodeFloat32(FULL.data, N * N);

/** The window [r0, r1) × [c0, c1) of the recorded full matrix, as attention/view answers it unpooled. */
function slice([r0, r1], [c0, c1]) {
  const out = new Float32Array((r1 - r0) * (c1 - c0));
  for (let i = r0; i < r1; i++) out.set(full.subarray(i * N + c0, i * N + c1), (i - r0) * (c1 - c0));
  return { ...FULL, rows: r1 - r0, cols: c1 - c0, data: Buffer.from(out.buffer).toString('base64'), rowRange: [r0, r1], colRange: [c0, c1] };
}

let panel, origin, browser;

test.before(async () => {
  panel = await servePanel();
  origin = panel.origin;
  browser = await launch();
});

test.after(async () => {
  await browser?.close();
  panel?.close();
});

test('the fake host\'s windows are the real backend\'s: recorded windows equal slices of the recorded matrix', () => {
  for (const [rows, cols] of fixture.windows) {
    const real = fixture.rpc[rpcKey('attention/view', { layer: 0, head: 0, rowRange: rows, colRange: cols })];
    const mine = slice(rows, cols);
    assert.deepEqual([real.rows, real.cols, real.rowRange, real.colRange, real.poolFactor], [mine.rows, mine.cols, rows, cols, 1]);
    assert.equal(real.data, mine.data, `window ${rows} × ${cols}`);
  }
  const row = fixture.rpc[rpcKey('attention/row', { layer: 0, head: 0, token: 130, direction: 'from' })];
  assert.deepEqual(Float32Array.from(row.scores), full.subarray(130 * N, 131 * N));
});

const THEMES = {
  dark: { '--vscode-foreground': '#cccccc', '--vscode-editor-background': '#1e1e1e', '--vscode-focusBorder': '#007fd4', '--vscode-panel-border': '#80808059', '--vscode-descriptionForeground': '#9d9d9d' },
  light: { '--vscode-foreground': '#3b3b3b', '--vscode-editor-background': '#ffffff', '--vscode-focusBorder': '#005fb8', '--vscode-panel-border': '#e5e5e5', '--vscode-descriptionForeground': '#717171' },
};

/** Opens the panel on the long analysis (600 px wide: the overview is pooled to 256 cells). */
async function openLong({ theme = 'dark', width = 600 } = {}) {
  const page = await browser.newPage({ viewport: { width, height: 900 } });
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  const analysis = { ...fixture.analysis, text: fixture.text, source: 'long.txt:1' };
  const windows = {};
  // Unpooled windows of layer 0 head 0 are slices of the recorded matrix (checked against real windows above).
  for (const r0 of [0, 64, 100, 128, 192, 256]) for (const len of [64, 128, 256]) for (const c0 of [0, 64, 100, 128, 192, 256])
    if (r0 + len <= N && c0 + len <= N) windows[rpcKey('attention/view', { layer: 0, head: 0, rowRange: [r0, r0 + len], colRange: [c0, c0 + len] })] = slice([r0, r0 + len], [c0, c0 + len]);
  await page.addInitScript(({ rpc, windows, vars, full, n }) => {
    const posted = [];
    window.__posted = posted;
    const b64ToBuffer = (b64) => { const s = atob(b64); const u = new Uint8Array(s.length); for (let i = 0; i < s.length; i++) u[i] = s.charCodeAt(i); return u.buffer; };
    const fullData = new Float32Array(b64ToBuffer(full));
    window.acquireVsCodeApi = () => ({
      postMessage(m) {
        posted.push(m);
        if (m.type !== 'rpc') return;
        // includeUnits: false is answered as the backend does, by the recorded answer without its units.
        const sorted = Object.entries(m.params).filter(([k]) => k !== 'analysisId').sort(([a], [b]) => (a < b ? -1 : 1));
        const { includeUnits, ...p } = Object.fromEntries(sorted);
        const key = `${m.method} ${JSON.stringify(p)}`;
        let r = rpc[key] ?? windows[key];
        if (r && includeUnits === false) { const { units: _units, ...bare } = r; r = bare; }
        // A row of layer 0 head 0 is a row of the recorded matrix (the recorded row 130 equals it).
        if (!r && m.method === 'attention/row' && p.layer === 0 && p.head === 0 && p.direction === 'from')
          r = { scores: Array.from(fullData.subarray(p.token * n, (p.token + 1) * n)), top: [] };
        let msg;
        if (!r) msg = { type: 'rpcError', requestId: m.requestId, message: `not in fixture: ${key}` };
        else if (typeof r.data === 'string') { const { data, ...rest } = r; msg = { type: 'rpcResult', requestId: m.requestId, result: rest, data: b64ToBuffer(data) }; }
        else msg = { type: 'rpcResult', requestId: m.requestId, result: r };
        if (!r) window.__missing = (window.__missing ?? []).concat(key);
        if (window.__hold?.(key)) { (window.__held ??= []).push({ key, msg }); return; }
        setTimeout(() => window.postMessage(msg, '*'), 5);
      },
      getState: () => undefined,
      setState: () => {},
    });
    document.addEventListener('DOMContentLoaded', () => {
      for (const [k, v] of Object.entries(vars)) document.documentElement.style.setProperty(k, v);
    });
  }, { rpc: fixture.rpc, windows, vars: THEMES[theme], full: FULL.data, n: N });
  await page.goto(`${origin}/panel.html`);
  await page.evaluate((t) => document.body.classList.add(t === 'light' ? 'vscode-light' : 'vscode-dark'), theme);
  await page.waitForFunction(() => window.__posted.some((m) => m.type === 'ready'));
  await page.evaluate((a) => window.postMessage({ type: 'analysis', analysis: a, state: { layer: 0, head: 0 } }, '*'), analysis);
  await page.waitForSelector('#app[data-state="painted"][data-head="0"]');
  return page;
}

const geometry = (page) => page.evaluate(() => {
  const c = document.getElementById('heatmap');
  const r = c.getBoundingClientRect();
  const d = c.dataset;
  return { x: r.left, y: r.top, left: Number(d.left), top: Number(d.top), cell: Number(d.cell), rows: Number(d.rows), cols: Number(d.cols) };
});
/**
 * A page point inside drawn cell (row, col): its middle, moved to a whole pixel still inside the cell (mouse events
 * carry whole pixels, and with labels beside a pooled overview a cell can be under 2 px).
 */
const at = (g, row, col) => {
  const inside = (origin, i) => {
    const mid = Math.floor(origin + (i + 0.5) * g.cell);
    return mid >= origin + i * g.cell ? mid : Math.ceil(origin + i * g.cell);
  };
  return { x: inside(g.x + g.left, col), y: inside(g.y + g.top, row) };
};
const views = (page) => page.evaluate(() => window.__posted.filter((m) => m.type === 'rpc' && m.method === 'attention/view').map((m) => m.params));
const minimapViewport = (page) => page.evaluate(() => document.getElementById('minimap').dataset.viewport);

test('a long analysis opens as a pooled overview: max by default, mean on request, with a minimap; hover reads the block', async () => {
  const page = await openLong();
  const first = (await views(page))[0];
  assert.equal(first.maxSize, 256, 'pooled to the heatmap\'s size');
  assert.equal(first.pooling, undefined, 'max is the backend\'s default');
  assert.equal(await page.getAttribute('#app', 'data-pool-factor'), '2');
  assert.match(await page.textContent('#zoom-label'), /^all 512 tokens · max-pooled: a cell is 2×2 tokens$/);
  assert.equal(await page.isVisible('#minimap'), true);
  assert.equal(await page.isVisible('#pooling'), true);
  const g = await geometry(page);
  assert.deepEqual([g.rows, g.cols], [256, 256]);
  // Hover a pooled cell: its rows and columns and the recorded pooled value, never a made-up exact one.
  const pooled = fixture.rpc[rpcKey('attention/view', { layer: 0, head: 0, maxSize: 256 })];
  const pv = matrix.decodeFloat32(pooled.data, 256 * 256);
  const p = at(g, 60, 20);
  await page.mouse.move(p.x, p.y);
  await page.locator('#tooltip').waitFor({ state: 'visible' });
  const tip = await page.textContent('#tooltip');
  assert.ok(tip.startsWith(`rows #120–121 → columns #40–41: max ${pv[60 * 256 + 20].toFixed(4)}`), tip);
  assert.match(tip, /zoom in for exact values/);
  // The pooled value is the maximum of its 2×2 block of the full matrix (recorded separately).
  const block = [full[120 * N + 40], full[120 * N + 41], full[121 * N + 40], full[121 * N + 41]];
  assert.equal(pv[60 * 256 + 20], Math.max(...block));
  const before = await page.evaluate(() => document.getElementById('heatmap').toDataURL());
  await page.screenshot({ path: path.join(outDir, 'zoom-overview-dark.png') });
  await page.selectOption('#pooling', 'mean');
  await page.waitForFunction(() => document.getElementById('zoom-label').textContent.includes('mean-pooled'));
  assert.equal((await views(page)).at(-1).pooling, 'mean');
  const after = await page.evaluate(() => document.getElementById('heatmap').toDataURL());
  assert.notEqual(after, before, 'the mean-pooled overview looks different');
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('drag a rectangle: the window comes at full resolution, with a loading state until it does; hover is exact', async () => {
  const page = await openLong();
  const g = await geometry(page);
  await page.evaluate(() => { window.__hold = (k) => k.includes('rowRange'); });
  const a = at(g, 50, 50), b = at(g, 81, 81);
  await page.mouse.move(a.x, a.y);
  await page.mouse.down();
  await page.mouse.move((a.x + b.x) / 2, (a.y + b.y) / 2, { steps: 4 });
  assert.equal(await page.isVisible('.zoom-band'), true, 'the rectangle shows while dragging');
  await page.mouse.move(b.x, b.y, { steps: 4 });
  await page.mouse.up();
  await page.waitForSelector('#app[data-zoom="loading"]');
  const asked = (await views(page)).at(-1);
  assert.deepEqual([asked.rowRange, asked.colRange, asked.maxSize], [[100, 164], [100, 164], undefined], 'cells 50–81 of 2 tokens each, unpooled');
  assert.match(await page.textContent('#zoom-label'), /rows #100–163, columns #100–163 of 512 · max-pooled.*loading/);
  assert.equal(await page.evaluate(() => window.__state?.locked ?? null), null, 'the drag did not lock a cell');
  await page.screenshot({ path: path.join(outDir, 'zoom-loading-dark.png') });
  await page.evaluate(() => { window.__hold = undefined; for (const h of window.__held.splice(0)) window.postMessage(h.msg, '*'); });
  await page.waitForSelector('#app[data-zoom="ready"][data-pool-factor="1"]');
  assert.match(await page.textContent('#zoom-label'), /rows #100–163, columns #100–163 of 512 · full resolution$/);
  assert.equal(await minimapViewport(page), '100,164,100,164');
  const z = await geometry(page);
  assert.deepEqual([z.rows, z.cols], [64, 64]);
  const p = at(z, 30, 5); // token 130 → token 105
  await page.mouse.move(p.x, p.y);
  await page.locator('#tooltip').waitFor({ state: 'visible' });
  const { tokens } = require('../unit/lib.cjs');
  const name = (i) => tokens.tokenLabel(fixture.analysis.tokens[i]);
  assert.equal(await page.textContent('#tooltip'), `${name(130)} → ${name(105)}: ${full[130 * N + 105].toFixed(4)}  (row #130, column #105)`);
  // The strip shows row 130 in full: the window holds only columns 100–163, so the row came on demand.
  await page.waitForFunction(() => document.querySelector('#token-strip .tok[data-index="400"]').title !== '');
  assert.ok((await page.evaluate(() => window.__posted.filter((m) => m.method === 'attention/row').map((m) => m.params.token))).includes(130));
  assert.equal(await page.getAttribute('#token-strip .tok[data-index="400"]', 'title'), `${name(130)} → ${name(400)}: ${full[130 * N + 400].toFixed(4)}`);
  await page.screenshot({ path: path.join(outDir, 'zoom-window-dark.png') });
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('wheel bursts ask once for where they end; a late answer for an older viewport is never shown', async () => {
  const page = await openLong({ width: 1000 }); // 512 cells fit: the overview is the full matrix
  assert.equal((await views(page))[0].maxSize, undefined);
  assert.equal(await page.getAttribute('#app', 'data-pool-factor'), '1');
  assert.equal(await page.isVisible('#minimap'), false, 'nothing to find your way in yet');
  const g = await geometry(page);
  await page.evaluate(() => { window.__hold = (k) => k.includes('rowRange'); });
  const p = at(g, 256, 256);
  await page.mouse.move(p.x, p.y);
  for (let i = 0; i < 4; i++) await page.mouse.wheel(0, -100);
  await page.waitForSelector('#app[data-zoom="loading"]');
  await page.waitForTimeout(100);
  const asked = (await views(page)).filter((v) => v.rowRange);
  assert.equal(asked.length, 1, `one window in flight while the wheel turns: ${JSON.stringify(asked)}`);
  // The panel shows the newest viewport: 512 / 1.5⁴ ≈ 101 tokens around the pointer.
  const label = await page.textContent('#zoom-label');
  const [, r0, r1] = label.match(/rows #(\d+)–(\d+)/).map(Number);
  assert.equal(r1 - r0 + 1, Math.round(512 / 1.5 ** 4));
  assert.ok(r0 <= 256 && r1 >= 256);
  // The first (older) answer comes: it is dropped, and the newest viewport is asked for then.
  await page.evaluate(() => { const h = window.__held.shift(); window.postMessage(h.msg, '*'); });
  await page.waitForFunction(() => window.__posted.filter((m) => m.method === 'attention/view' && m.params.rowRange).length === 2);
  assert.equal(await page.getAttribute('#app', 'data-zoom'), 'loading', 'the old window is not shown');
  const newest = (await views(page)).filter((v) => v.rowRange).at(-1);
  assert.deepEqual(newest.rowRange, [r0, r1 + 1]);
  assert.equal(await page.evaluate(() => window.__missing.filter((k) => k.includes('rowRange')).length), 2,
    'these odd windows are not in the fixture');
  await page.evaluate(() => { window.__hold = undefined; for (const h of window.__held.splice(0)) window.postMessage(h.msg, '*'); });
  await page.waitForSelector('#app[data-zoom="error"]');
  assert.match(await page.textContent('#status'), /Could not load: not in fixture/);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('keyboard: + zooms into the centre, arrows pan while zoomed, 0 shows the whole; the minimap moves the window', async () => {
  const page = await openLong({ width: 1000 });
  assert.match(await page.getAttribute('#heatmap', 'aria-label'), /plus and minus zoom, arrows pan while zoomed/);
  await page.locator('#heatmap').focus();
  await page.keyboard.press('+');
  await page.waitForSelector('#app[data-zoom="ready"]');
  assert.equal(await minimapViewport(page), '128,384,128,384');
  assert.equal(await page.isVisible('#minimap'), true);
  await page.keyboard.press('ArrowRight');
  await page.waitForFunction(() => document.getElementById('minimap').dataset.viewport === '128,384,192,448');
  await page.keyboard.press('ArrowDown');
  await page.waitForFunction(() => document.getElementById('minimap').dataset.viewport === '192,448,192,448');
  assert.equal(await page.inputValue('#head'), '0', 'arrows panned instead of stepping the head');
  // The view is a slice of the recorded matrix at full resolution: its first cell is token 192 → 192.
  await page.waitForSelector('#app[data-zoom="ready"]');
  const g = await geometry(page);
  const p = at(g, 0, 0);
  await page.mouse.move(p.x, p.y);
  await page.locator('#tooltip').waitFor({ state: 'visible' });
  assert.match(await page.textContent('#tooltip'), new RegExp(`: ${full[192 * N + 192].toFixed(4)}  \\(row #192, column #192\\)$`));
  await page.screenshot({ path: path.join(outDir, 'zoom-keyboard-dark.png') });
  // Minimap: a click at its top-left corner moves the window (same size) there.
  await page.locator('#minimap').click({ position: { x: 2, y: 2 } });
  await page.waitForFunction(() => document.getElementById('minimap').dataset.viewport === '0,256,0,256');
  await page.waitForSelector('#app[data-zoom="ready"]');
  await page.locator('#heatmap').focus();
  await page.keyboard.press('0');
  await page.waitForSelector('#app[data-zoom="whole"][data-pool-factor="1"]');
  assert.equal((await geometry(page)).rows, 512);
  // Not zoomed: the arrows step the head again.
  await page.keyboard.press('ArrowRight');
  await page.waitForFunction(() => document.getElementById('head').value === '1');
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('light theme: the zoomed window, the minimap and the loading state are readable (screenshots to look at)', async () => {
  const page = await openLong({ theme: 'light' });
  await page.screenshot({ path: path.join(outDir, 'zoom-overview-light.png') });
  const g = await geometry(page);
  await page.evaluate(() => { window.__hold = (k) => k.includes('rowRange'); });
  const a = at(g, 50, 50), b = at(g, 81, 81);
  await page.mouse.move(a.x, a.y); await page.mouse.down(); await page.mouse.move(b.x, b.y, { steps: 6 }); await page.mouse.up();
  await page.waitForSelector('#app[data-zoom="loading"]');
  await page.screenshot({ path: path.join(outDir, 'zoom-loading-light.png') });
  await page.evaluate(() => { window.__hold = undefined; for (const h of window.__held.splice(0)) window.postMessage(h.msg, '*'); });
  await page.waitForSelector('#app[data-zoom="ready"]');
  await page.screenshot({ path: path.join(outDir, 'zoom-window-light.png') });
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('a rollout past the whole-matrix limit: the tab offers one token\'s exact row (attention/rolloutRow), its largest inputs as bars', async () => {
  const { LIMITS } = require('../unit/lib.cjs').protocol;
  const page = await browser.newPage({ viewport: { width: 700, height: 900 } });
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  // 2,100 tokens (the recorded ones, repeated): more than the backend's whole rollout matrix takes.
  const n = LIMITS.rolloutMatrixTokens + 52;
  const base = fixture.analysis.tokens;
  const tokens = Array.from({ length: n }, (_, i) => ({ ...base[i % base.length] }));
  const analysis = { ...fixture.analysis, tokens, text: fixture.text, source: 'long.txt:1' };
  await page.addInitScript(({ n }) => {
    window.__posted = [];
    window.acquireVsCodeApi = () => ({
      postMessage(m) {
        window.__posted.push(m);
        if (m.type !== 'rpc') return;
        let msg = { type: 'rpcError', requestId: m.requestId, message: 'not served in this test' };
        if (m.method === 'attention/rolloutRow') {
          // A row that sums to 1 with known largest inputs: the token itself, then token 0, then the rest.
          const scores = Array.from({ length: n }, (_, j) => (j === m.params.token ? 0.3 : j === 0 ? 0.2 : 0.5 / (n - 2)));
          msg = { type: 'rpcResult', requestId: m.requestId,
            result: { token: m.params.token, layer: 3, scores, partial: scores, reachedLayer: 0, complete: true, elapsedMs: 12 } };
        }
        setTimeout(() => window.postMessage(msg, '*'), 5);
      },
      getState: () => undefined,
      setState: () => {},
    });
  }, { n });
  await page.goto(`${origin}/panel.html`);
  await page.waitForFunction(() => window.__posted.some((m) => m.type === 'ready'));
  await page.evaluate((a) => window.postMessage({ type: 'analysis', analysis: a, state: { layer: 0, head: 0 } }, '*'), analysis);
  await page.click('#tab-rollout');
  await page.waitForSelector('#app[data-rollout="long"]');
  assert.equal(await page.locator('#rollout-canvas').isVisible(), false, 'no matrix past the limit');
  assert.match(await page.locator('#rollout-caption').textContent(), new RegExp(`${n.toLocaleString('en-US')} tokens.*up to ${LIMITS.rolloutMatrixTokens.toLocaleString('en-US')}`));
  assert.equal(await page.locator('#flow-token option').count(), n + 1, 'every token can be picked');
  await page.selectOption('#flow-token', String(n - 1));
  await page.waitForSelector('#app[data-flow="painted"]');
  const rows = await page.locator('#flow-body tr').evaluateAll((trs) => trs.map((tr) => Number(tr.dataset.index)));
  assert.equal(rows.length, 40, 'the 40 largest inputs');
  assert.deepEqual(rows.slice(0, 3), [n - 1, 0, 1], 'largest first, ties in token order');
  assert.equal(await page.locator('#flow-body tr.source').count(), 1);
  assert.equal(await page.locator('#flow-body td[data-kind="flow"]').count(), 0, 'no flow column at this length');
  assert.match(await page.locator('#flow-caption').textContent(), /through layer 3, the 40 largest of 2,100 inputs/);
  assert.equal(await page.locator('#flow-body tr:nth-child(3) .num').textContent(), (0.5 / (n - 2)).toExponential(2), 'small weights keep their digits');
  const posted = await page.evaluate(() => window.__posted.filter((m) => m.type === 'rpc').map((m) => [m.method, m.params.token]));
  assert.ok(posted.some(([m, t]) => m === 'attention/rolloutRow' && t === n - 1));
  assert.ok(!posted.some(([m]) => m === 'attention/rollout' || m === 'attention/flow'), 'neither the whole matrix nor a flow is asked');
  await page.screenshot({ path: path.join(outDir, 'rollout-long-dark.png') });
  assert.deepEqual(page.errors, []);
  await page.close();
});
