// The panel's webview in real headless Chromium: the built HTML (same function the extension
// uses, same CSP), the built bundle, a fake acquireVsCodeApi that answers matrix requests with
// recorded backend output (fixtures/).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { launch, servePanel } = require('../lib/browser.cjs');
const { matrix } = require('../unit/lib.cjs');

const fixtureFile = path.join(__dirname, '../fixtures/minilm-analysis.json'); // recorded from the real backend
const fixture = JSON.parse(fs.readFileSync(fixtureFile, 'utf8'));
const outDir = path.join(__dirname, '../.output');
fs.mkdirSync(outDir, { recursive: true });
const HOSTILE = '<img src=x onerror=alert(1)>';

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

/** Opens the panel with the fixture; returns the page. `tokens` may override token texts. */
async function openPanel(overrideTokens, savedState, analysisExtra = {}) {
  const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') page.consoleErrors.push(m.text()); });
  page.on('dialog', (d) => { errors.push(`dialog: ${d.message()}`); void d.dismiss(); });
  page.errors = errors;
  const analysis = { ...fixture.analysis, text: fixture.text, source: 'fixture.txt:1', ...analysisExtra };
  if (overrideTokens) analysis.tokens = analysis.tokens.map((t, i) => ({ ...t, ...(overrideTokens[i] ?? {}) }));
  await page.addInitScript(({ matrices, savedState, rpc, tokens, before }) => {
    const posted = [];
    // attention/view answers the fixture holds in other words: the backend pools only above maxSize (these
    // matrices are smaller), and without view options the view is the recorded matrix over the tokens.
    const recordedView = (method, p) => {
      if (method !== 'attention/view') return undefined;
      const { maxSize, ...unpooled } = p;
      if (maxSize !== undefined && maxSize >= tokens.length) {
        const k = `${method} ${JSON.stringify(unpooled)}`;
        if (rpc[k]) return rpc[k];
      }
      const pooled = maxSize !== undefined && maxSize < tokens.length;
      if (unpooled.hideSpecial || unpooled.wordLevel || pooled) return undefined;
      const r = matrices[`${unpooled.layer}/${unpooled.head}`];
      const units = tokens.map((t, i) => ({
        text: t.text, display: t.display, start: t.start, end: t.end, firstToken: i, lastToken: i, special: t.special,
      }));
      return r && { ...r, units };
    };
    let state = savedState;
    window.__posted = posted;
    const b64ToBuffer = (b64) => { const s = atob(b64); const u = new Uint8Array(s.length); for (let i = 0; i < s.length; i++) u[i] = s.charCodeAt(i); return u.buffer; };
    window.acquireVsCodeApi = () => ({
      postMessage(m) {
        posted.push(m);
        if (m.type === 'rpc') {
          // The host's part: the recorded real answer, its base64 matrix decoded to an ArrayBuffer (controller.ts).
          // includeUnits: false is answered as the backend does, by the recorded answer without its units.
          const sorted = Object.entries(m.params).filter(([k]) => k !== 'analysisId').sort(([a], [b]) => (a < b ? -1 : 1));
          const { includeUnits, ...p } = Object.fromEntries(sorted);
          const key = `${m.method} ${JSON.stringify(p)}`;
          // Tests may replace an answer (window.__override) or hold it back until they release it (window.__hold).
          // The Diff tab's requests on the earlier analysis get its recorded answers.
          let r = m.params.analysisId === before.id ? before.rpc[key] : window.__override?.[key] ?? rpc[key] ?? recordedView(m.method, p);
          if (r && includeUnits === false) { const { units: _units, ...bare } = r; r = bare; }
          let msg;
          if (!r || r.error) msg = { type: 'rpcError', requestId: m.requestId, message: r?.error ?? `not in fixture: ${key}` };
          else if (typeof r.data === 'string') { const { data, ...rest } = r; msg = { type: 'rpcResult', requestId: m.requestId, result: rest, data: b64ToBuffer(data) }; }
          else msg = { type: 'rpcResult', requestId: m.requestId, result: r };
          if (!r) window.__missingRpc = (window.__missingRpc ?? []).concat(key);
          if (window.__hold?.(key)) { (window.__held ??= []).push(msg); return; }
          setTimeout(() => window.postMessage(msg, '*'), 5);
        }
      },
      getState: () => state,
      setState: (s) => { state = s; window.__state = s; },
    });
  }, {
    matrices: fixture.matrices, savedState, rpc: fixture.rpc, tokens: analysis.tokens,
    before: { id: fixture.before.analysis.analysisId, rpc: fixture.before.rpc },
  });
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
  const posted = await page.evaluate(() => window.__posted);
  const views = posted.filter((m) => m.type === 'rpc' && m.method === 'attention/view');
  assert.ok(views.length >= 3 && !views.some((m) => m.params.maxSize), 'the big view is not pooled');
  assert.ok(!posted.some((m) => m.type === 'requestMatrix'), 'one path: rpc attention/view');
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
  const name = (i) => tokens.tokenLabel(fixture.analysis.tokens[i]);
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
  // Arrow keys change the head with the lock kept: the readout is the new head's value of that cell (#13 point 1).
  await page.locator('#heatmap').focus();
  for (const [key, head] of [['ArrowRight', 1], ['ArrowRight', 2], ['ArrowLeft', 1]]) {
    await page.keyboard.press(key);
    await page.waitForSelector(`#app[data-state="painted"][data-head="${head}"]`);
    const mh = fixture.matrices[`0/${head}`];
    const dh = matrix.decodeFloat32(mh.data, mh.rows * mh.cols);
    await page.waitForFunction((t) => document.getElementById('tooltip').textContent === t,
      `${name(row)} → ${name(col)}: ${dh[row * mh.cols + col].toFixed(4)}`);
  }
  assert.notEqual(await tip.textContent(), `${name(row)} → ${name(col)}: ${data[row * m.cols + col].toFixed(4)}`);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test("a chat template's own tokens are marked apart from the messages' content in the strip", async () => {
  const page = await openPanel(undefined, undefined, { templateTokens: [1, 2] });
  const classes = await page.locator('#token-strip .tok').evaluateAll((xs) => xs.map((x) => x.classList.contains('template')));
  assert.deepEqual(classes.map((c, i) => [i, c]).filter(([, c]) => c).map(([i]) => i), [1, 2]);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('a hostile token renders as text, never as markup', async () => {
  const page = await openPanel({ 3: { text: HOSTILE, display: HOSTILE } });
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
  const maxSizes = await page.evaluate(() => window.__posted
    .filter((m) => m.type === 'rpc' && m.params.maxSize).map((m) => m.params.maxSize));
  assert.ok(maxSizes.length >= layers * heads && maxSizes.every((s) => s === 48), 'thumbnails ask for pooled matrices');
  // Thumbnails draw no labels, and a view of the tokens as they are needs no units: none of the requests asks for them.
  const views = await page.evaluate(() => window.__posted.filter((m) => m.type === 'rpc' && m.method === 'attention/view'));
  assert.ok(views.every((m) => m.params.includeUnits === false), 'no view of the plain tokens asks for units');
  assert.equal(await page.locator('#head-view').isVisible(), false, 'the grid replaces the big heatmap');
  await page.screenshot({ path: path.join(outDir, 'webview-grid.png') });
  await page.click(`.thumb[data-layer="${layers - 1}"][data-head="1"]`);
  await page.waitForSelector(`#app[data-state="painted"][data-layer="${layers - 1}"][data-head="1"]`);
  assert.equal(await page.locator('#head-view').isVisible(), true);
  const state = await page.evaluate(() => window.acquireVsCodeApi && null);
  assert.equal(state, null);
  await page.close();
});

test('all-heads grid honours the view options as the exported grid does: no [CLS]/[SEP] in its thumbnails', async () => {
  const page = await openPanel();
  await page.check('#hide-special');
  await page.waitForSelector('#app[data-state="painted"][data-units]');
  await page.click('#view-grid');
  await page.waitForSelector('#app[data-grid="painted"]');
  const thumbs = await page.evaluate(() => window.__posted.filter((m) => m.type === 'rpc' && m.params.maxSize === 48));
  assert.ok(thumbs.length > 0 && thumbs.every((m) => m.method === 'attention/view' && m.params.hideSpecial === true),
    'every thumbnail asks for the view with the panel\'s options');
  assert.ok(thumbs.every((m) => m.params.includeUnits === false), 'thumbnails ask for no units');
  // The big heatmap labels its rows with the units of the view: it asks for them (the default).
  const head = await page.evaluate(() => window.__posted.filter((m) =>
    m.type === 'rpc' && m.method === 'attention/view' && !m.params.maxSize && m.params.hideSpecial));
  assert.ok(head.length > 0 && head.every((m) => m.params.includeUnits === undefined), 'the big heatmap asks for its units');
  // Layer 0's views with hidden special tokens are recorded: those thumbnails have one pixel per shown token.
  const shown = fixture.rpc['attention/view {"head":0,"hideSpecial":true,"layer":0}'].units.length;
  assert.equal(shown, fixture.analysis.tokens.length - 2);
  const widths = await page.evaluate(() => Array.from(
    document.querySelectorAll('.thumb.painted[data-layer="0"] canvas'), (c) => c.width));
  assert.equal(widths.length, fixture.analysis.model.heads + 1);
  assert.ok(widths.every((w) => w === shown), `thumbnails without [CLS]/[SEP]: ${widths}`);
  await page.close();
});

test('the panel tells the host its view once per change; a repaint of the same view sends nothing', async () => {
  const page = await openPanel();
  const told = () => page.evaluate(() => window.__posted.filter((m) => m.type === 'viewChanged'));
  assert.equal((await told()).length, 1);
  // The host's highlight of the cursor's token repaints the heatmap: no viewChanged, so no answer loop.
  await page.evaluate(() => window.postMessage({ type: 'highlightToken', token: 3 }, '*'));
  await page.waitForTimeout(100);
  assert.equal((await told()).length, 1, 'a repaint of the same view: nothing new to tell');
  // Each tab switch is told once (the host knows which tab shows), with the same layer/head/options.
  await page.locator('#tab-heads').click();
  await page.waitForSelector('#app[data-heads="painted"]');
  await page.locator('#tab-heatmap').click();
  await page.waitForSelector('#app[data-state="painted"]');
  assert.deepEqual((await told()).map((m) => m.tab), ['heatmap', 'heads', 'heatmap']);
  await page.selectOption('#head', '2');
  await page.waitForSelector('#app[data-state="painted"][data-head="2"]');
  const all = await told();
  assert.equal(all.length, 4);
  const expected = { type: 'viewChanged', layer: 0, head: 2, view: 'head', hideSpecial: false, wordLevel: false, tab: 'heatmap' };
  assert.deepEqual(all[3], expected);
  assert.deepEqual(page.errors, []);
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

// ---------- tabs (issue 5): every tab against the recorded real analysis ----------

const rpcOf = (method, params) => fixture.rpc[require('../fixtures/record-fixture.cjs').rpcKey(method, params)];
const decodeData = (r) => matrix.decodeFloat32(r.data, r.rows * r.cols);
const noErrors = async (page) => {
  assert.deepEqual(page.errors, []);
  assert.deepEqual(page.consoleErrors, []);
  assert.equal(await page.evaluate(() => window.__missingRpc), undefined, 'every request is one the fixture recorded');
};

test('tabs: a tablist with roving focus; arrow keys, Home and End move between the eight tabs', async () => {
  const page = await openPanel();
  const tabs = page.locator('[role="tab"]');
  assert.deepEqual(await tabs.allTextContents(), ['Heatmap', 'Heads', 'Graph', 'Lines', 'Distributions', 'Rollout', 'Sections', 'Diff']);
  assert.equal(await page.locator('[role="tab"][tabindex="0"]').count(), 1);
  assert.equal(await page.locator('#tab-heatmap').getAttribute('aria-selected'), 'true');
  await page.locator('#tab-heatmap').focus();
  await page.keyboard.press('ArrowRight');
  await page.waitForSelector('#app[data-tab="heads"]');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'tab-heads');
  assert.equal(await page.locator('#panel-heads').isVisible(), true);
  assert.equal(await page.locator('#panel-heatmap').isVisible(), false);
  assert.equal(await page.locator('#tab-heads').getAttribute('tabindex'), '0');
  assert.equal(await page.locator('#tab-heatmap').getAttribute('tabindex'), '-1');
  await page.keyboard.press('End');
  await page.waitForSelector('#app[data-tab="diff"]');
  await page.keyboard.press('ArrowRight');
  await page.waitForSelector('#app[data-tab="heatmap"]');
  await page.keyboard.press('ArrowLeft');
  await page.waitForSelector('#app[data-tab="diff"]');
  await page.keyboard.press('Home');
  await page.waitForSelector('#app[data-tab="heatmap"]');
  assert.equal(await page.locator('#head').inputValue(), '0', 'arrows on the tablist do not step the head');
  // Each tab's own hint in the status line (the heatmap's keys are not the Graph's); a message stays over them.
  const hints = {};
  for (const t of ['heatmap', 'heads', 'graph', 'lines', 'distributions', 'rollout', 'sections', 'diff']) {
    await page.click(`#tab-${t}`);
    await page.waitForSelector(`#app[data-tab="${t}"]`);
    hints[t] = await page.locator('#status').textContent();
    assert.ok(hints[t].startsWith('fixture.txt:1 — '), hints[t]);
  }
  assert.equal(new Set(Object.values(hints)).size, 8, 'eight different hints');
  assert.match(hints.heatmap, /arrow keys step layer\/head/);
  assert.doesNotMatch(hints.graph, /arrow keys|rows: query/);
  await page.evaluate(() => window.postMessage({ type: 'busy', message: 'The text changed: run it again.' }, '*'));
  await page.click('#tab-heads');
  await page.waitForSelector('#app[data-tab="heads"]');
  assert.equal(await page.locator('#status').textContent(), 'The text changed: run it again.');
  // A cancelled analysis (#13 point 3): the panel says so and shows the analysis it showed, not "Analyzing…" forever.
  await page.evaluate(() => window.postMessage({ type: 'busy', message: 'Analyzing 3093 characters…' }, '*'));
  await page.evaluate(() => window.postMessage({ type: 'idle', message: 'Cancelled: showing the previous analysis (fixture.txt:1).' }, '*'));
  await page.waitForFunction(() => document.getElementById('status').textContent.startsWith('Cancelled: showing the previous'));
  assert.equal(await page.locator('#app').getAttribute('data-state'), 'painted');
  await page.click('#tab-heatmap');
  for (const t of ['heatmap', 'heads', 'graph', 'lines', 'distributions', 'rollout', 'sections', 'diff']) {
    assert.equal(await page.locator(`#tab-${t}`).getAttribute('aria-controls'), `panel-${t}`);
    assert.equal(await page.locator(`#panel-${t}`).getAttribute('role'), 'tabpanel');
  }
  await noErrors(page);
  await page.close();
});

test('heatmap: hide special tokens and word level switch to attention/view with its units', async () => {
  const page = await openPanel();
  const before = await canvasPixels(page);
  await page.check('#hide-special');
  await page.waitForSelector('#app[data-state="painted"][data-units]');
  const v = rpcOf('attention/view', { layer: 0, head: 0, hideSpecial: true });
  assert.equal(await page.evaluate(() => document.getElementById('heatmap').dataset.rows), String(v.rows));
  assert.equal(v.rows, fixture.analysis.tokens.length - 2);
  const hidden = await canvasPixels(page);
  assert.notEqual(hidden.hash, before.hash);
  // Hover cell (0, 1): the tooltip names the units and shows the view's renormalised value.
  const geo = await page.evaluate(() => ({ ...document.getElementById('heatmap').dataset }));
  const box = await page.locator('#heatmap').boundingBox();
  const cell = Number(geo.cell);
  await page.mouse.move(box.x + Number(geo.left) + 1.5 * cell, box.y + Number(geo.top) + 0.5 * cell);
  await page.locator('#tooltip').waitFor({ state: 'visible' });
  const d = decodeData(v);
  assert.equal(await page.locator('#tooltip').textContent(), `${v.units[0].display} → ${v.units[1].display}: ${d[1].toFixed(4)}`);
  await page.check('#word-level');
  const both = rpcOf('attention/view', { layer: 0, head: 0, hideSpecial: true, wordLevel: true });
  await page.waitForSelector(`#app[data-units="${both.units.length}"]`);
  assert.ok(both.units.length < v.units.length, 'wasn + \' + t merge');
  await page.screenshot({ path: path.join(outDir, 'tab-heatmap-words.png') });
  // Word level: the merged word's tooltip text is the joined pieces.
  const merged = both.units.find((u) => u.lastToken > u.firstToken);
  assert.ok(merged, 'a merged word');
  await page.uncheck('#hide-special');
  await page.uncheck('#word-level');
  await page.waitForFunction(() => !('units' in document.getElementById('app').dataset));
  await page.waitForFunction(() => document.getElementById('heatmap').dataset.rows === '19');
  const posted = await page.evaluate(() => window.__posted.filter((m) => m.type === 'rpc').map((m) => m.method));
  assert.ok(posted.every((m) => m === 'attention/view'));
  await page.screenshot({ path: path.join(outDir, 'tab-heatmap-view.png') });
  await noErrors(page);
  await page.close();
});

test('heads: the table shows the recorded metrics, sorts by a column, a row opens that head', async () => {
  const page = await openPanel();
  await page.click('#tab-heads');
  await page.waitForSelector('#app[data-heads="painted"]');
  const metrics = rpcOf('attention/metrics', {}).metrics;
  const { layers, heads } = fixture.analysis.model;
  assert.equal(await page.locator('#heads-body tr').count(), layers * heads);
  const first = await page.locator('#heads-body tr').first().locator('td').evaluateAll((tds) => Object.fromEntries(tds.map((t) => [t.dataset.key, t.textContent])));
  const m0 = metrics[0];
  assert.equal(first.layer, '0'); assert.equal(first.head, '0');
  for (const k of ['entropy', 'normalizedEntropy', 'meanDistance', 'firstToken', 'previousToken', 'self', 'induction', 'selfDistance']) assert.equal(first[k], m0[k].toFixed(3), k);
  const q = rpcOf('attention/modularityAll', {}).heads[0];
  assert.equal(first.q, q.q.toFixed(3));
  assert.equal(await page.locator('#heads-grid .cell').count(), layers * heads);
  await page.screenshot({ path: path.join(outDir, 'tab-heads.png'), fullPage: true });
  // Sort by entropy: descending first, then ascending.
  await page.click('#heads-head th[data-key="entropy"] button');
  await page.waitForSelector('#heads-head th[data-key="entropy"][aria-sort="descending"]');
  const top = metrics.slice().sort((a, b) => b.entropy - a.entropy)[0];
  const row0 = page.locator('#heads-body tr').first();
  assert.deepEqual([await row0.getAttribute('data-layer'), await row0.getAttribute('data-head')], [String(top.layer), String(top.head)]);
  await page.click('#heads-head th[data-key="entropy"] button');
  await page.waitForSelector('#heads-head th[data-key="entropy"][aria-sort="ascending"]');
  const low = metrics.slice().sort((a, b) => a.entropy - b.entropy)[0];
  assert.equal(await page.locator('#heads-body tr').first().getAttribute('data-layer'), String(low.layer));
  const vals = await page.locator('#heads-body td[data-key="entropy"]').evaluateAll((tds) => tds.map((t) => Number(t.dataset.value)));
  assert.deepEqual(vals, vals.slice().sort((a, b) => a - b));
  // Colour the grid by induction: the grid's labels follow.
  await page.selectOption('#heads-metric', 'induction');
  await page.waitForFunction(() => /induction/.test(document.getElementById('heads-summary').textContent));
  // Click a row: the Heatmap tab opens on that head.
  await page.click('#heads-body tr[data-layer="3"][data-head="5"]');
  await page.waitForSelector('#app[data-tab="heatmap"][data-state="painted"][data-layer="3"][data-head="5"]');
  assert.equal(await page.locator('#head').inputValue(), '5');
  // Keyboard: Enter on a focused row opens it too; a grid cell click as well.
  await page.click('#tab-heads');
  await page.waitForSelector('#app[data-tab="heads"]');
  await page.locator('#heads-body tr[data-layer="1"][data-head="2"]').focus();
  await page.keyboard.press('Enter');
  await page.waitForSelector('#app[data-tab="heatmap"][data-layer="1"][data-head="2"]');
  await page.click('#tab-heads');
  await page.click('#heads-grid .cell[data-layer="5"][data-head="11"]');
  await page.waitForSelector('#app[data-tab="heatmap"][data-layer="5"][data-head="11"]');
  await noErrors(page);
  await page.close();
});

const pixelHash = (page, id) => page.evaluate((id) => {
  const c = document.getElementById(id);
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let h = 0, lit = 0;
  for (let i = 0; i < d.length; i += 4) { h = (h * 31 + d[i] * 7 + d[i + 1] * 3 + d[i + 2] + d[i + 3]) >>> 0; if (d[i + 3] > 0) lit++; }
  return { hash: h, lit };
}, id);

test('rollout: the recorded rollout matrix as a heatmap, different from the head heatmap', async () => {
  const page = await openPanel();
  const head = await canvasPixels(page);
  await page.click('#tab-rollout');
  await page.waitForSelector('#app[data-rollout="painted"]');
  const r = rpcOf('attention/rollout', {});
  const geo = await page.evaluate(() => ({ ...document.getElementById('rollout-canvas').dataset }));
  assert.equal(geo.rows, String(r.rows));
  // Its colour scale (#13 point 13): 0 to the rollout's largest value, beside the heatmap.
  const values = matrix.decodeFloat32(r.data, r.rows * r.cols);
  const largest = values.reduce((a, v) => Math.max(a, v), 0);
  assert.ok(Math.abs(Number(await page.locator('#rollout-legend').getAttribute('data-max')) - largest) < 1e-6);
  assert.ok(await page.locator('#rollout-legend').isVisible());
  const [canvasBox, legendBox] = [await page.locator('#rollout-canvas').boundingBox(), await page.locator('#rollout-legend').boundingBox()];
  assert.ok(legendBox.x >= canvasBox.x + canvasBox.width - 1 && legendBox.y < canvasBox.y + canvasBox.height, 'beside the heatmap, not under it');
  const px = await page.evaluate(() => {
    const c = document.getElementById('rollout-canvas');
    const { left, top, cell, rows, cols } = c.dataset;
    const dpr = window.devicePixelRatio || 1;
    const d = c.getContext('2d').getImageData(left * dpr, top * dpr, cols * cell * dpr, rows * cell * dpr).data;
    let h = 0; for (let i = 0; i < d.length; i += 4) h = (h * 31 + d[i] * 7 + d[i + 1] * 3 + d[i + 2]) >>> 0;
    return h;
  });
  assert.notEqual(px, head.hash, 'rollout pixels differ from head 0');
  const max = Math.max(...decodeData(r));
  assert.match(await page.locator('#rollout-caption').textContent(), new RegExp(`through layer ${r.layer}.*${max.toFixed(3)}`));
  await page.screenshot({ path: path.join(outDir, 'tab-rollout.png'), fullPage: true });
  // The view options apply to the rollout too.
  await page.check('#hide-special');
  await page.waitForFunction((n) => document.getElementById('rollout-canvas').dataset.rows === String(n), r.rows - 2);
  await noErrors(page);
  await page.close();
});

test('distributions: histogram bars of the current head and of a metric across heads, bins as recorded', async () => {
  const page = await openPanel();
  await page.click('#tab-distributions');
  await page.waitForSelector('#app[data-distributions="painted"]');
  const w = rpcOf('attention/histogram', { bins: 20, layer: 0, head: 0 });
  const ds = await page.evaluate(() => ({ ...document.getElementById('dist-weights').dataset }));
  assert.equal(ds.bins, '20');
  assert.equal(ds.bars, String(w.counts.filter((c) => c > 0).length));
  assert.equal(ds.total, String(w.total));
  assert.match(await page.locator('#dist-weights-title').textContent(), new RegExp(`layer 0, head 0 \\(${w.total} weights, 20 bins\\)`));
  const mh = rpcOf('attention/histogram', { bins: 20, metric: 'selfDistance' });
  const dm = await page.evaluate(() => ({ ...document.getElementById('dist-metrics').dataset }));
  assert.equal(dm.bins, '20');
  assert.equal(dm.total, String(mh.total));
  assert.ok((await pixelHash(page, 'dist-weights')).lit > 500);
  await page.screenshot({ path: path.join(outDir, 'tab-distributions.png'), fullPage: true });
  // Another head and another metric.
  const before = await pixelHash(page, 'dist-weights');
  await page.selectOption('#head', '3');
  await page.waitForFunction(() => /head 3/.test(document.getElementById('dist-weights-title').textContent));
  assert.notEqual((await pixelHash(page, 'dist-weights')).hash, before.hash);
  await page.selectOption('#dist-metric', 'entropy');
  await page.waitForFunction(() => /entropy/.test(document.getElementById('dist-metric-title').textContent));
  await noErrors(page);
  await page.close();
});

test('graph: n nodes on a stable circle, edges above the threshold, communities and Q from attention/modularity', async () => {
  const page = await openPanel();
  await page.click('#tab-graph');
  await page.waitForSelector('#app[data-graph="painted"]');
  const n = fixture.analysis.tokens.length;
  const mod = rpcOf('attention/modularity', { layer: 0, head: 0 });
  const ds = await page.evaluate(() => ({ ...document.getElementById('graph-canvas').dataset }));
  assert.equal(ds.nodes, String(n));
  const d = decodeData(fixture.matrices['0/0']);
  const expectEdges = (t) => { let e = 0; for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (i !== j && d[i * n + j] >= t) e++; return e; };
  assert.equal(ds.edges, String(expectEdges(0.1)));
  assert.match(await page.locator('#graph-q').textContent(), new RegExp(`Q = ${mod.q.toFixed(3)} · ${mod.communityCount} communities`));
  const first = await pixelHash(page, 'graph-canvas');
  await page.screenshot({ path: path.join(outDir, 'tab-graph.png'), fullPage: true });
  // Slider: a higher threshold, fewer edges.
  await page.locator('#graph-threshold').fill('0.3');
  await page.waitForFunction((e) => document.getElementById('graph-canvas').dataset.edges === String(e), expectEdges(0.3));
  // Stable: back to 0.1 draws the same pixels.
  await page.locator('#graph-threshold').fill('0.1');
  await page.waitForFunction((e) => document.getElementById('graph-canvas').dataset.edges === String(e), expectEdges(0.1));
  assert.equal((await pixelHash(page, 'graph-canvas')).hash, first.hash, 'same layout and pixels for the same input');
  // Keyboard: arrows on the canvas step a focus node; its name, community and edge count are said in text.
  await page.locator('#graph-canvas').focus();
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('ArrowRight');
  const out2 = Array.from({ length: n }, (_, j) => j).filter((j) => j !== 1 && d[n + j] >= 0.1).length;
  await page.waitForFunction((t) => document.getElementById('graph-q').textContent.endsWith(t), `the: community ${mod.communities[1]}, ${out2} edges out`);
  assert.equal(await page.locator('#head').inputValue(), '0', 'arrows on the graph do not step the head');
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => document.getElementById('graph-q').textContent.endsWith('communities'));
  // The layer mean.
  await page.selectOption('#graph-source', 'mean');
  const mm = rpcOf('attention/modularity', { layer: 0, head: -1 });
  await page.waitForFunction((q) => document.getElementById('graph-q').textContent.includes(`Q = ${q}`), mm.q.toFixed(3));
  await noErrors(page);
  await page.close();
});

test('lines: query and key columns of tokens, one colour per head, hovering a token isolates its lines', async () => {
  const page = await openPanel([undefined, undefined, { text: HOSTILE, display: HOSTILE }]);
  await page.click('#tab-lines');
  await page.waitForSelector('#app[data-lines="painted"]');
  const n = fixture.analysis.tokens.length;
  const { heads } = fixture.analysis.model;
  assert.equal(await page.locator('#lines-left .lines-tok').count(), n);
  assert.equal(await page.locator('#lines-right .lines-tok').count(), n);
  assert.equal(await page.locator('#lines-left .lines-tok[data-index="2"]').textContent(), HOSTILE);
  assert.equal(await page.locator('img').count(), 0);
  assert.equal(await page.locator('#lines-heads input').count(), heads);
  const countLines = (hs, isolate) => {
    let c = 0;
    for (const h of hs) {
      const d = decodeData(fixture.matrices[`0/${h}`]);
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
        if (isolate && isolate.side === 'left' && i !== isolate.token) continue;
        if (isolate && isolate.side === 'right' && j !== isolate.token) continue;
        if (d[i * n + j] >= 0.02) c++;
      }
    }
    return c;
  };
  const all = Array.from({ length: heads }, (_, h) => h);
  const lines = () => page.evaluate(() => document.getElementById('lines-canvas').dataset.lines);
  // Head 0 is selected: its lines alone, in its colour; "all" shows every head.
  assert.deepEqual(await page.locator('#lines-heads input').evaluateAll((cs) => cs.map((c) => c.checked)), all.map((h) => h === 0));
  assert.equal(await lines(), String(countLines([0])));
  await page.screenshot({ path: path.join(outDir, 'tab-lines-head0.png'), fullPage: true });
  await page.click('#lines-all');
  assert.equal(await lines(), String(countLines(all)));
  const full = await pixelHash(page, 'lines-canvas');
  assert.ok(full.lit > 1000);
  await page.screenshot({ path: path.join(outDir, 'tab-lines.png'), fullPage: true });
  await page.hover('#lines-left .lines-tok[data-index="4"]');
  await page.waitForFunction(() => document.getElementById('lines-canvas').dataset.isolated === 'left:4');
  assert.equal(await lines(), String(countLines(all, { side: 'left', token: 4 })));
  const iso = await pixelHash(page, 'lines-canvas');
  assert.ok(iso.lit < full.lit, 'fewer pixels when isolated');
  await page.screenshot({ path: path.join(outDir, 'tab-lines-hover.png'), fullPage: true });
  const hovered = await page.evaluate(() => window.__posted.filter((m) => m.type === 'hoverToken').at(-1));
  assert.equal(hovered.token, 4);
  await page.hover('#lines-right .lines-tok[data-index="0"]');
  await page.waitForFunction(() => document.getElementById('lines-canvas').dataset.isolated === 'right:0');
  assert.equal(await lines(), String(countLines(all, { side: 'right', token: 0 })));
  await page.mouse.move(2, 2);
  await page.waitForFunction(() => document.getElementById('lines-canvas').dataset.isolated === '');
  // Hide every head but 3: only its lines stay.
  for (const h of all) if (h !== 3) await page.uncheck(`#lines-heads input[data-head="${h}"]`);
  assert.equal(await lines(), String(countLines([3])));
  // Keyboard: focusing a token isolates it as well.
  await page.locator('#lines-left .lines-tok[data-index="1"]').focus();
  await page.waitForFunction(() => document.getElementById('lines-canvas').dataset.isolated === 'left:1');
  await page.keyboard.press('ArrowRight');
  await page.waitForFunction(() => document.getElementById('lines-canvas').dataset.isolated === 'right:1');
  await noErrors(page);
  await page.close();
});

test('themes: tabs render with dark and high-contrast theme variables (screenshots to look at)', async () => {
  const themes = {
    dark: { '--vscode-foreground': '#cccccc', '--vscode-editor-background': '#1e1e1e', '--vscode-descriptionForeground': '#9d9d9d', '--vscode-focusBorder': '#007fd4', '--vscode-charts-blue': '#3794ff', '--vscode-panel-border': '#80808059' },
    hc: { '--vscode-foreground': '#ffffff', '--vscode-editor-background': '#000000', '--vscode-descriptionForeground': '#ffffff', '--vscode-focusBorder': '#f38518', '--vscode-contrastBorder': '#6fc3df', '--vscode-charts-blue': '#3794ff', '--vscode-panel-border': '#6fc3df' },
  };
  for (const [name, vars] of Object.entries(themes)) {
    const page = await openPanel();
    await page.evaluate(({ vars, name }) => {
      for (const [k, v] of Object.entries(vars)) document.documentElement.style.setProperty(k, v);
      document.body.classList.add(name === 'hc' ? 'vscode-high-contrast' : 'vscode-dark');
    }, { vars, name });
    for (const tab of ['heads', 'graph', 'lines', 'distributions', 'rollout']) {
      await page.click(`#tab-${tab}`);
      await page.waitForSelector(`#app[data-${tab}="painted"]`);
      await page.screenshot({ path: path.join(outDir, `tab-${tab}-${name}.png`), fullPage: tab !== 'heads' });
    }
    // The flow bars beside the rollout, in this theme.
    await page.selectOption('#flow-token', '4');
    await page.waitForSelector('#app[data-flow="painted"]');
    await page.screenshot({ path: path.join(outDir, `tab-rollout-flow-${name}.png`), fullPage: true });
    // Text drawn on the canvases takes the theme's foreground: bright pixels on the dark graph.
    await page.click('#tab-graph');
    await page.waitForSelector('#app[data-graph="painted"]');
    const bright = await page.evaluate(() => {
      const c = document.getElementById('graph-canvas');
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 200 && d[i] > 180 && d[i + 1] > 180 && d[i + 2] > 180) n++;
      return n;
    });
    assert.ok(bright > 50, `light label pixels on ${name}: ${bright}`);
    await noErrors(page);
    await page.close();
  }
});

test('the chosen tab and its options survive hiding the panel (getState)', async () => {
  const page = await openPanel();
  await page.click('#tab-graph');
  await page.waitForSelector('#app[data-graph="painted"]');
  await page.locator('#graph-threshold').fill('0.25');
  await page.waitForFunction(() => document.getElementById('graph-threshold-value').textContent === '0.25');
  const saved = await page.evaluate(() => window.__state);
  assert.equal(saved.options.tab, 'graph');
  await page.close();
  const again = await openPanel(undefined, saved);
  await again.waitForSelector('#app[data-tab="graph"][data-graph="painted"]');
  assert.equal(await again.locator('#tab-graph').getAttribute('aria-selected'), 'true');
  assert.equal(await again.locator('#graph-threshold').inputValue(), '0.25');
  await noErrors(again);
  await again.close();
});

test('the Rollout tab\'s picked token survives hiding the panel: its flow is shown again', async () => {
  const page = await openPanel();
  await page.click('#tab-rollout');
  await page.waitForSelector('#app[data-rollout="painted"]');
  await page.selectOption('#flow-token', '5');
  await page.waitForSelector('#app[data-flow="painted"]');
  const saved = await page.evaluate(() => window.__state);
  assert.equal(saved.flowToken, 5);
  await page.close();
  const again = await openPanel(undefined, saved);
  await again.waitForSelector('#app[data-tab="rollout"][data-flow="painted"]');
  assert.equal(await again.locator('#flow-token').inputValue(), '5');
  assert.equal(await again.locator('#flow-figure').getAttribute('data-token'), '5');
  await noErrors(again);
  await again.close();
});

// ---------- view options in Graph and Lines, attention flow in Rollout ----------

const SPECIAL = /^\[(CLS|SEP)\]$/;
/** Edges i→j (i ≠ j) of an n×n matrix at or above t. */
const edgesAbove = (d, n, t) => { let e = 0; for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (i !== j && d[i * n + j] >= t) e++; return e; };
const outEdges = (d, n, i, t) => Array.from({ length: n }, (_, j) => j).filter((j) => j !== i && d[i * n + j] >= t).length;

test('graph: hide special tokens and word level draw the view\'s units as nodes, communities of their first token', async () => {
  const page = await openPanel();
  await page.click('#tab-graph');
  await page.waitForSelector('#app[data-graph="painted"]');
  const n = fixture.analysis.tokens.length;
  const mod = rpcOf('attention/modularity', { layer: 0, head: 0 });
  await page.check('#hide-special');
  const v = rpcOf('attention/view', { layer: 0, head: 0, hideSpecial: true });
  assert.equal(v.units.length, n - 2);
  await page.waitForSelector(`#app[data-graph-nodes="${v.rows}"]`);
  const ds = await page.evaluate(() => ({ ...document.getElementById('graph-canvas').dataset }));
  assert.equal(ds.nodes, String(n - 2));
  const d = decodeData(v);
  assert.equal(ds.edges, String(edgesAbove(d, v.rows, 0.1)), 'edges of the renormalised view');
  assert.match(await page.locator('#graph-note').textContent(), /^17 nodes of 19 tokens: special tokens hidden.*Communities and Q are computed on the full token graph/);
  assert.match(await page.locator('#graph-q').textContent(), new RegExp(`Q = ${mod.q.toFixed(3)} · ${mod.communityCount} communities$`));
  // Step through every node with the keyboard: names, communities and edge counts are the view's, no [CLS]/[SEP].
  await page.locator('#graph-canvas').focus();
  const { tokens } = require('../unit/lib.cjs');
  for (let k = 0; k < v.rows; k++) {
    await page.keyboard.press('ArrowRight');
    const name = tokens.tokenLabel(v.units[k]);
    assert.doesNotMatch(name, SPECIAL);
    await page.waitForFunction((t) => document.getElementById('graph-q').textContent.endsWith(t),
      `${name}: community ${mod.communities[v.units[k].firstToken]}, ${outEdges(d, v.rows, k, 0.1)} edges out`);
    const hovered = await page.evaluate(() => window.__posted.filter((m) => m.type === 'hoverToken').at(-1));
    assert.equal(hovered.token, v.units[k].firstToken, 'the editor tints the node\'s token');
  }
  await page.keyboard.press('Escape');
  // Word level as well: one node per word; a merged word takes its first piece's community.
  await page.check('#word-level');
  const both = rpcOf('attention/view', { layer: 0, head: 0, hideSpecial: true, wordLevel: true });
  assert.ok(both.units.length < v.units.length);
  await page.waitForSelector(`#app[data-graph-nodes="${both.units.length}"]`);
  const bd = decodeData(both);
  assert.equal(await page.evaluate(() => document.getElementById('graph-canvas').dataset.edges), String(edgesAbove(bd, both.rows, 0.1)));
  const merged = both.units.findIndex((u) => u.lastToken > u.firstToken);
  const mixed = both.units.filter((u) => new Set(mod.communities.slice(u.firstToken, u.lastToken + 1)).size > 1).length;
  assert.match(await page.locator('#graph-note').textContent(), new RegExp(`^${both.units.length} nodes of 19 tokens: .*merged into words.*first token's community \\(${mixed} word`));
  await page.locator('#graph-canvas').focus();
  for (let k = 0; k <= merged; k++) await page.keyboard.press('ArrowRight');
  await page.waitForFunction((t) => document.getElementById('graph-q').textContent.endsWith(t),
    `${tokens.tokenLabel(both.units[merged])}: community ${mod.communities[both.units[merged].firstToken]}, ${outEdges(bd, both.rows, merged, 0.1)} edges out`);
  assert.equal((await page.evaluate(() => window.__posted.filter((m) => m.type === 'hoverToken').at(-1))).token, both.units[merged].firstToken);
  await page.screenshot({ path: path.join(outDir, 'tab-graph-words.png'), fullPage: true });
  // Back to tokens: every node again, no note.
  await page.uncheck('#hide-special');
  await page.uncheck('#word-level');
  await page.waitForSelector(`#app[data-graph-nodes="${n}"]`);
  assert.equal(await page.locator('#graph-note').isVisible(), false);
  await noErrors(page);
  await page.close();
});

test('lines: hide special tokens leaves no [CLS]/[SEP] buttons; word level has one button per unit; a word hovers its first token', async () => {
  const page = await openPanel();
  await page.click('#tab-lines');
  await page.waitForSelector('#app[data-lines="painted"]');
  const n = fixture.analysis.tokens.length;
  const { heads } = fixture.analysis.model;
  const lines = () => page.evaluate(() => document.getElementById('lines-canvas').dataset.lines);
  const viewLines = (flags, hs, isolate) => {
    let c = 0;
    for (const h of hs) {
      const r = rpcOf('attention/view', { layer: 0, head: h, ...flags });
      const d = decodeData(r), m = r.rows;
      for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) {
        if (isolate && isolate.side === 'left' && i !== isolate.token) continue;
        if (isolate && isolate.side === 'right' && j !== isolate.token) continue;
        if (d[i * m + j] >= 0.02) c++;
      }
    }
    return c;
  };
  await page.check('#hide-special');
  await page.waitForSelector(`#app[data-lines-rows="${n - 2}"]`);
  for (const side of ['left', 'right']) {
    const texts = await page.locator(`#lines-${side} .lines-tok`).allTextContents();
    assert.equal(texts.length, n - 2);
    assert.ok(texts.every((t) => !SPECIAL.test(t)), texts.join(' '));
  }
  assert.equal(await lines(), String(viewLines({ hideSpecial: true }, [0])));
  assert.match(await page.locator('#lines-note').textContent(), /^17 rows of 19 tokens: special tokens hidden/);
  await page.click('#lines-all');
  assert.equal(await lines(), String(viewLines({ hideSpecial: true }, Array.from({ length: heads }, (_, h) => h))));
  await page.screenshot({ path: path.join(outDir, 'tab-lines-nospecial.png'), fullPage: true });
  // Word level (special tokens stay hidden): one button per unit of the view.
  await page.check('#word-level');
  const flags = { hideSpecial: true, wordLevel: true };
  const both = rpcOf('attention/view', { layer: 0, head: 0, ...flags });
  await page.waitForSelector(`#app[data-lines-rows="${both.units.length}"]`);
  assert.equal(await page.locator('#lines-left .lines-tok').count(), both.units.length);
  assert.equal(await page.locator('#lines-right .lines-tok').count(), both.units.length);
  const merged = both.units.findIndex((u) => u.lastToken > u.firstToken);
  const { tokens } = require('../unit/lib.cjs');
  assert.equal(await page.locator(`#lines-left .lines-tok[data-index="${merged}"]`).textContent(), tokens.tokenLabel(both.units[merged]));
  await page.hover(`#lines-left .lines-tok[data-index="${merged}"]`);
  await page.waitForFunction((k) => document.getElementById('lines-canvas').dataset.isolated === `left:${k}`, merged);
  const all = Array.from({ length: heads }, (_, h) => h);
  assert.equal(await lines(), String(viewLines(flags, all, { side: 'left', token: merged })));
  assert.equal((await page.evaluate(() => window.__posted.filter((m) => m.type === 'hoverToken').at(-1))).token, both.units[merged].firstToken);
  await page.screenshot({ path: path.join(outDir, 'tab-lines-words.png'), fullPage: true });
  // Keyboard still moves between the columns.
  await page.locator('#lines-left .lines-tok[data-index="1"]').focus();
  await page.keyboard.press('ArrowRight');
  await page.waitForFunction(() => document.getElementById('lines-canvas').dataset.isolated === 'right:1');
  await noErrors(page);
  await page.close();
});

test('distributions: hide special tokens asks for the weights histogram with excludeSpecial', async () => {
  const page = await openPanel();
  await page.click('#tab-distributions');
  await page.waitForSelector('#app[data-distributions="painted"]');
  const all = rpcOf('attention/histogram', { bins: 20, layer: 0, head: 0 });
  const w = rpcOf('attention/histogram', { bins: 20, layer: 0, head: 0, excludeSpecial: true });
  assert.ok(w.total < all.total);
  await page.check('#hide-special');
  await page.waitForFunction((t) => document.getElementById('dist-weights').dataset.total === String(t), w.total);
  assert.equal(await page.evaluate(() => document.getElementById('dist-weights').dataset.bars), String(w.counts.filter((c) => c > 0).length));
  assert.match(await page.locator('#dist-weights-title').textContent(), new RegExp(`layer 0, head 0, special tokens excluded \\(${w.total} weights, 20 bins\\)`));
  const asked = await page.evaluate(() => window.__posted.filter((m) => m.type === 'rpc' && m.method === 'attention/histogram' && m.params.excludeSpecial === true).length);
  assert.ok(asked >= 1);
  await noErrors(page);
  await page.close();
});

test('rollout: picking a token shows its rollout row and its attention flow as recorded; stale answers are ignored', async () => {
  const page = await openPanel();
  await page.click('#tab-rollout');
  await page.waitForSelector('#app[data-rollout="painted"]');
  const n = fixture.analysis.tokens.length;
  const roll = rpcOf('attention/rollout', {});
  const rd = decodeData(roll);
  const flowOf = (t) => rpcOf('attention/flow', { token: t });
  assert.equal(await page.locator('#flow-figure').isVisible(), false, 'nothing is computed before a pick');
  assert.equal(await page.locator('#flow-token option').count(), n + 1);
  // Pick token 4 with the select, but hold its answer back: the panel says it is computing.
  await page.evaluate(() => { window.__hold = (key) => key === 'attention/flow {"token":4}'; });
  await page.selectOption('#flow-token', '4');
  await page.waitForSelector('#app[data-flow="computing"]');
  assert.match(await page.locator('#flow-status').textContent(), /computing the attention flow of “fox”/);
  // Meanwhile a click on row 6's cells picks token 6, which answers first.
  const geo = await page.evaluate(() => ({ ...document.getElementById('rollout-canvas').dataset }));
  const box = await page.locator('#rollout-canvas').boundingBox();
  const cell = Number(geo.cell);
  await page.mouse.click(box.x + Number(geo.left) + 2.5 * cell, box.y + Number(geo.top) + 6.5 * cell);
  await page.waitForSelector('#app[data-flow="painted"]');
  assert.equal(await page.locator('#flow-token').inputValue(), '6');
  // The superseded request was cancelled.
  const posted = await page.evaluate(() => window.__posted);
  const req4 = posted.find((m) => m.type === 'rpc' && m.method === 'attention/flow' && m.params.token === 4);
  assert.ok(posted.some((m) => m.type === 'cancelRpc' && m.requestId === req4.requestId), 'cancelRpc for token 4');
  // Now the stale answer for token 4 arrives: it changes nothing.
  await page.evaluate(() => { window.__hold = undefined; for (const m of window.__held) window.postMessage(m, '*'); });
  await page.waitForTimeout(150);
  const check = async (t) => {
    const f = flowOf(t);
    assert.equal(await page.locator('#flow-figure').getAttribute('data-token'), String(t));
    const cells = await page.locator('#flow-body td').evaluateAll((tds) => tds.map((td) => ({ kind: td.dataset.kind, value: Number(td.dataset.value), title: td.title })));
    const flow = cells.filter((c) => c.kind === 'flow').map((c) => c.value);
    const rollout = cells.filter((c) => c.kind === 'rollout').map((c) => c.value);
    assert.deepEqual(flow, f.flow, `flow bars of token ${t} = the backend's answer`);
    assert.deepEqual(rollout, Array.from(rd.subarray(t * n, (t + 1) * n)), `rollout bars = row ${t} of the rollout`);
    assert.match(cells.find((c) => c.kind === 'flow').title, new RegExp(`: ${f.flow[0].toFixed(6)}$`));
    assert.match(await page.locator('#flow-caption').textContent(), new RegExp(`through layer ${f.layer} .*Computed in ${f.elapsedMs.toFixed(0)} ms\\.$`));
    const aria = await page.locator('#flow-table').getAttribute('aria-label');
    assert.ok(aria.includes(`flow ${f.flow[n - 1].toFixed(4)}`), aria);
    assert.equal(await page.locator('#flow-body tr.source').getAttribute('data-index'), String(t));
  };
  await check(6);
  assert.ok(!(await page.locator('#status').textContent()).startsWith('Could not load'), 'a cancelled request is no error');
  await page.screenshot({ path: path.join(outDir, 'tab-rollout-flow.png'), fullPage: true });
  // Keyboard on the heatmap: down picks the next row (and does not step the layer).
  await page.locator('#rollout-canvas').focus();
  await page.keyboard.press('ArrowDown');
  await page.waitForSelector('#flow-figure[data-token="7"]');
  await page.waitForSelector('#app[data-flow="painted"]');
  await check(7);
  assert.equal(await page.locator('#layer').inputValue(), '0');
  // A partial answer (the time budget ran out: no normalised flow, null where not computed) shows the exact raw
  // max-flow where computed and a dash with the upper bound elsewhere; nothing is made up.
  const f8 = flowOf(8);
  const partial = { ...f8, complete: false, raw: f8.raw.map((v, j) => (j % 3 === 1 ? null : v)) };
  delete partial.flow;
  await page.evaluate((f) => { window.__override = { 'attention/flow {"token":8}': f }; }, partial);
  await page.keyboard.press('ArrowDown');
  await page.waitForSelector('#app[data-flow="partial"]');
  assert.match(await page.locator('#flow-caption').textContent(), new RegExp(`Partial: .* after ${n - Math.floor((n + 1) / 3)} of ${n} inputs`));
  assert.match(await page.locator('#flow-status').textContent(), /\(partial\)$/);
  const pcells = await page.locator('#flow-body td[data-kind="flow"]').evaluateAll((tds) => tds.map((td) => ({ missing: td.dataset.missing === 'true', value: td.dataset.value, text: td.textContent, title: td.title })));
  pcells.forEach((c, j) => {
    if (j % 3 === 1) {
      assert.ok(c.missing && c.text === '—', `input ${j} not computed: ${JSON.stringify(c)}`);
      assert.match(c.title, new RegExp(`at most ${f8.upperBound[j].toFixed(6)}\\)$`));
    } else assert.equal(Number(c.value), f8.raw[j], `input ${j}: the exact raw max-flow`);
  });
  // Hide special tokens and word level: flow summed over each word's pieces, renormalised without [CLS]/[SEP].
  await page.keyboard.press('ArrowUp');
  await page.waitForSelector('#flow-figure[data-token="7"]');
  await page.check('#hide-special');
  await page.check('#word-level');
  const both = rpcOf('attention/rollout', { hideSpecial: true, wordLevel: true });
  await page.waitForFunction((r) => document.getElementById('rollout-canvas').dataset.rows === String(r), both.rows);
  await page.waitForFunction((r) => document.querySelectorAll('#flow-body tr').length === r, both.units.length);
  const f7 = flowOf(7).flow, hidden = f7[0] + f7[n - 1];
  const expected = both.units.map((u) => { let s = 0; for (let t = u.firstToken; t <= u.lastToken; t++) s += f7[t]; return s / (1 - hidden); });
  const got = await page.locator('#flow-body td[data-kind="flow"]').evaluateAll((tds) => tds.map((td) => Number(td.dataset.value)));
  got.forEach((g, k) => assert.ok(Math.abs(g - expected[k]) < 1e-12, `unit ${k}: ${g} vs ${expected[k]}`));
  const heads = await page.locator('#flow-body th').allTextContents();
  assert.ok(heads.every((t) => !SPECIAL.test(t)));
  assert.match(await page.locator('#flow-caption').textContent(), new RegExp(`summed over each word's pieces; special tokens hidden and the rest renormalised to sum 1, as the rollout rows are \\(${(100 * hidden).toFixed(1)}% of the flow went to them\\)`));
  await page.screenshot({ path: path.join(outDir, 'tab-rollout-flow-words.png'), fullPage: true });
  // Escape clears the pick.
  await page.locator('#rollout-canvas').focus();
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => document.getElementById('flow-figure').hidden);
  await noErrors(page);
  await page.close();
});

test('sections: a bar per section with the recorded mass, the section × section matrix, a curve per section over layers; hovering tells the host', async () => {
  const page = await openPanel(undefined, undefined, { sections: fixture.sections });
  await page.click('#tab-sections');
  await page.waitForSelector('#app[data-sections="painted"][data-sections-curve="painted"]');
  const recorded = rpcOf('attention/sections', { sections: fixture.sections, layer: 0, head: 0 });
  const masses = (await page.locator('#sections-bars').getAttribute('data-masses')).split(',').map(Number);
  assert.deepEqual(masses, recorded.sections.map((s) => Number(s.mass.toFixed(6))));
  assert.equal(Number(await page.locator('#sections-bars').getAttribute('data-sink')), Number(recorded.sink.toFixed(6)));
  const rows = await page.locator('#sections-bars .section-row').allTextContents();
  assert.equal(rows.length, fixture.sections.length + 1, 'one row per section and the sink');
  recorded.sections.forEach((s, i) => {
    assert.ok(rows[i].startsWith(s.name));
    assert.match(rows[i], new RegExp(`${(100 * s.mass).toFixed(1)} % · ${(100 * s.massPerToken).toFixed(1)} % per token · ${s.tokenCount} tokens`));
  });
  assert.match(await page.locator('#sections-bars-title').textContent(), /^Attention from token 18 by section — layer 0, head 0/);
  assert.equal(await page.locator('#sections-matrix').getAttribute('data-rows'), '2');
  assert.equal(await page.locator('#sections-curve').getAttribute('data-points'), String(2 * fixture.analysis.model.layers));
  await page.hover('#sections-bars .section-row[data-index="1"]');
  await page.waitForFunction(() => window.__posted.some((m) => m.type === 'hoverSection' && m.index === 1));
  await page.screenshot({ path: path.join(outDir, 'tab-sections.png'), fullPage: true });
  // The mean of layers and heads, from every token: the recorded answers again, and the title says so.
  await page.selectOption('#layer', '-1');
  await page.selectOption('#head', '-1');
  await page.selectOption('#sections-query', 'all');
  const all = rpcOf('attention/sections', { sections: fixture.sections, query: { start: 0, end: fixture.text.length }, layer: -1, head: -1 });
  await page.waitForFunction((m) => document.getElementById('sections-bars').dataset.masses === m, all.sections.map((s) => s.mass.toFixed(6)).join(','));
  assert.match(await page.locator('#sections-bars-title').textContent(), new RegExp(`from ${all.query.tokenCount} tokens by section — mean of layers, mean of heads`));
  await noErrors(page);
  await page.close();
  // Without sections the tab says where they come from. (A hub-cache model is named by its repo; the path is the tooltip.)
  const snapshot = '/hub/models--Qwen--Qwen2.5-0.5B-Instruct/snapshots/9f8e7d6c';
  const plain = await openPanel(undefined, undefined, { model: { ...fixture.analysis.model, id: snapshot } });
  assert.match(await plain.locator('#meta').textContent(), /^Qwen\/Qwen2\.5-0\.5B-Instruct · bert · 6×12/);
  assert.equal(await plain.locator('#meta').getAttribute('title'), snapshot);
  await plain.click('#tab-sections');
  await plain.waitForSelector('#app[data-sections="none"]');
  assert.match(await plain.locator('#sections-empty').textContent(), /XML-style tags .* Markdown headings .* attentionViz\.sectionPattern/);
  await plain.close();
});

test('diff: heads ranked by attention/diff, the top head\'s ΔA over aligned tokens (after − before), each section\'s budget before → after', async () => {
  const page = await openPanel(undefined, undefined, { sections: fixture.sections });
  const b = fixture.before;
  const diff = {
    afterId: fixture.analysis.analysisId,
    before: { analysisId: b.analysis.analysisId, source: 'fixture.txt:1 (before)', tokens: b.analysis.tokens, text: b.text, sections: b.sections },
    alignment: fixture.diff.alignment,
    heads: fixture.diff.heads,
  };
  // A comparison of another analysis is not shown.
  await page.evaluate((d) => window.postMessage({ type: 'diff', diff: { ...d, afterId: 'other' } }, '*'), diff);
  await page.waitForTimeout(100);
  assert.notEqual(await page.locator('#app').getAttribute('data-tab'), 'diff');
  await page.evaluate((d) => window.postMessage({ type: 'diff', diff: d }, '*'), diff);
  await page.waitForSelector('#app[data-tab="diff"][data-diff="painted"]');
  const top = [...fixture.diff.heads].sort((x, y) => y.score - x.score)[0];
  assert.equal(await page.locator('#diff-heads').getAttribute('data-top'), `${top.layer}:${top.head}:${top.score}`);
  const ranked = await page.locator('#diff-heads .diff-head .section-name').allTextContents();
  assert.equal(ranked[0], `L${top.layer} H${top.head}`);
  // ΔA computed here from the recorded matrices: after[j][l] − before[i][k] over aligned pairs.
  const after = fixture.matrices[`${top.layer}/${top.head}`];
  const beforeView = b.rpc[require('../fixtures/record-fixture.cjs').rpcKey('attention/view', { layer: top.layer, head: top.head })];
  const A = matrix.decodeFloat32(beforeView.data, beforeView.rows * beforeView.cols);
  const B = matrix.decodeFloat32(after.data, after.rows * after.cols);
  let maxAbs = 0;
  for (const [i, j] of fixture.diff.alignment) for (const [k, l] of fixture.diff.alignment) maxAbs = Math.max(maxAbs, Math.abs(B[j * after.cols + l] - A[i * beforeView.cols + k]));
  assert.ok(maxAbs > 0);
  assert.ok(Math.abs(Number(await page.locator('#diff-delta').getAttribute('data-max-abs')) - maxAbs) < 1e-6);
  assert.match(await page.locator('#diff-delta-title').textContent(), new RegExp(`layer ${top.layer}, head ${top.head}`));
  const budget = await page.locator('#diff-budget .section-row').allTextContents();
  const bBefore = b.rpc[require('../fixtures/record-fixture.cjs').rpcKey('attention/sections', { sections: b.sections })];
  const bAfter = rpcOf('attention/sections', { sections: fixture.sections });
  assert.equal(budget.length, 2);
  assert.ok(budget[0].includes(`${(100 * bBefore.sections[0].mass).toFixed(1)} % → ${(100 * bAfter.sections[0].mass).toFixed(1)} %`), budget[0]);
  await page.screenshot({ path: path.join(outDir, 'tab-diff.png'), fullPage: true });
  // Another head from the ranking.
  await page.locator('#diff-heads .diff-head').nth(1).click();
  const second = [...fixture.diff.heads].sort((x, y) => y.score - x.score)[1];
  await page.waitForFunction((t) => document.getElementById('diff-delta-title').textContent.includes(t), `layer ${second.layer}, head ${second.head} (`);
  // A new analysis: the comparison no longer applies, so the panel shows the new heatmap, not a stale Diff tab.
  await page.evaluate((a) => window.postMessage({ type: 'analysis', analysis: { ...a, analysisId: 'a-newer-one' } }, '*'),
    { ...fixture.analysis, text: fixture.text, source: 'fixture.txt:1' });
  await page.waitForSelector('#app[data-tab="heatmap"][data-state="painted"]');
  await page.click('#tab-diff');
  await page.waitForSelector('#app[data-diff="none"]');
  await noErrors(page);
  await page.close();
});

test('a token never wraps inside itself in the strip, even in a narrow panel with long tokens', async () => {
  const long = { 1: { text: 'supercalifragilisticexpialidocious', display: 'supercalifragilisticexpialidocious' },
    3: { text: 'antidisestablishmentarianism', display: 'antidisestablishmentarianism' } };
  const page = await openPanel(long);
  await page.setViewportSize({ width: 260, height: 900 });
  await page.waitForTimeout(200);
  const rects = await page.locator('#token-strip .tok').evaluateAll((xs) => xs.map((x) => x.getClientRects().length));
  assert.ok(rects.length === fixture.analysis.tokens.length);
  assert.deepEqual(rects.filter((n) => n !== 1), [], 'every token is one box on one line');
  await page.screenshot({ path: path.join(outDir, 'webview-narrow-strip.png'), fullPage: true });
  await page.close();
});

test('the truncation notice says whether the setting or the model\'s window cut the analysis', async () => {
  const page = await openPanel(undefined, undefined, { truncated: true, truncatedAt: 44, truncation: { kind: 'setting', maxTokens: 19, window: 512 } });
  assert.match(await page.locator('#notice').textContent(), /^Truncated at 19 tokens by the attentionViz\.maxTokens setting \(19\); the model's window holds 512;/);
  await page.close();
});

test('heads: a new analysis never shows the previous one\'s table; a loading state until its metrics come', async () => {
  const page = await openPanel();
  await page.click('#tab-heads');
  await page.waitForSelector('#app[data-heads="painted"]');
  assert.ok(await page.locator('#heads-body tr').count() > 0);
  // The next analysis's metrics are held back, as a long analysis's take seconds.
  await page.evaluate(() => { window.__hold = (key) => key.startsWith('attention/metrics') || key.startsWith('attention/modularityAll'); });
  await page.evaluate((a) => window.postMessage({ type: 'analysis', analysis: { ...a, analysisId: 'a-second' } }, '*'),
    { ...fixture.analysis, text: fixture.text, source: 'fixture.txt:2' });
  await page.waitForSelector('#app[data-heads="loading"]');
  assert.equal(await page.locator('#heads-body tr').count(), 0, 'no row of the previous analysis');
  assert.equal(await page.locator('#heads-grid > *').count(), 0);
  assert.match(await page.locator('#heads-summary').textContent(), /^Computing the metrics of 72 heads…$/);
  await page.evaluate(() => { window.__hold = undefined; for (const m of window.__held ?? []) window.postMessage(m, '*'); });
  await page.waitForSelector('#app[data-heads="painted"]');
  assert.ok(await page.locator('#heads-body tr').count() > 0);
  await page.close();
});

test('a theme change repaints the shown view in the new colours; a pressed toggle is marked beyond colour in high contrast', async () => {
  const page = await openPanel();
  const rendered = () => page.evaluate(() => window.__posted.filter((m) => m.type === 'rendered').length);
  const before = await rendered();
  const labelPixel = () => page.evaluate(() => {
    const c = document.getElementById('heatmap');
    const d = c.getContext('2d').getImageData(0, 0, Number(c.dataset.left) * (window.devicePixelRatio || 1), c.height).data;
    let sum = 0;
    for (let i = 0; i < d.length; i += 4) sum += d[i] + d[i + 1] + d[i + 2];
    return sum;
  });
  // VS Code swaps the class on <body> and the variables on <html>: dark high contrast first, then light high contrast.
  await page.evaluate(() => {
    document.documentElement.style.setProperty('--vscode-foreground', '#ffffff');
    document.documentElement.style.setProperty('--vscode-editor-background', '#000000');
    document.body.className = 'vscode-high-contrast';
  });
  await page.waitForFunction((n) => window.__posted.filter((m) => m.type === 'rendered').length > n, before);
  const darkLabels = await labelPixel();
  assert.ok(darkLabels > 0, 'white labels drawn');
  const beforeLight = await rendered();
  await page.evaluate(() => {
    document.documentElement.style.setProperty('--vscode-foreground', '#000000');
    document.documentElement.style.setProperty('--vscode-editor-background', '#ffffff');
    document.body.className = 'vscode-high-contrast-light';
  });
  await page.waitForFunction((n) => window.__posted.filter((m) => m.type === 'rendered').length > n, beforeLight);
  assert.notEqual(await labelPixel(), darkLabels, 'the axis labels were drawn again in the new foreground');
  const pressed = await page.locator('#view-head').evaluate((b) => getComputedStyle(b).outlineStyle + ' ' + getComputedStyle(b).fontWeight);
  const released = await page.locator('#view-grid').evaluate((b) => getComputedStyle(b).outlineStyle + ' ' + getComputedStyle(b).fontWeight);
  assert.notEqual(pressed, released, `pressed "${pressed}" vs released "${released}"`);
  await page.screenshot({ path: path.join(outDir, 'webview-theme-hc-light.png') });
  await noErrors(page);
  await page.close();
});
