// The Heatmap tab: one head large (with the token strip and the legend) or the all-heads grid.
import { Heatmap, renderImage } from '../heatmap';
import { attachZoomInput, type KeyAction } from '../heatmapInput';
import { Minimap } from '../minimap';
import {
  Coalescer,
  cellSpan,
  centreOn,
  clampViewport,
  fromCells,
  fullViewport,
  isFull,
  overviewSize,
  pan,
  poolLabel,
  spanLabel,
  unitCell,
  windowParams,
  zoomAt,
  type Extent,
  type Viewport,
} from '../zoom';
import { Methods } from '../../shared/protocol';
import { displayToken, tokenLabel } from '../../shared/tokens';
import { cssColour, scaleColour } from '../../shared/colour';
import { createLegend, paintLegend } from '../legend';
import { maxValue } from '../../shared/matrix';
import type { ViewUnit } from '../../shared/protocol';
import {
  app,
  labels,
  persist,
  render,
  rpc,
  syncControls,
  tokenName,
  unitLabels,
  viewMatrix,
  vscode,
  type ViewMatrix,
} from '../state';
import { frame } from '../frame';
import { h } from '../dom';

const ui = {
  headView: h('section', { id: 'head-view', 'aria-label': 'Attention heatmap' }),
  zoomBar: h('div', { id: 'zoom-bar', role: 'group', 'aria-label': 'Zoom' }),
  zoomOut: h('button', { id: 'zoom-out', type: 'button', title: 'Zoom out (−)', 'aria-label': 'Zoom out' }, '−'),
  zoomIn: h('button', { id: 'zoom-in', type: 'button', title: 'Zoom in (+)', 'aria-label': 'Zoom in' }, '+'),
  zoomReset: h('button', { id: 'zoom-reset', type: 'button', title: 'Whole matrix (0)' }, 'Whole'),
  zoomLabel: h('span', { id: 'zoom-label', class: 'meta', 'aria-live': 'polite' }),
  pooling: h('select', { id: 'pooling', 'aria-label': 'Pooling of long matrices' }),
  poolingLabel: h('label', { id: 'pooling-label', hidden: true }),
  minimap: h('canvas', {
    id: 'minimap',
    'aria-label': 'Minimap: the whole matrix; the rectangle is the zoomed window. Click or drag to move it.',
    hidden: true,
  }),
  wrap: h('div', { id: 'heatmap-wrap' }),
  canvas: h('canvas', {
    id: 'heatmap',
    tabindex: 0,
    'aria-label':
      'Attention heatmap: rows are query tokens, columns are key tokens. Drag a rectangle or use the wheel to zoom; ' +
      'plus and minus zoom, arrows pan while zoomed, 0 shows the whole matrix.',
  }),
  tooltip: h('div', { id: 'tooltip', class: 'tooltip', role: 'status', hidden: true }),
  gridView: h('section', { id: 'grid-view', 'aria-label': 'All layers and heads', hidden: true }),
  grid: h('div', { id: 'grid' }),
  strip: h('section', { id: 'token-strip', 'aria-label': 'Tokens coloured by attention' }),
};
for (const p of ['max', 'mean']) ui.pooling.append(h('option', { value: p }, p));
ui.poolingLabel.append('Pooling ', ui.pooling);
ui.zoomBar.append(ui.zoomOut, ui.zoomIn, ui.zoomReset, ui.poolingLabel, ui.zoomLabel, ui.minimap);
ui.wrap.append(ui.canvas, ui.tooltip);
const body = h('div', { id: 'head-body' }, ui.wrap);
const legend = createLegend('legend');
body.append(legend.element);
ui.headView.append(ui.zoomBar, body);
ui.gridView.append(ui.grid);
frame.tabPanels.heatmap.append(ui.headView, ui.gridView, ui.strip);

const THUMB_SIZE = 48;
const heatmap = new Heatmap(ui.canvas);
/** The heatmap's rows/columns when a view option (hide special, word level) is on; null = one per token. */
let units: ViewUnit[] | null = null;
let drawSeq = 0;
/** The whole matrix of the shown layer/head (pooled when long), and what the heatmap draws now. */
let overview: ViewMatrix | undefined;
let shown: ViewMatrix | undefined;
/** The zoomed window, in units; null: the whole matrix. */
let viewport: Viewport | null = null;
let loadingText = '';
const windows = new Coalescer<ViewMatrix | undefined>();

export function resetHeatmap(): void {
  units = null;
  overview = shown = undefined;
  viewport = null;
  windows.reset();
}

function extentOf(m: ViewMatrix): Extent {
  return { rows: m.rowRange[1], cols: m.colRange[1] };
}

/** Axis labels of the drawn cells: a pooled cell is named by its block's first unit, with "…". */
function cellLabels(m: ViewMatrix, axis: 'rows' | 'cols'): string[] {
  const all = m.units ? unitLabels(m.units) : labels();
  const range = axis === 'rows' ? m.rowRange : m.colRange;
  const count = axis === 'rows' ? m.rows : m.cols;
  return Array.from({ length: count }, (_, i) => {
    const u = cellSpan(range, m.poolFactor, i)[0];
    return m.poolFactor > 1 ? `${all[u] ?? ''}…` : (all[u] ?? '');
  });
}

function heatmapWidth(): number {
  return Math.max(200, (ui.headView.clientWidth || document.body.clientWidth) - 80);
}

/** The panel's height below the heatmap's top, which it fits rather than run past the bottom (240 px at least). */
function heatmapHeight(): number {
  const top = ui.wrap.getBoundingClientRect().top + window.scrollY;
  return Math.max(240, window.innerHeight - top - 12);
}

/** The overview's side in cells: about the heatmap's pixels on its smaller side. */
function overviewCells(): number {
  return overviewSize(Math.min(heatmapWidth(), heatmapHeight()));
}

/** One head large, or the all-heads grid (the toolbar's view switch). */
export function showHeatmap(): Promise<void> {
  const grid = app.state.view === 'grid';
  ui.headView.hidden = grid;
  ui.gridView.hidden = !grid;
  return grid ? showGrid() : showHead();
}

async function showHead(): Promise<void> {
  const analysis = app.analysis;
  if (!analysis) return;
  const seq = ++drawSeq;
  const { layer, head } = app.state;
  const size = overviewCells();
  // A long matrix comes pooled to about the heatmap's pixels; a short one (and its windows) at full resolution.
  const long = analysis.tokens.length > size;
  const ov = await viewMatrix(layer, head, long ? { maxSize: size, pooling: app.options.pooling } : {});
  if (seq !== drawSeq || !ov) return;
  const sameExtent =
    overview && extentOf(overview).rows === ov.rowRange[1] && extentOf(overview).cols === ov.colRange[1];
  if (!sameExtent) viewport = null;
  overview = ov;
  units = ov.units;
  minimap.set(renderImage(ov.rows, ov.cols, ov.data, maxValue(ov.data)), extentOf(ov));
  if (ov.units) frame.app.dataset.units = String(ov.units.length);
  else delete frame.app.dataset.units;
  if (viewport) await showWindow(seq);
  else display(ov);
  if (seq !== drawSeq) return;
  // The minimap this overview brought moved the heatmap down: ask again for the size that fits the height left,
  // rather than draw more cells than pixels (cells stop at 1 px, and the heatmap ran past the panel's bottom).
  if (long && !viewport && overviewCells() < size) return showHead();
  frame.app.dataset.state = 'painted';
  frame.app.dataset.layer = String(layer);
  frame.app.dataset.head = String(head);
  vscode.postMessage({ type: 'rendered', layer, head, litPixels: heatmap.litPixels() });
  // Neighbouring heads next, so arrow keys feel instant.
  if (analysis.model.heads > 1)
    void viewMatrix(
      layer,
      (head + 1) % analysis.model.heads,
      long ? { maxSize: size, pooling: app.options.pooling } : {},
    );
}

/** Draws `m` (the overview, a window, or a preview while a window loads). */
function display(m: ViewMatrix, loading = ''): void {
  shown = m;
  loadingText = loading;
  heatmap.set(m, cellLabels(m, 'rows'), cellLabels(m, 'cols'));
  // The zoom bar first: the minimap it may show moves the heatmap down, and the heatmap fits the height left.
  syncZoomBar();
  redraw();
  drawLegend(heatmap.max);
  paintStrip();
  // A locked cell's readout follows the matrix shown now (another layer or head), never an older value.
  const lock = app.state.locked;
  if (lock && lock.row !== null && lock.col !== null && !ui.tooltip.hidden) {
    ui.tooltip.textContent = cellText(lock.row, lock.col);
    ui.tooltip.dataset.layerHead = `${app.state.layer}/${app.state.head}`;
  }
}

/** The overview's cells that cover `v` (a coarser preview, drawn dimmed while the window loads). */
function crop(ov: ViewMatrix, v: Viewport): ViewMatrix {
  const p = ov.poolFactor;
  const r0 = Math.floor(v.rows[0] / p),
    r1 = Math.ceil(v.rows[1] / p),
    c0 = Math.floor(v.cols[0] / p),
    c1 = Math.ceil(v.cols[1] / p);
  const data = new Float32Array((r1 - r0) * (c1 - c0));
  for (let i = r0; i < r1; i++) data.set(ov.data.subarray(i * ov.cols + c0, i * ov.cols + c1), (i - r0) * (c1 - c0));
  const e = extentOf(ov);
  return {
    ...ov,
    rows: r1 - r0,
    cols: c1 - c0,
    data,
    rowRange: [r0 * p, Math.min(e.rows, r1 * p)],
    colRange: [c0 * p, Math.min(e.cols, c1 * p)],
  };
}

/** Fetches the zoomed window (full resolution when it fits); until it comes the overview's part shows, dimmed. */
async function showWindow(seq: number): Promise<void> {
  const v = viewport,
    ov = overview;
  if (!v || !ov) return;
  const { layer, head } = app.state;
  const e = extentOf(ov);
  const size = overviewCells();
  display(crop(ov, v), `Loading rows ${spanLabel(v.rows)} × columns ${spanLabel(v.cols)}…`);
  frame.app.dataset.zoom = 'loading';
  const m = await windows.ask(() => viewMatrix(layer, head, windowParams(v, e, size, app.options.pooling)));
  // A newer viewport, head or analysis asked since: this answer is not what the panel shows now.
  if (seq !== drawSeq || viewport !== v || overview !== ov) return;
  if (!m) {
    frame.app.dataset.zoom = 'error';
    return;
  }
  display(m);
  frame.app.dataset.zoom = 'ready';
}

/** Moves the zoom to `v` (null or the whole matrix: the overview). */
function setViewport(v: Viewport | null): void {
  const ov = overview;
  if (!ov || app.state.view !== 'head') return;
  const e = extentOf(ov);
  const next = v && !isFull(clampViewport(v, e), e) ? clampViewport(v, e) : null;
  if (JSON.stringify(next) === JSON.stringify(viewport)) return;
  viewport = next;
  ui.tooltip.hidden = true;
  if (!next) {
    windows.reset();
    frame.app.dataset.zoom = 'whole';
    display(ov);
    return;
  }
  void showWindow(drawSeq);
}

function currentViewport(): Viewport | undefined {
  return viewport ?? (overview ? fullViewport(extentOf(overview)) : undefined);
}

function syncZoomBar(): void {
  const ov = overview,
    m = shown;
  if (!ov || !m) return;
  const e = extentOf(ov);
  const v = currentViewport()!;
  const unit = ov.units ? 'units' : 'tokens';
  const pooled = ov.poolFactor > 1 || m.poolFactor > 1;
  ui.poolingLabel.hidden = !pooled;
  ui.pooling.value = app.options.pooling;
  ui.minimap.hidden = !(viewport || ov.poolFactor > 1);
  ui.zoomReset.disabled = !viewport;
  ui.zoomOut.disabled = !viewport;
  const where = viewport
    ? `rows ${spanLabel(v.rows)}, columns ${spanLabel(v.cols)} of ${e.rows}`
    : `all ${e.rows} ${unit}`;
  const pooling = poolLabel(m.poolFactor, m.pooling, unit);
  ui.zoomLabel.textContent = `${where} · ${pooling}${loadingText ? ' · loading…' : ''}`;
  frame.app.dataset.poolFactor = String(m.poolFactor);
  if (!ui.minimap.hidden) minimap.draw(v, foreground());
}

function foreground(): string {
  const style = getComputedStyle(document.body);
  return style.getPropertyValue('--vscode-foreground').trim() || style.color || '#ccc';
}

function zoomBy(factor: number, row?: number, col?: number): void {
  const ov = overview;
  if (!ov) return;
  const e = extentOf(ov),
    v = currentViewport()!;
  const r = row ?? (v.rows[0] + v.rows[1]) / 2,
    c = col ?? (v.cols[0] + v.cols[1]) / 2;
  setViewport(zoomAt(v, e, factor, r, c));
}

/** A fractional drawn-cell position of the shown matrix in units. */
function cellToUnits(row: number, col: number): { row: number; col: number } {
  const m = shown!;
  return { row: m.rowRange[0] + row * m.poolFactor, col: m.colRange[0] + col * m.poolFactor };
}

const minimap = new Minimap(ui.minimap, (row, col) => {
  const ov = overview;
  if (!ov) return;
  setViewport(centreOn(currentViewport()!, extentOf(ov), row, col));
});

const input = attachZoomInput(ui.canvas, ui.wrap, heatmap, {
  rect: (a, b) => shown && setViewport(fromCells(shown, a, b)),
  wheel: (factor, row, col) => {
    if (!shown) return;
    const u = cellToUnits(row, col);
    zoomBy(factor, u.row, u.col);
  },
  key: (a: KeyAction) => {
    if (!overview) return false;
    if (a.kind === 'in') zoomBy(2);
    else if (a.kind === 'out') zoomBy(0.5);
    else if (a.kind === 'reset') setViewport(null);
    else if (viewport) setViewport(pan(viewport, extentOf(overview), a.rows, a.cols));
    else return false; // not zoomed: the arrows step the layer and head
    return true;
  },
});
ui.zoomIn.addEventListener('click', () => zoomBy(2));
ui.zoomOut.addEventListener('click', () => zoomBy(0.5));
ui.zoomReset.addEventListener('click', () => setViewport(null));
ui.pooling.addEventListener('change', () => {
  app.options.pooling = ui.pooling.value === 'mean' ? 'mean' : 'max';
  persist();
  void render();
});

function currentHighlight(): { row: number | null; col: number | null } {
  const { state, hover, editorFocus } = app;
  if (state.locked) return state.locked;
  if (hover.row !== null || hover.col !== null) return hover;
  return { row: editorFocus === null ? null : tokenToUnit(editorFocus), col: null };
}

function tokenToUnit(token: number): number | null {
  if (!units) return token;
  const k = units.findIndex((u) => token >= u.firstToken && token <= u.lastToken);
  return k < 0 ? null : k;
}

/** The name of heatmap row/column i: a unit's text when a view option is on, else the token's. */
function axisName(i: number): string {
  if (units) return units[i] ? tokenLabel(units[i]!) : `#${i}`;
  return tokenName(i);
}

export function redraw(): void {
  const m = shown;
  const hl = currentHighlight();
  // The highlight is in units; the heatmap draws cells of the shown window.
  const cell = {
    row: m && hl.row !== null ? unitCell(m.rowRange, m.poolFactor, hl.row) : null,
    col: m && hl.col !== null ? unitCell(m.colRange, m.poolFactor, hl.col) : null,
  };
  heatmap.draw(heatmapWidth(), cell, { loading: loadingText, availableHeight: heatmapHeight() });
  if (!ui.minimap.hidden && currentViewport()) minimap.draw(currentViewport()!, foreground());
}

function drawLegend(max: number): void {
  paintLegend(legend, max);
}

/** The token strip: each token coloured by how much the focus query token attends to it. */
export function paintStrip(): void {
  const analysis = app.analysis;
  if (!analysis) return;
  const m = shown;
  const focus = units ? null : (currentHighlight().row ?? app.editorFocus);
  const spans = ui.strip.children;
  if (spans.length !== analysis.tokens.length) buildStrip();
  // The focus row from the shown matrix when it holds the whole row at full resolution, else asked for on demand.
  const n = analysis.tokens.length;
  const whole = m && m.poolFactor === 1 && m.colRange[0] === 0 && m.colRange[1] === n;
  const k = m && focus !== null ? unitCell(m.rowRange, 1, focus) : null;
  if (focus !== null && whole && k !== null) paintRow(focus, m.data.subarray(k * m.cols, (k + 1) * m.cols));
  else if (focus !== null && !units) {
    paintRow(null, undefined);
    const { layer, head } = app.state;
    void rpc(Methods.row, { layer, head, token: focus, direction: 'from' }).then((a) => {
      const still = (currentHighlight().row ?? app.editorFocus) === focus;
      if (a && still && app.state.layer === layer && app.state.head === head)
        paintRow(focus, Float32Array.from(a.result.scores));
    });
  } else paintRow(null, undefined);
}

function paintRow(focus: number | null, row: Float32Array | undefined): void {
  const max = row ? maxValue(row) : 0;
  for (let i = 0; i < ui.strip.children.length; i++) {
    const s = ui.strip.children[i] as HTMLElement;
    if (row && focus !== null) {
      const [r, g, b] = scaleColour(row[i] ?? 0, max);
      s.style.backgroundColor = cssColour([r, g, b], 0.25 + 0.75 * ((row[i] ?? 0) / (max || 1)));
      s.title = `${tokenName(focus)} → ${tokenName(i)}: ${(row[i] ?? 0).toFixed(4)}`;
    } else {
      s.style.backgroundColor = '';
      s.title = '';
    }
    s.classList.toggle('focus', i === focus);
  }
}

/** A strip token hovered (null: left): its row shows unless a cell is locked, and the editor tints it. */
function hoverStrip(token: number | null): void {
  if (!app.state.locked) {
    app.hover = { row: token, col: null };
    redraw();
    paintStrip();
  }
  vscode.postMessage({ type: 'hoverToken', token });
}

export function buildStrip(): void {
  ui.strip.replaceChildren();
  const template = new Set(app.analysis?.templateTokens ?? []);
  app.analysis?.tokens.forEach((t, i) => {
    const s = document.createElement('span');
    const d = displayToken(t);
    s.className =
      'tok' +
      (t.special ? ' special' : '') +
      (d.continuation ? ' cont' : '') +
      (d.leadingSpace ? ' space' : '') +
      (t.typeId === 1 ? ' segment-b' : '') +
      (template.has(i) ? ' template' : '');
    s.textContent = d.label; // text, never markup
    s.dataset.index = String(i);
    s.tabIndex = -1;
    s.addEventListener('mouseenter', () => hoverStrip(i));
    s.addEventListener('mouseleave', () => hoverStrip(null));
    s.addEventListener('click', () => toggleLock({ row: i, col: null }));
    ui.strip.append(s);
  });
}

async function showGrid(): Promise<void> {
  if (!app.analysis) return;
  const { layers, heads } = app.analysis.model;
  ui.grid.replaceChildren();
  // At least 28 px a thumbnail, so that the H labels stay apart; past the panel's width the grid scrolls.
  ui.grid.style.gridTemplateColumns = `auto repeat(${heads + 1}, minmax(28px, 64px))`;
  // The grid scrolls inside itself past the panel's size, its head and layer labels held at the top and left.
  const corner = document.createElement('span');
  corner.className = 'grid-corner';
  ui.grid.append(corner);
  for (let h = -1; h < heads; h++) {
    const s = document.createElement('span');
    s.className = 'grid-label col-label';
    s.textContent = h < 0 ? 'mean' : `H${h}`;
    ui.grid.append(s);
  }
  const jobs: Promise<void>[] = [];
  for (let l = -1; l < layers; l++) {
    const rowLabel = document.createElement('span');
    rowLabel.className = 'grid-label row-label';
    rowLabel.textContent = l < 0 ? 'mean' : `L${l}`;
    ui.grid.append(rowLabel);
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
      b.addEventListener('click', () => {
        app.state = { ...app.state, layer: l, head: h, view: 'head', locked: null };
        syncControls();
        void render();
      });
      ui.grid.append(b);
      // The view options apply here as in the big heatmap and the exported grid.
      jobs.push(
        viewMatrix(l, h, { maxSize: THUMB_SIZE, units: false }).then((m) => {
          if (!m) return;
          const img = renderImage(m.rows, m.cols, m.data, maxValue(m.data));
          c.width = m.cols;
          c.height = m.rows;
          c.getContext('2d')!.drawImage(img, 0, 0);
          b.classList.add('painted');
        }),
      );
    }
  }
  await Promise.all(jobs);
  frame.app.dataset.grid = 'painted';
}

export function toggleLock(target: { row: number | null; col: number | null }): void {
  app.state.locked = app.state.locked ? null : target;
  persist();
  redraw();
  paintStrip();
}

// ---------- tooltip ----------

function showTooltip(x: number, y: number, text: string): void {
  ui.tooltip.textContent = text;
  ui.tooltip.hidden = false;
  const w = ui.wrap.clientWidth;
  ui.tooltip.style.left = `${Math.min(x + 14, Math.max(0, w - ui.tooltip.offsetWidth - 4))}px`;
  ui.tooltip.style.top = `${y + 14}px`;
}

/** The readout of the cell holding units (row, col): exact at full resolution, the block's pooled value otherwise. */
function cellText(row: number, col: number): string {
  const m = shown!;
  const i = unitCell(m.rowRange, m.poolFactor, row),
    j = unitCell(m.colRange, m.poolFactor, col);
  if (i === null || j === null) return `${axisName(row)} → ${axisName(col)}: outside the zoomed window`;
  const v = m.data[i * m.cols + j]!;
  if (m.poolFactor > 1) {
    const rs = cellSpan(m.rowRange, m.poolFactor, i),
      cs = cellSpan(m.colRange, m.poolFactor, j);
    return (
      `rows ${spanLabel(rs)} → columns ${spanLabel(cs)}: ${m.pooling} ${v.toFixed(4)}\n` +
      `${axisName(rs[0])}… → ${axisName(cs[0])}… (zoom in for exact values)`
    );
  }
  const text = `${axisName(row)} → ${axisName(col)}: ${v.toFixed(4)}`;
  return viewport ? `${text}  (row #${row}, column #${col})` : text;
}

/** The units of a drawn cell hit (its block's first unit when pooled). */
function hitUnits(h: NonNullable<ReturnType<Heatmap['hit']>>): {
  row: number | null;
  col: number | null;
  kind: 'cell' | 'row' | 'col';
} {
  const m = shown!;
  const row = 'row' in h ? cellSpan(m.rowRange, m.poolFactor, h.row)[0] : null;
  const col = 'col' in h ? cellSpan(m.colRange, m.poolFactor, h.col)[0] : null;
  return { row, col, kind: h.kind };
}

ui.canvas.addEventListener('mousemove', (e) => {
  const r = ui.canvas.getBoundingClientRect();
  const x = e.clientX - r.left,
    y = e.clientY - r.top;
  const hit = heatmap.hit(x, y);
  const wrapRect = ui.wrap.getBoundingClientRect();
  const tx = e.clientX - wrapRect.left,
    ty = e.clientY - wrapRect.top;
  const { state } = app;
  if (!hit || !shown) {
    ui.tooltip.hidden = true;
    if (!state.locked) {
      app.hover = { row: null, col: null };
      redraw();
    }
    return;
  }
  const h = hitUnits(hit);
  if (h.kind === 'cell') showTooltip(tx, ty, cellText(state.locked?.row ?? h.row!, state.locked?.col ?? h.col!));
  else if (h.kind === 'row') showTooltip(tx, ty, `${axisName(h.row!)} (query) attends to its row`);
  else showTooltip(tx, ty, `${axisName(h.col!)} (key): its column`);
  if (state.locked) return;
  const next = { row: h.row, col: h.col };
  if (next.row !== app.hover.row || next.col !== app.hover.col) {
    app.hover = next;
    redraw();
    paintStrip();
    const row = app.hover.row;
    if (shown.poolFactor === 1)
      vscode.postMessage({
        type: 'hoverToken',
        token: row === null ? null : units ? (units[row]?.firstToken ?? null) : row,
      });
  }
});
ui.canvas.addEventListener('mouseleave', () => {
  ui.tooltip.hidden = true;
  if (!app.state.locked) {
    app.hover = { row: null, col: null };
    redraw();
    paintStrip();
    vscode.postMessage({ type: 'hoverToken', token: null });
  }
});
ui.canvas.addEventListener('click', (e) => {
  if (input.consumeClick()) return; // the end of a zoom rectangle
  const r = ui.canvas.getBoundingClientRect();
  const hit = heatmap.hit(e.clientX - r.left, e.clientY - r.top);
  if (!hit || !shown) {
    if (app.state.locked) toggleLock({ row: null, col: null });
    return;
  }
  const h = hitUnits(hit);
  toggleLock({ row: h.row, col: h.col });
});
