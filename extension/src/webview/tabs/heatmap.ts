// The Heatmap tab: one head large (with the token strip and the legend) or the all-heads grid.
import { Heatmap, renderImage } from '../heatmap';
import { displayToken, tokenLabel } from '../../shared/tokens';
import { legendTicks, rampColour, cssColour, scaleColour } from '../../shared/colour';
import { maxValue } from '../../shared/matrix';
import type { ViewUnit } from '../../shared/protocol';
import {
  app,
  labels,
  persist,
  render,
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
  wrap: h('div', { id: 'heatmap-wrap' }),
  canvas: h('canvas', {
    id: 'heatmap',
    tabindex: 0,
    'aria-label': 'Attention heatmap: rows are query tokens, columns are key tokens',
  }),
  tooltip: h('div', { id: 'tooltip', class: 'tooltip', role: 'status', hidden: true }),
  legendBar: h('canvas', { id: 'legend-bar', width: 14, height: 200 }),
  legendTicks: h('div', { id: 'legend-ticks' }),
  gridView: h('section', { id: 'grid-view', 'aria-label': 'All layers and heads', hidden: true }),
  grid: h('div', { id: 'grid' }),
  strip: h('section', { id: 'token-strip', 'aria-label': 'Tokens coloured by attention' }),
};
ui.wrap.append(ui.canvas, ui.tooltip);
ui.headView.append(ui.wrap, h('aside', { id: 'legend', 'aria-label': 'Colour scale' }, ui.legendBar, ui.legendTicks));
ui.gridView.append(ui.grid);
frame.tabPanels.heatmap.append(ui.headView, ui.gridView, ui.strip);

const THUMB_SIZE = 48;
const heatmap = new Heatmap(ui.canvas);
/** The heatmap's rows/columns when a view option (hide special, word level) is on; null = one per token. */
let units: ViewUnit[] | null = null;
let drawSeq = 0;

export function resetHeatmap(): void {
  units = null;
}

function pooledLabels(m: ViewMatrix): string[] {
  const l = labels();
  if (m.poolFactor <= 1) return l;
  return Array.from({ length: m.rows }, (_, i) => `${l[i * m.poolFactor] ?? ''}…`);
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
  const m = await viewMatrix(layer, head);
  if (seq !== drawSeq || !m) return;
  units = m.units;
  const axis = m.units ? unitLabels(m.units) : pooledLabels(m);
  heatmap.set(m, axis, axis);
  if (m.units) frame.app.dataset.units = String(m.units.length);
  else delete frame.app.dataset.units;
  redraw();
  drawLegend(heatmap.max);
  paintStrip();
  frame.app.dataset.state = 'painted';
  frame.app.dataset.layer = String(layer);
  frame.app.dataset.head = String(head);
  vscode.postMessage({ type: 'rendered', layer, head, litPixels: heatmap.litPixels() });
  // Neighbouring heads next, so arrow keys feel instant.
  if (analysis.model.heads > 1) void viewMatrix(layer, (head + 1) % analysis.model.heads);
}

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
  const width = Math.max(200, (ui.headView.clientWidth || document.body.clientWidth) - 80);
  heatmap.draw(width, currentHighlight());
}

function drawLegend(max: number): void {
  const c = ui.legendBar;
  const ctx = c.getContext('2d');
  if (!ctx) return;
  for (let y = 0; y < c.height; y++) {
    ctx.fillStyle = cssColour(rampColour(1 - y / (c.height - 1)));
    ctx.fillRect(0, y, c.width, 1);
  }
  ui.legendTicks.replaceChildren();
  for (const t of legendTicks(max, 5).reverse()) {
    const s = document.createElement('span');
    s.textContent = t.label;
    ui.legendTicks.append(s);
  }
  ui.legendBar.title = `Colour scale: 0 to ${max.toFixed(4)} (the largest weight of this view)`;
}

/** The token strip: each token coloured by how much the focus query token attends to it. */
export function paintStrip(): void {
  const analysis = app.analysis;
  if (!analysis) return;
  const m = heatmap.matrix;
  const focus = units ? null : (currentHighlight().row ?? app.editorFocus);
  const spans = ui.strip.children;
  if (spans.length !== analysis.tokens.length) buildStrip();
  let max = 0;
  const row =
    m && focus !== null && m.poolFactor === 1 ? m.data.subarray(focus * m.cols, (focus + 1) * m.cols) : undefined;
  if (row) max = maxValue(row);
  for (let i = 0; i < ui.strip.children.length; i++) {
    const s = ui.strip.children[i] as HTMLElement;
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
  app.analysis?.tokens.forEach((t, i) => {
    const s = document.createElement('span');
    const d = displayToken(t);
    s.className =
      'tok' +
      (t.special ? ' special' : '') +
      (d.continuation ? ' cont' : '') +
      (d.leadingSpace ? ' space' : '') +
      (t.typeId === 1 ? ' segment-b' : '');
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
  ui.grid.style.gridTemplateColumns = `auto repeat(${heads + 1}, minmax(10px, 64px))`;
  const corner = document.createElement('span');
  ui.grid.append(corner);
  for (let h = -1; h < heads; h++) {
    const s = document.createElement('span');
    s.className = 'grid-label';
    s.textContent = h < 0 ? 'mean' : `H${h}`;
    ui.grid.append(s);
  }
  const jobs: Promise<void>[] = [];
  for (let l = -1; l < layers; l++) {
    const rowLabel = document.createElement('span');
    rowLabel.className = 'grid-label';
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
        viewMatrix(l, h, THUMB_SIZE).then((m) => {
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

function cellText(row: number, col: number): string {
  const m = heatmap.matrix!;
  const v = m.data[row * m.cols + col]!;
  if (m.poolFactor > 1) return `tokens ${row * m.poolFactor}… → ${col * m.poolFactor}…: max ${v.toFixed(4)}`;
  return `${axisName(row)} → ${axisName(col)}: ${v.toFixed(4)}`;
}

ui.canvas.addEventListener('mousemove', (e) => {
  const r = ui.canvas.getBoundingClientRect();
  const x = e.clientX - r.left,
    y = e.clientY - r.top;
  const h = heatmap.hit(x, y);
  const wrapRect = ui.wrap.getBoundingClientRect();
  const tx = e.clientX - wrapRect.left,
    ty = e.clientY - wrapRect.top;
  const { state } = app;
  if (!h) {
    ui.tooltip.hidden = true;
    if (!state.locked) {
      app.hover = { row: null, col: null };
      redraw();
    }
    return;
  }
  if (h.kind === 'cell') showTooltip(tx, ty, cellText(state.locked?.row ?? h.row, state.locked?.col ?? h.col));
  else if (h.kind === 'row') showTooltip(tx, ty, `${axisName(h.row)} (query) attends to its row`);
  else showTooltip(tx, ty, `${axisName(h.col)} (key): its column`);
  if (state.locked) return;
  const next =
    h.kind === 'cell'
      ? { row: h.row, col: h.col }
      : h.kind === 'row'
        ? { row: h.row, col: null }
        : { row: null, col: h.col };
  if (next.row !== app.hover.row || next.col !== app.hover.col) {
    app.hover = next;
    redraw();
    paintStrip();
    const row = app.hover.row;
    if (heatmap.matrix?.poolFactor === 1)
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
  const r = ui.canvas.getBoundingClientRect();
  const h = heatmap.hit(e.clientX - r.left, e.clientY - r.top);
  if (!h) {
    if (app.state.locked) toggleLock({ row: null, col: null });
    return;
  }
  toggleLock(
    h.kind === 'cell'
      ? { row: h.row, col: h.col }
      : h.kind === 'row'
        ? { row: h.row, col: null }
        : { row: null, col: h.col },
  );
});
