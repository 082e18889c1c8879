// The panel: layer/head selectors, the heatmap, the all-heads grid, the token strip, the legend.
// All token text goes into the DOM through textContent (or onto a canvas), never through innerHTML.
import { getApi } from './vscodeApi';
import { Heatmap, renderImage } from './heatmap';
import { isHostMessage, type AnalysisView, type HostToWebview, type ViewState } from '../shared/messages';
import { axisLabel, displayToken, truncationSummary } from '../shared/tokens';
import { legendTicks, rampColour, cssColour, scaleColour } from '../shared/colour';
import { maxValue } from '../shared/matrix';

interface Persisted extends ViewState { analysis?: AnalysisView }
interface MatrixEntry { rows: number; cols: number; layer: number; head: number; pooled: boolean; poolFactor: number; data: Float32Array }

const THUMB_SIZE = 48;
const vscode = getApi<Persisted>();
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const el = {
  app: $('app'), layer: $<HTMLSelectElement>('layer'), head: $<HTMLSelectElement>('head'),
  viewHead: $<HTMLButtonElement>('view-head'), viewGrid: $<HTMLButtonElement>('view-grid'),
  meta: $('meta'), notice: $('notice'), headView: $('head-view'), gridView: $('grid-view'), grid: $('grid'),
  canvas: $<HTMLCanvasElement>('heatmap'), tooltip: $('tooltip'), legendBar: $<HTMLCanvasElement>('legend-bar'),
  legendTicks: $('legend-ticks'), strip: $('token-strip'), status: $('status'), wrap: $('heatmap-wrap'),
};

const heatmap = new Heatmap(el.canvas);
let analysis: AnalysisView | undefined;
let state: ViewState = { layer: 0, head: 0, view: 'head', locked: null };
let hover: { row: number | null; col: number | null } = { row: null, col: null };
let editorFocus: number | null = null;
const cache = new Map<string, MatrixEntry>();
const pending = new Map<number, { key: string; resolve: (m: MatrixEntry | undefined) => void }>();
let nextRequest = 1;
let drawSeq = 0;

const key = (layer: number, head: number, maxSize?: number) => `${layer}/${head}/${maxSize ?? 0}`;

function persist(): void {
  vscode.setState({ ...state, ...(analysis ? { analysis } : {}) });
}

function requestMatrix(layer: number, head: number, maxSize?: number): Promise<MatrixEntry | undefined> {
  const k = key(layer, head, maxSize);
  const hit = cache.get(k);
  if (hit) return Promise.resolve(hit);
  for (const p of pending.values()) if (p.key === k) return new Promise((r) => { const prev = p.resolve; p.resolve = (m) => { prev(m); r(m); }; });
  if (!analysis) return Promise.resolve(undefined);
  const requestId = nextRequest++;
  return new Promise((resolve) => {
    pending.set(requestId, { key: k, resolve });
    vscode.postMessage({ type: 'requestMatrix', requestId, analysisId: analysis!.analysisId, layer, head, ...(maxSize ? { maxSize } : {}) });
  });
}

// ---------- labels and selectors ----------

function labels(): string[] {
  return (analysis?.tokens ?? []).map((t) => axisLabel(t.text));
}

function pooledLabels(m: MatrixEntry): string[] {
  const l = labels();
  if (m.poolFactor <= 1) return l;
  return Array.from({ length: m.rows }, (_, i) => `${l[i * m.poolFactor] ?? ''}…`);
}

function fillSelect(select: HTMLSelectElement, count: number, meanLabel: string, value: number): void {
  select.replaceChildren();
  const add = (v: number, text: string) => {
    const o = document.createElement('option');
    o.value = String(v);
    o.textContent = text;
    select.append(o);
  };
  add(-1, meanLabel);
  for (let i = 0; i < count; i++) add(i, String(i));
  select.value = String(value);
}

function tokenName(i: number): string {
  const t = analysis?.tokens[i];
  if (!t) return `#${i}`;
  return displayToken(t.text).label;
}

// ---------- drawing ----------

async function showHead(): Promise<void> {
  if (!analysis) return;
  const seq = ++drawSeq;
  const { layer, head } = state;
  const m = await requestMatrix(layer, head);
  if (seq !== drawSeq || !m) return;
  heatmap.set({ rows: m.rows, cols: m.cols, data: m.data, poolFactor: m.poolFactor }, pooledLabels(m), pooledLabels(m));
  redraw();
  drawLegend(heatmap.max);
  paintStrip();
  el.app.dataset.state = 'painted';
  el.app.dataset.layer = String(layer);
  el.app.dataset.head = String(head);
  vscode.postMessage({ type: 'rendered', layer, head, litPixels: heatmap.litPixels() });
  // Neighbouring heads next, so arrow keys feel instant.
  if (analysis.model.heads > 1) void requestMatrix(layer, (head + 1) % analysis.model.heads);
}

function currentHighlight(): { row: number | null; col: number | null } {
  if (state.locked) return state.locked;
  if (hover.row !== null || hover.col !== null) return hover;
  return { row: editorFocus, col: null };
}

function redraw(): void {
  const width = Math.max(200, (el.headView.clientWidth || document.body.clientWidth) - 80);
  heatmap.draw(width, currentHighlight());
}

function drawLegend(max: number): void {
  const c = el.legendBar;
  const ctx = c.getContext('2d');
  if (!ctx) return;
  for (let y = 0; y < c.height; y++) {
    ctx.fillStyle = cssColour(rampColour(1 - y / (c.height - 1)));
    ctx.fillRect(0, y, c.width, 1);
  }
  el.legendTicks.replaceChildren();
  for (const t of legendTicks(max, 5).reverse()) {
    const s = document.createElement('span');
    s.textContent = t.label;
    el.legendTicks.append(s);
  }
  el.legendBar.title = `Colour scale: 0 to ${max.toFixed(4)} (the largest weight of this view)`;
}

/** The token strip: each token coloured by how much the focus query token attends to it. */
function paintStrip(): void {
  if (!analysis) return;
  const m = heatmap.matrix;
  const focus = currentHighlight().row ?? editorFocus;
  const spans = el.strip.children;
  if (spans.length !== analysis.tokens.length) buildStrip();
  let max = 0;
  const row = m && focus !== null && m.poolFactor === 1 ? m.data.subarray(focus * m.cols, (focus + 1) * m.cols) : undefined;
  if (row) max = maxValue(row);
  for (let i = 0; i < el.strip.children.length; i++) {
    const s = el.strip.children[i] as HTMLElement;
    if (row) {
      const [r, g, b] = scaleColour(row[i] ?? 0, max);
      s.style.backgroundColor = cssColour([r, g, b], 0.25 + 0.75 * ((row[i] ?? 0) / (max || 1)));
      s.title = `${tokenName(focus!)} → ${tokenName(i)}: ${(row[i] ?? 0).toFixed(4)}`;
    } else {
      s.style.backgroundColor = '';
      s.title = '';
    }
    s.classList.toggle('focus', i === focus);
  }
}

function buildStrip(): void {
  el.strip.replaceChildren();
  analysis?.tokens.forEach((t, i) => {
    const s = document.createElement('span');
    const d = displayToken(t.text);
    s.className = 'tok' + (t.special ? ' special' : '') + (d.continuation ? ' cont' : '') + (d.leadingSpace ? ' space' : '')
      + (t.typeId === 1 ? ' segment-b' : '');
    s.textContent = d.label; // text, never markup
    s.dataset.index = String(i);
    s.tabIndex = -1;
    s.addEventListener('mouseenter', () => { if (!state.locked) { hover = { row: i, col: null }; redraw(); paintStrip(); } vscode.postMessage({ type: 'hoverToken', token: i }); });
    s.addEventListener('mouseleave', () => { if (!state.locked) { hover = { row: null, col: null }; redraw(); paintStrip(); } vscode.postMessage({ type: 'hoverToken', token: null }); });
    s.addEventListener('click', () => toggleLock({ row: i, col: null }));
    el.strip.append(s);
  });
}

async function showGrid(): Promise<void> {
  if (!analysis) return;
  const { layers, heads } = analysis.model;
  el.grid.replaceChildren();
  el.grid.style.gridTemplateColumns = `auto repeat(${heads + 1}, minmax(10px, 64px))`;
  const corner = document.createElement('span');
  el.grid.append(corner);
  for (let h = -1; h < heads; h++) {
    const s = document.createElement('span');
    s.className = 'grid-label';
    s.textContent = h < 0 ? 'mean' : `H${h}`;
    el.grid.append(s);
  }
  const jobs: Promise<void>[] = [];
  for (let l = -1; l < layers; l++) {
    const rowLabel = document.createElement('span');
    rowLabel.className = 'grid-label';
    rowLabel.textContent = l < 0 ? 'mean' : `L${l}`;
    el.grid.append(rowLabel);
    for (let h = -1; h < heads; h++) {
      const b = document.createElement('button');
      b.className = 'thumb';
      b.type = 'button';
      b.title = `${l < 0 ? 'mean of layers' : `layer ${l}`}, ${h < 0 ? 'mean of heads' : `head ${h}`}`;
      b.setAttribute('aria-label', b.title);
      b.dataset.layer = String(l);
      b.dataset.head = String(h);
      const c = document.createElement('canvas');
      b.append(c);
      b.addEventListener('click', () => { state = { ...state, layer: l, head: h, view: 'head', locked: null }; syncControls(); void render(); });
      el.grid.append(b);
      jobs.push(requestMatrix(l, h, THUMB_SIZE).then((m) => {
        if (!m) return;
        const img = renderImage(m.rows, m.cols, m.data, maxValue(m.data));
        c.width = m.cols; c.height = m.rows;
        c.getContext('2d')!.drawImage(img, 0, 0);
        b.classList.add('painted');
      }));
    }
  }
  await Promise.all(jobs);
  el.app.dataset.grid = 'painted';
}

async function render(): Promise<void> {
  persist();
  el.headView.hidden = state.view !== 'head';
  el.gridView.hidden = state.view !== 'grid';
  el.viewHead.setAttribute('aria-pressed', String(state.view === 'head'));
  el.viewGrid.setAttribute('aria-pressed', String(state.view === 'grid'));
  vscode.postMessage({ type: 'viewChanged', layer: state.layer, head: state.head, view: state.view });
  rendering = state.view === 'grid' ? showGrid() : showHead();
  await rendering;
}
let rendering: Promise<void> = Promise.resolve();

function syncControls(): void {
  el.layer.value = String(state.layer);
  el.head.value = String(state.head);
}

function setAnalysis(a: AnalysisView, s?: Partial<ViewState>): void {
  analysis = a;
  cache.clear();
  for (const p of pending.values()) p.resolve(undefined);
  pending.clear();
  hover = { row: null, col: null };
  editorFocus = null;
  state = { ...state, ...s, locked: null };
  if (state.layer >= a.model.layers) state.layer = 0;
  if (state.head >= a.model.heads) state.head = 0;
  fillSelect(el.layer, a.model.layers, 'mean of layers', state.layer);
  fillSelect(el.head, a.model.heads, 'mean of heads', state.head);
  const n = a.tokens.length;
  el.meta.textContent = `${a.model.id} · ${a.model.architecture} · ${a.model.layers}×${a.model.heads}${a.model.causal ? ' · causal' : ''} · ${n} tokens · ${Math.round(a.elapsedMs)} ms`;
  el.status.textContent = `${a.source} — rows: query tokens, columns: key tokens. Hover for scores, click to lock, arrow keys step layer/head.`;
  if (a.truncated) {
    el.notice.hidden = false;
    el.notice.textContent = truncationSummary(a.tokens, a.text, a.truncatedAt);
  } else {
    el.notice.hidden = true;
    el.notice.textContent = '';
  }
  el.app.dataset.state = 'loading';
  buildStrip();
  void render();
}

function toggleLock(target: { row: number | null; col: number | null }): void {
  state.locked = state.locked ? null : target;
  persist();
  redraw();
  paintStrip();
}

// ---------- tooltip ----------

function showTooltip(x: number, y: number, text: string): void {
  el.tooltip.textContent = text;
  el.tooltip.hidden = false;
  const w = el.wrap.clientWidth;
  el.tooltip.style.left = `${Math.min(x + 14, Math.max(0, w - el.tooltip.offsetWidth - 4))}px`;
  el.tooltip.style.top = `${y + 14}px`;
}

function cellText(row: number, col: number): string {
  const m = heatmap.matrix!;
  const v = m.data[row * m.cols + col]!;
  if (m.poolFactor > 1) return `tokens ${row * m.poolFactor}… → ${col * m.poolFactor}…: max ${v.toFixed(4)}`;
  return `${tokenName(row)} → ${tokenName(col)}: ${v.toFixed(4)}`;
}

el.canvas.addEventListener('mousemove', (e) => {
  const r = el.canvas.getBoundingClientRect();
  const x = e.clientX - r.left, y = e.clientY - r.top;
  const h = heatmap.hit(x, y);
  const wrapRect = el.wrap.getBoundingClientRect();
  const tx = e.clientX - wrapRect.left, ty = e.clientY - wrapRect.top;
  if (!h) { el.tooltip.hidden = true; if (!state.locked) { hover = { row: null, col: null }; redraw(); } return; }
  if (h.kind === 'cell') showTooltip(tx, ty, cellText(state.locked?.row ?? h.row, state.locked?.col ?? h.col));
  else if (h.kind === 'row') showTooltip(tx, ty, `${tokenName(h.row)} (query) attends to its row`);
  else showTooltip(tx, ty, `${tokenName(h.col)} (key): its column`);
  if (state.locked) return;
  const next = h.kind === 'cell' ? { row: h.row, col: h.col } : h.kind === 'row' ? { row: h.row, col: null } : { row: null, col: h.col };
  if (next.row !== hover.row || next.col !== hover.col) {
    hover = next;
    redraw();
    paintStrip();
    if (heatmap.matrix?.poolFactor === 1) vscode.postMessage({ type: 'hoverToken', token: hover.row });
  }
});
el.canvas.addEventListener('mouseleave', () => {
  el.tooltip.hidden = true;
  if (!state.locked) { hover = { row: null, col: null }; redraw(); paintStrip(); vscode.postMessage({ type: 'hoverToken', token: null }); }
});
el.canvas.addEventListener('click', (e) => {
  const r = el.canvas.getBoundingClientRect();
  const h = heatmap.hit(e.clientX - r.left, e.clientY - r.top);
  if (!h) { if (state.locked) toggleLock({ row: null, col: null }); return; }
  toggleLock(h.kind === 'cell' ? { row: h.row, col: h.col } : h.kind === 'row' ? { row: h.row, col: null } : { row: null, col: h.col });
});

// ---------- controls ----------

el.layer.addEventListener('change', () => { state.layer = Number(el.layer.value); state.locked = null; void render(); });
el.head.addEventListener('change', () => { state.head = Number(el.head.value); state.locked = null; void render(); });
el.viewHead.addEventListener('click', () => { state.view = 'head'; void render(); });
el.viewGrid.addEventListener('click', () => { state.view = 'grid'; void render(); });

window.addEventListener('keydown', (e) => {
  if (!analysis || e.target instanceof HTMLSelectElement || e.altKey || e.ctrlKey || e.metaKey) return;
  const step = (v: number, count: number, d: number) => Math.min(count - 1, Math.max(-1, v + d));
  if (e.key === 'ArrowLeft' || e.key === 'ArrowRight') {
    state.head = step(state.head, analysis.model.heads, e.key === 'ArrowRight' ? 1 : -1);
  } else if (e.key === 'ArrowUp' || e.key === 'ArrowDown') {
    state.layer = step(state.layer, analysis.model.layers, e.key === 'ArrowDown' ? 1 : -1);
  } else if (e.key === 'Escape') {
    if (state.locked) toggleLock({ row: null, col: null });
    return;
  } else return;
  e.preventDefault();
  state.locked = null;
  syncControls();
  void render();
});

let resizeTimer: number | undefined;
window.addEventListener('resize', () => {
  if (resizeTimer) clearTimeout(resizeTimer);
  resizeTimer = window.setTimeout(() => { if (state.view === 'head') redraw(); }, 60);
});

// ---------- messages ----------

window.addEventListener('message', (event: MessageEvent) => {
  const m: unknown = event.data;
  if (!isHostMessage(m)) return;
  handle(m);
});

function handle(m: HostToWebview): void {
  switch (m.type) {
    case 'analysis':
      setAnalysis(m.analysis, m.state);
      return;
    case 'matrix': {
      const p = pending.get(m.requestId);
      if (!p) return;
      pending.delete(m.requestId);
      const entry: MatrixEntry = { rows: m.rows, cols: m.cols, layer: m.layer, head: m.head, pooled: m.pooled, poolFactor: m.poolFactor, data: new Float32Array(m.data) };
      cache.set(p.key, entry);
      p.resolve(entry);
      return;
    }
    case 'matrixError': {
      const p = pending.get(m.requestId);
      pending.delete(m.requestId);
      p?.resolve(undefined);
      el.status.textContent = `Could not load the matrix: ${m.message}`;
      return;
    }
    case 'busy':
      el.status.textContent = m.message;
      if (!analysis) el.app.dataset.state = 'empty';
      return;
    case 'error':
      el.status.textContent = m.message;
      el.app.dataset.state = analysis ? el.app.dataset.state ?? 'painted' : 'error';
      return;
    case 'highlightToken':
      editorFocus = m.token;
      if (!state.locked && hover.row === null) { redraw(); paintStrip(); }
      return;
    case 'setView':
      if (m.layer !== undefined) state.layer = m.layer;
      if (m.head !== undefined) state.head = m.head;
      if (m.view) state.view = m.view;
      syncControls();
      void render();
      return;
    case 'exportPng': {
      void rendering.then(() => exportPng(m.requestId));
      return;
    }
  }
}

/** The visible heatmap as PNG, on the theme's background so labels stay readable anywhere. */
function exportPng(requestId: number): void {
  const c = document.createElement('canvas');
  c.width = el.canvas.width; c.height = el.canvas.height;
  const ctx = c.getContext('2d')!;
  ctx.fillStyle = getComputedStyle(document.body).backgroundColor || '#ffffff';
  ctx.fillRect(0, 0, c.width, c.height);
  ctx.drawImage(el.canvas, 0, 0);
  vscode.postMessage({ type: 'png', requestId, dataUrl: c.toDataURL('image/png') });
}

// Restore after the panel was hidden (the webview is recreated) or VS Code restarted.
const saved = vscode.getState();
if (saved?.analysis) {
  state = { layer: saved.layer ?? 0, head: saved.head ?? 0, view: saved.view ?? 'head', locked: saved.locked ?? null };
  setAnalysis(saved.analysis, state);
}
vscode.postMessage({ type: 'ready' });
