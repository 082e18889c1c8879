// The panel's webview in real headless Chromium: the built HTML (same function the extension
// uses, same CSP), the built bundle, a fake acquireVsCodeApi that answers matrix requests with
// recorded backend output (fixtures/).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { launch } = require('../lib/browser.cjs');
const { html, matrix } = require('../unit/lib.cjs');

const ext = path.resolve(__dirname, '../../../extension');
const fixtureFile = path.join(__dirname, '../fixtures/minilm-analysis.json'); // recorded from the real backend
const fixture = JSON.parse(fs.readFileSync(fixtureFile, 'utf8'));
const outDir = path.join(__dirname, '../.output');
fs.mkdirSync(outDir, { recursive: true });
const HOSTILE = '<img src=x onerror=alert(1)>';

let server, origin, browser;
const nonce = html.makeNonce();

test.before(async () => {
  server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/panel.html') {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(html.panelHtml({ cspSource: origin, scriptUri: `${origin}/media/webview.js`, styleUri: `${origin}/media/panel.css`, nonce }));
      return;
    }
    const file = path.join(ext, path.normalize(url.pathname));
    if (!file.startsWith(path.join(ext, 'media')) || !fs.existsSync(file)) { res.writeHead(404); res.end(); return; }
    res.writeHead(200, { 'content-type': file.endsWith('.js') ? 'text/javascript' : file.endsWith('.css') ? 'text/css' : 'application/octet-stream' });
    res.end(fs.readFileSync(file));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${server.address().port}`;
  browser = await launch();
});

test.after(async () => {
  await browser?.close();
  server?.close();
});

/** Opens the panel with the fixture; returns the page. `tokens` may override token texts. */
async function openPanel(overrideTokens, savedState) {
  const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('dialog', (d) => { errors.push(`dialog: ${d.message()}`); void d.dismiss(); });
  page.errors = errors;
  const analysis = { ...fixture.analysis, text: fixture.text, source: 'fixture.txt:1' };
  if (overrideTokens) analysis.tokens = analysis.tokens.map((t, i) => ({ ...t, ...(overrideTokens[i] ?? {}) }));
  await page.addInitScript(({ matrices, savedState }) => {
    const posted = [];
    let state = savedState;
    window.__posted = posted;
    const b64ToBuffer = (b64) => { const s = atob(b64); const u = new Uint8Array(s.length); for (let i = 0; i < s.length; i++) u[i] = s.charCodeAt(i); return u.buffer; };
    window.acquireVsCodeApi = () => ({
      postMessage(m) {
        posted.push(m);
        if (m.type === 'requestMatrix') {
          const r = matrices[`${m.layer}/${m.head}`];
          setTimeout(() => window.postMessage(r
            ? { type: 'matrix', requestId: m.requestId, rows: r.rows, cols: r.cols, layer: r.layer, head: r.head, pooled: r.pooled, poolFactor: r.poolFactor, data: b64ToBuffer(r.data) }
            : { type: 'matrixError', requestId: m.requestId, message: 'not in fixture' }, '*'), 5);
        }
      },
      getState: () => state,
      setState: (s) => { state = s; window.__state = s; },
    });
  }, { matrices: fixture.matrices, savedState });
  await page.goto(`${origin}/panel.html`);
  await page.waitForFunction(() => window.__posted.some((m) => m.type === 'ready'));
  if (savedState) return page; // restored from getState(), as after the panel was hidden
  await page.evaluate((a) => window.postMessage({ type: 'analysis', analysis: a, state: { layer: 0, head: 0 } }, '*'), analysis);
  await page.waitForSelector('#app[data-state="painted"][data-head="0"]');
  return page;
}

const canvasPixels = (page) => page.evaluate(() => {
  const c = document.getElementById('heatmap');
  const { left, top, cell, rows, cols } = c.dataset;
  const dpr = window.devicePixelRatio || 1;
  const d = c.getContext('2d').getImageData(left * dpr, top * dpr, cols * cell * dpr, rows * cell * dpr).data;
  let h = 0;
  for (let i = 0; i < d.length; i += 4) h = (h * 31 + d[i] * 7 + d[i + 1] * 3 + d[i + 2]) >>> 0;
  return { hash: h, lit: Array.from(d).filter((_, i) => i % 4 === 3 && d[i] > 0).length };
});

test('heatmap pixels change with the head, and the rendered message reports painted pixels', async () => {
  const page = await openPanel();
  const head0 = await canvasPixels(page);
  assert.ok(head0.lit > 1000, `painted: ${head0.lit}`);
  await page.selectOption('#head', '1');
  await page.waitForSelector('#app[data-state="painted"][data-head="1"]');
  const head1 = await canvasPixels(page);
  assert.notEqual(head1.hash, head0.hash, 'head 1 looks different from head 0');
  // Arrow keys step the head (and the mean-of-heads option exists).
  await page.locator('#heatmap').focus();
  await page.keyboard.press('ArrowLeft');
  await page.waitForSelector('#app[data-head="0"]');
  assert.equal(await page.locator('#head option[value="-1"]').textContent(), 'mean of heads');
  const rendered = await page.evaluate(() => window.__posted.filter((m) => m.type === 'rendered'));
  assert.ok(rendered.length >= 3 && rendered.every((r) => r.litPixels > 0));
  assert.ok(!(await page.evaluate(() => window.__posted)).some((m) => m.type === 'requestMatrix' && m.maxSize), 'the big view is not pooled');
  await page.screenshot({ path: path.join(outDir, 'webview-head.png') });
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('hovering a known cell shows its exact score and highlights its row and column', async () => {
  const page = await openPanel();
  const m = fixture.matrices['0/0'];
  const data = matrix.decodeFloat32(m.data, m.rows * m.cols);
  const row = 2, col = 5;
  const geo = await page.evaluate(() => ({ ...document.getElementById('heatmap').dataset }));
  const box = await page.locator('#heatmap').boundingBox();
  const cell = Number(geo.cell);
  await page.mouse.move(box.x + Number(geo.left) + col * cell + cell / 2, box.y + Number(geo.top) + row * cell + cell / 2);
  const tip = page.locator('#tooltip');
  await tip.waitFor({ state: 'visible' });
  const { tokens } = require('../unit/lib.cjs');
  const name = (i) => tokens.displayToken(fixture.analysis.tokens[i].text).label;
  assert.equal(await tip.textContent(), `${name(row)} → ${name(col)}: ${data[row * m.cols + col].toFixed(4)}`);
  // The hovered row is the focus of the token strip: its tokens carry this row's scores.
  assert.equal(await page.locator(`#token-strip .tok[data-index="${col}"]`).getAttribute('title'), `${name(row)} → ${name(col)}: ${data[row * m.cols + col].toFixed(4)}`);
  const posted = await page.evaluate(() => window.__posted.filter((x) => x.type === 'hoverToken'));
  assert.equal(posted.at(-1).token, row, 'the host is told which query token is hovered (editor tint)');
  // Click locks: moving elsewhere keeps the tooltip on the locked cell.
  await page.mouse.down(); await page.mouse.up();
  await page.mouse.move(box.x + Number(geo.left) + 0.5 * cell, box.y + Number(geo.top) + 0.5 * cell);
  assert.match(await tip.textContent(), new RegExp(`: ${data[row * m.cols + col].toFixed(4)}$`));
  await page.screenshot({ path: path.join(outDir, 'webview-hover.png') });
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('a hostile token renders as text, never as markup', async () => {
  const page = await openPanel({ 3: { text: HOSTILE } });
  assert.equal(await page.locator('#token-strip .tok[data-index="3"]').textContent(), HOSTILE);
  assert.equal(await page.locator('img').count(), 0);
  // Hover its cell: the tooltip shows it as text too.
  const geo = await page.evaluate(() => ({ ...document.getElementById('heatmap').dataset }));
  const box = await page.locator('#heatmap').boundingBox();
  const cell = Number(geo.cell);
  await page.mouse.move(box.x + Number(geo.left) + 3.5 * cell, box.y + Number(geo.top) + 3.5 * cell);
  await page.locator('#tooltip').waitFor({ state: 'visible' });
  assert.ok((await page.locator('#tooltip').textContent()).startsWith(`${HOSTILE} → ${HOSTILE}: `));
  assert.equal(await page.locator('#tooltip *').count(), 0);
  await page.waitForTimeout(100);
  assert.deepEqual(page.errors, [], 'no script ran, no dialog opened');
  await page.close();
});

test('CSP: an inline script without the nonce is blocked', async () => {
  const page = await openPanel();
  const result = await page.evaluate(async () => {
    const violations = [];
    document.addEventListener('securitypolicyviolation', (e) => violations.push(e.violatedDirective));
    const s = document.createElement('script');
    s.textContent = 'window.__inlineRan = true;';
    document.body.append(s);
    const d = document.createElement('div');
    d.innerHTML = '<img src="x" onerror="window.__handlerRan = true">';
    document.body.append(d);
    await new Promise((r) => setTimeout(r, 300));
    return { inline: window.__inlineRan === true, handler: window.__handlerRan === true, violations };
  });
  assert.equal(result.inline, false, 'inline script ran');
  assert.equal(result.handler, false, 'inline event handler ran');
  assert.ok(result.violations.some((v) => v.startsWith('script-src')), JSON.stringify(result.violations));
  const csp = await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content');
  assert.match(csp, /^default-src 'none'/);
  await page.close();
});

test('all-heads grid paints one thumbnail per layer × head (plus means); a click opens it large', async () => {
  const page = await openPanel();
  await page.click('#view-grid');
  await page.waitForSelector('#app[data-grid="painted"]');
  const { layers, heads } = fixture.analysis.model;
  assert.equal(await page.locator('.thumb.painted').count(), (layers + 1) * (heads + 1));
  const maxSizes = await page.evaluate(() => window.__posted.filter((m) => m.type === 'requestMatrix' && m.maxSize).map((m) => m.maxSize));
  assert.ok(maxSizes.length >= layers * heads && maxSizes.every((s) => s === 48), 'thumbnails ask for pooled matrices');
  assert.equal(await page.locator('#head-view').isVisible(), false, 'the grid replaces the big heatmap');
  await page.screenshot({ path: path.join(outDir, 'webview-grid.png') });
  await page.click(`.thumb[data-layer="${layers - 1}"][data-head="1"]`);
  await page.waitForSelector(`#app[data-state="painted"][data-layer="${layers - 1}"][data-head="1"]`);
  assert.equal(await page.locator('#head-view').isVisible(), true);
  const state = await page.evaluate(() => window.acquireVsCodeApi && null);
  assert.equal(state, null);
  await page.close();
});

test('state survives hiding the panel: a recreated webview restores analysis, layer and head from getState()', async () => {
  const page = await openPanel();
  await page.selectOption('#layer', '3');
  await page.selectOption('#head', '7');
  await page.waitForSelector('#app[data-state="painted"][data-layer="3"][data-head="7"]');
  const saved = await page.evaluate(() => window.__state);
  assert.equal(saved.layer, 3); assert.equal(saved.head, 7);
  assert.equal(saved.analysis.analysisId, fixture.analysis.analysisId);
  await page.close();
  const again = await openPanel(undefined, saved);
  await again.waitForSelector('#app[data-state="painted"][data-layer="3"][data-head="7"]');
  assert.equal(await again.locator('#head').inputValue(), '7');
  assert.equal(await again.locator('#token-strip .tok').count(), fixture.analysis.tokens.length);
  await again.close();
});
