// The panel: layer/head selectors, the heatmap, the all-heads grid, the token strip, the legend.
// All token text goes into the DOM through textContent (or onto a canvas), never through innerHTML.
import { getApi } from './vscodeApi';
import { Heatmap, renderImage } from './heatmap';
import { isHostMessage, type AnalysisView, type HostToWebview, type ViewState } from '../shared/messages';
import { axisLabel, displayToken, truncationSummary } from '../shared/tokens';
import { legendTicks, rampColour, cssColour, scaleColour } from '../shared/colour';
import { maxValue } from '../shared/matrix';
import { Methods, METRIC_NAMES, type AnalysisMethod, type HeadMetric, type HistogramResult, type MetricsResult, type ModularityAllResult, type ModularityResult, type ViewUnit } from '../shared/protocol';
import { categorical, drawGraph, drawHistogram, drawLines, graphHit } from './charts';

type TabId = 'heatmap' | 'heads' | 'graph' | 'lines' | 'distributions' | 'rollout';
const TABS: TabId[] = ['heatmap', 'heads', 'graph', 'lines', 'distributions', 'rollout'];
interface Options { tab: TabId; hideSpecial: boolean; wordLevel: boolean; headsMetric: string; distMetric: string; graphSource: 'head' | 'mean'; threshold: number; sortKey: string; sortDesc: boolean }
interface Persisted extends ViewState { analysis?: AnalysisView; options?: Partial<Options> }
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
  hideSpecial: $<HTMLInputElement>('hide-special'), wordLevel: $<HTMLInputElement>('word-level'), tabs: $('tabs'),
  headsMetric: $<HTMLSelectElement>('heads-metric'), headsGrid: $('heads-grid'), headsHead: $('heads-head'), headsBody: $('heads-body'), headsSummary: $('heads-summary'),
  graphSource: $<HTMLSelectElement>('graph-source'), graphThreshold: $<HTMLInputElement>('graph-threshold'), graphThresholdValue: $('graph-threshold-value'),
  graphQ: $('graph-q'), graphCanvas: $<HTMLCanvasElement>('graph-canvas'),
  linesHeads: $('lines-heads'), linesLeft: $('lines-left'), linesRight: $('lines-right'), linesCanvas: $<HTMLCanvasElement>('lines-canvas'),
  distWeights: $<HTMLCanvasElement>('dist-weights'), distWeightsTitle: $('dist-weights-title'), distMetric: $<HTMLSelectElement>('dist-metric'),
  distMetrics: $<HTMLCanvasElement>('dist-metrics'), distMetricTitle: $('dist-metric-title'),
  rolloutCanvas: $<HTMLCanvasElement>('rollout-canvas'), rolloutCaption: $('rollout-caption'),
};

const heatmap = new Heatmap(el.canvas);
const rolloutMap = new Heatmap(el.rolloutCanvas);
let options: Options = { tab: 'heatmap', hideSpecial: false, wordLevel: false, headsMetric: 'entropy', distMetric: 'selfDistance', graphSource: 'head', threshold: 0.1, sortKey: '', sortDesc: false };
/** The heatmap's rows/columns when a view option (hide special, word level) is on; null = one per token. */
let units: ViewUnit[] | null = null;
interface RpcAnswer { result: Record<string, unknown>; data?: Float32Array }
const rpcCache = new Map<string, Promise<RpcAnswer | undefined>>();
const rpcPending = new Map<number, (a: RpcAnswer | undefined) => void>();
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
  vscode.setState({ ...state, options, ...(analysis ? { analysis } : {}) });
}

/** Canonical key of an analysis request: the method and its params without analysisId, keys sorted. */
export function rpcKey(method: string, params: Record<string, unknown>): string {
  return `${method} ${JSON.stringify(Object.fromEntries(Object.entries(params).filter(([k]) => k !== 'analysisId').sort(([a], [b]) => (a < b ? -1 : 1))))}`;
}

/** An analysis method through the host (cached per analysis); undefined when it failed (the status line says why). */
function rpc(method: AnalysisMethod, params: Record<string, unknown>): Promise<RpcAnswer | undefined> {
  if (!analysis) return Promise.resolve(undefined);
  const k = rpcKey(method, params);
  const hit = rpcCache.get(k);
  if (hit) return hit;
  const requestId = nextRequest++;
  const p = new Promise<RpcAnswer | undefined>((resolve) => {
    rpcPending.set(requestId, resolve);
    vscode.postMessage({ type: 'rpc', requestId, method, params: { ...params, analysisId: analysis!.analysisId } });
  });
  rpcCache.set(k, p);
  void p.then((a) => { if (!a) rpcCache.delete(k); });
  return p;
}

/** Only the options that are on travel (so equal views share one request). */
function viewFlags(): Record<string, boolean> {
  return { ...(options.hideSpecial ? { hideSpecial: true } : {}), ...(options.wordLevel ? { wordLevel: true } : {}) };
}

function unitLabels(u: ViewUnit[]): string[] {
  return u.map((x) => axisLabel(x.text));
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
  const flags = viewFlags();
  if (Object.keys(flags).length) {
    const v = await rpc(Methods.view, { layer, head, ...flags });
    if (seq !== drawSeq || !v?.data) return;
    const r = v.result as { rows: number; cols: number; poolFactor: number; units: ViewUnit[] };
    units = r.units;
    heatmap.set({ rows: r.rows, cols: r.cols, data: v.data, poolFactor: r.poolFactor }, unitLabels(r.units), unitLabels(r.units));
    el.app.dataset.units = String(r.units.length);
  } else {
    const m = await requestMatrix(layer, head);
    if (seq !== drawSeq || !m) return;
    units = null;
    delete el.app.dataset.units;
    heatmap.set({ rows: m.rows, cols: m.cols, data: m.data, poolFactor: m.poolFactor }, pooledLabels(m), pooledLabels(m));
  }
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
  return { row: editorFocus === null ? null : tokenToUnit(editorFocus), col: null };
}

function tokenToUnit(token: number): number | null {
  if (!units) return token;
  const k = units.findIndex((u) => token >= u.firstToken && token <= u.lastToken);
  return k < 0 ? null : k;
}

/** The name of heatmap row/column i: a unit's text when a view option is on, else the token's. */
function axisName(i: number): string {
  if (units) return units[i] ? displayToken(units[i]!.text).label : `#${i}`;
  return tokenName(i);
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
  const focus = units ? null : currentHighlight().row ?? editorFocus;
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
  syncTabs();
  vscode.postMessage({ type: 'viewChanged', layer: state.layer, head: state.head, view: state.view, hideSpecial: options.hideSpecial, wordLevel: options.wordLevel });
  const tab = options.tab;
  rendering = tab === 'heatmap' ? (state.view === 'grid' ? showGrid() : showHead())
    : tab === 'heads' ? showHeads()
    : tab === 'graph' ? showGraph()
    : tab === 'lines' ? showLines()
    : tab === 'distributions' ? showDistributions()
    : showRollout();
  await rendering;
}

// ---------- tabs ----------

function tabButton(t: TabId): HTMLButtonElement { return $<HTMLButtonElement>(`tab-${t}`); }

function syncTabs(): void {
  for (const t of TABS) {
    const b = tabButton(t), selected = t === options.tab;
    b.setAttribute('aria-selected', String(selected));
    b.tabIndex = selected ? 0 : -1;
    $(`panel-${t}`).hidden = !selected;
  }
  el.app.dataset.tab = options.tab;
  el.viewHead.disabled = el.viewGrid.disabled = options.tab !== 'heatmap';
}

function selectTab(t: TabId, focus = false): void {
  options.tab = t;
  if (focus) tabButton(t).focus();
  void render();
}

for (const t of TABS) tabButton(t).addEventListener('click', () => selectTab(t));
el.tabs.addEventListener('keydown', (e) => {
  const i = TABS.indexOf(options.tab);
  let next: number | undefined;
  if (e.key === 'ArrowRight') next = (i + 1) % TABS.length;
  else if (e.key === 'ArrowLeft') next = (i - 1 + TABS.length) % TABS.length;
  else if (e.key === 'Home') next = 0;
  else if (e.key === 'End') next = TABS.length - 1;
  if (next === undefined) return;
  e.preventDefault();
  e.stopPropagation();
  selectTab(TABS[next]!, true);
});

function openHead(layer: number, head: number): void {
  state = { ...state, layer, head, view: 'head', locked: null };
  options.tab = 'heatmap';
  syncControls();
  void render().then(() => tabButton('heatmap').focus());
}

// ---------- Heads ----------

type Column = { key: string; label: string; title: string; value: (m: HeadMetric, q?: { q: number; communityCount: number }) => number | undefined; digits: number };
const METRIC_LABELS: Record<string, string> = {
  entropy: 'entropy', normalizedEntropy: 'norm. entropy', meanDistance: 'mean dist.', firstToken: 'first tok.', cls: '[CLS]', sep: '[SEP]',
  previousToken: 'prev. tok.', self: 'self', duplicateToken: 'duplicate', induction: 'induction', selfDistance: '‖A−I‖/n', q: 'modularity Q', communityCount: 'communities',
};
const COLUMNS: Column[] = [
  { key: 'layer', label: 'layer', title: 'layer', value: (m) => m.layer, digits: 0 },
  { key: 'head', label: 'head', title: 'head', value: (m) => m.head, digits: 0 },
  ...METRIC_NAMES.map((k): Column => ({ key: k, label: METRIC_LABELS[k] ?? k, title: k, value: (m) => m[k] as number | undefined, digits: 3 })),
  { key: 'q', label: METRIC_LABELS.q!, title: 'Newman modularity Q of the symmetrised attention graph (Louvain communities)', value: (_m, q) => q?.q, digits: 3 },
  { key: 'communityCount', label: METRIC_LABELS.communityCount!, title: 'number of Louvain communities', value: (_m, q) => q?.communityCount, digits: 0 },
];

async function headsData(): Promise<{ metrics: HeadMetric[]; q: Map<string, { q: number; communityCount: number }> } | undefined> {
  const [m, q] = await Promise.all([rpc(Methods.metrics, {}), rpc(Methods.modularityAll, {})]);
  if (!m) return undefined;
  const qm = new Map<string, { q: number; communityCount: number }>();
  for (const h of (q?.result as ModularityAllResult | undefined)?.heads ?? []) qm.set(`${h.layer}/${h.head}`, h);
  return { metrics: (m.result as unknown as MetricsResult).metrics, q: qm };
}

async function showHeads(): Promise<void> {
  if (!analysis) return;
  const d = await headsData();
  if (!d || options.tab !== 'heads') return;
  const present = COLUMNS.filter((c) => d.metrics.some((m) => c.value(m, d.q.get(`${m.layer}/${m.head}`)) !== undefined));
  // Metric selector (once per analysis).
  if (el.headsMetric.options.length !== present.length - 2) {
    el.headsMetric.replaceChildren();
    for (const c of present.slice(2)) {
      const o = document.createElement('option'); o.value = c.key; o.textContent = c.label; el.headsMetric.append(o);
    }
  }
  if (!present.some((c) => c.key === options.headsMetric)) options.headsMetric = 'entropy';
  el.headsMetric.value = options.headsMetric;
  const colour = present.find((c) => c.key === options.headsMetric)!;
  const qOf = (m: HeadMetric) => d.q.get(`${m.layer}/${m.head}`);
  // Small multiples: layers × heads, coloured by the chosen metric.
  const { layers, heads } = analysis.model;
  const values = d.metrics.map((m) => colour.value(m, qOf(m)) ?? NaN);
  const finite = values.filter((v) => Number.isFinite(v));
  const lo = Math.min(...finite), hi = Math.max(...finite);
  el.headsGrid.replaceChildren();
  el.headsGrid.style.gridTemplateColumns = `auto repeat(${heads}, minmax(42px, 1fr))`;
  el.headsGrid.append(document.createElement('span'));
  for (let h = 0; h < heads; h++) { const s = document.createElement('span'); s.className = 'grid-label'; s.textContent = `H${h}`; el.headsGrid.append(s); }
  for (let l = 0; l < layers; l++) {
    const s = document.createElement('span'); s.className = 'grid-label'; s.textContent = `L${l}`; el.headsGrid.append(s);
    for (let h = 0; h < heads; h++) {
      const idx = d.metrics.findIndex((m) => m.layer === l && m.head === h);
      const v = values[idx] ?? NaN;
      const b = document.createElement('button');
      b.type = 'button'; b.className = 'cell';
      const t = hi > lo ? (v - lo) / (hi - lo) : 0.5;
      const [r, g, bl] = scaleColour(Number.isFinite(t) ? t : 0, 1);
      b.style.backgroundColor = cssColour([r, g, bl]);
      if (0.299 * r + 0.587 * g + 0.114 * bl < 140) b.classList.add('dark');
      b.textContent = Number.isFinite(v) ? v.toFixed(colour.digits === 0 ? 0 : 2) : '–';
      b.title = `layer ${l}, head ${h}: ${colour.label} ${Number.isFinite(v) ? v.toFixed(4) : 'n/a'}`;
      b.setAttribute('aria-label', b.title);
      b.dataset.layer = String(l); b.dataset.head = String(h);
      b.addEventListener('click', () => openHead(l, h));
      el.headsGrid.append(b);
    }
  }
  el.headsSummary.textContent = `${colour.label}: ${lo.toFixed(3)} (dark) … ${hi.toFixed(3)} (bright)`;
  // The table.
  el.headsHead.replaceChildren();
  for (const c of present) {
    const th = document.createElement('th');
    th.scope = 'col';
    th.dataset.key = c.key;
    th.setAttribute('aria-sort', options.sortKey === c.key ? (options.sortDesc ? 'descending' : 'ascending') : 'none');
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = c.label + (options.sortKey === c.key ? (options.sortDesc ? ' ▼' : ' ▲') : '');
    b.title = `${c.title}: click to sort`;
    b.addEventListener('click', () => {
      options.sortDesc = options.sortKey === c.key ? !options.sortDesc : c.key !== 'layer' && c.key !== 'head';
      options.sortKey = c.key;
      persist();
      void showHeads().then(() => (el.headsHead.querySelector(`th[data-key="${c.key}"] button`) as HTMLButtonElement | null)?.focus());
    });
    th.append(b);
    el.headsHead.append(th);
  }
  const rows = d.metrics.slice();
  const sortCol = present.find((c) => c.key === options.sortKey);
  if (sortCol) {
    const val = (m: HeadMetric) => sortCol.value(m, qOf(m)) ?? -Infinity;
    rows.sort((a, b) => (options.sortDesc ? val(b) - val(a) : val(a) - val(b)) || a.layer - b.layer || a.head - b.head);
  }
  el.headsBody.replaceChildren();
  for (const m of rows) {
    const tr = document.createElement('tr');
    tr.tabIndex = 0;
    tr.dataset.layer = String(m.layer); tr.dataset.head = String(m.head);
    if (m.layer === state.layer && m.head === state.head) tr.classList.add('current');
    tr.setAttribute('aria-label', `layer ${m.layer}, head ${m.head}: open in the heatmap`);
    for (const c of present) {
      const td = document.createElement('td');
      const v = c.value(m, qOf(m));
      td.textContent = v === undefined ? '–' : (Math.abs(v) < 0.5 * 10 ** -c.digits ? 0 : v).toFixed(c.digits); // no "-0.000"
      if (v !== undefined) td.title = String(v);
      td.dataset.key = c.key;
      if (v !== undefined) td.dataset.value = String(v);
      tr.append(td);
    }
    tr.addEventListener('click', () => openHead(m.layer, m.head));
    tr.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); openHead(m.layer, m.head); }
      else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault(); e.stopPropagation();
        const sib = (e.key === 'ArrowDown' ? tr.nextElementSibling : tr.previousElementSibling) as HTMLElement | null;
        sib?.focus();
      }
    });
    el.headsBody.append(tr);
  }
  el.app.dataset.heads = 'painted';
}

el.headsMetric.addEventListener('change', () => { options.headsMetric = el.headsMetric.value; persist(); void showHeads(); });

// ---------- Graph ----------

let graphHover: number | null = null;
let graphData: { data: Float32Array; n: number; communities?: number[] } | undefined;
let graphSummary = '';

function graphSize(): number {
  return Math.max(360, Math.min(720, (document.body.clientWidth || 800) - 40));
}

async function showGraph(): Promise<void> {
  if (!analysis) return;
  const layer = state.layer, head = options.graphSource === 'mean' ? -1 : state.head;
  el.graphSource.value = options.graphSource;
  el.graphThreshold.value = String(options.threshold);
  el.graphThresholdValue.textContent = options.threshold.toFixed(2);
  const [m, mod] = await Promise.all([requestMatrix(layer, head), rpc(Methods.modularity, { layer, head })]);
  if (!m || options.tab !== 'graph' || layer !== state.layer) return;
  const modularity = mod?.result as ModularityResult | undefined;
  graphData = { data: m.data, n: m.rows, ...(modularity ? { communities: modularity.communities } : {}) };
  const what = `${layer < 0 ? 'mean of layers' : `layer ${layer}`}, ${head < 0 ? 'mean of heads' : `head ${head}`}`;
  graphSummary = modularity ? `${what} · modularity Q = ${modularity.q.toFixed(3)} · ${modularity.communityCount} communities` : `${what} · modularity unavailable`;
  drawGraphNow();
  el.app.dataset.graph = 'painted';
}

function drawGraphNow(): void {
  if (!graphData) return;
  drawGraph(el.graphCanvas, { ...graphData, labels: labels(), threshold: options.threshold }, graphSize(), graphHover);
  // The focused/hovered node, in words (the canvas itself is not readable by a screen reader).
  const h = graphHover;
  el.graphQ.textContent = h === null ? graphSummary
    : `${graphSummary} · ${tokenName(h)}: community ${graphData.communities?.[h] ?? '?'}, ${Array.from({ length: graphData.n }, (_, j) => j).filter((j) => j !== h && graphData!.data[h * graphData!.n + j]! >= options.threshold).length} edges out`;
}

el.graphSource.addEventListener('change', () => { options.graphSource = el.graphSource.value === 'mean' ? 'mean' : 'head'; persist(); void showGraph(); });
el.graphThreshold.addEventListener('input', () => {
  options.threshold = Number(el.graphThreshold.value);
  el.graphThresholdValue.textContent = options.threshold.toFixed(2);
  persist();
  drawGraphNow();
});
el.graphCanvas.addEventListener('mousemove', (e) => {
  if (!graphData) return;
  const r = el.graphCanvas.getBoundingClientRect();
  const hit = graphHit(graphData.n, graphSize(), e.clientX - r.left, e.clientY - r.top);
  if (hit !== graphHover) { graphHover = hit; el.graphCanvas.title = hit === null ? '' : `${tokenName(hit)}: community ${graphData.communities?.[hit] ?? '?'}`; drawGraphNow(); }
});
el.graphCanvas.addEventListener('mouseleave', () => { graphHover = null; drawGraphNow(); });
el.graphCanvas.addEventListener('keydown', (e) => {
  if (!graphData || (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft' && e.key !== 'Escape')) return;
  e.preventDefault(); e.stopPropagation();
  const n = graphData.n;
  graphHover = e.key === 'Escape' ? null : graphHover === null ? 0 : (graphHover + (e.key === 'ArrowRight' ? 1 : n - 1)) % n;
  drawGraphNow();
});

// ---------- Lines ----------

const LINE_ROW = 20;
let linesIsolate: { side: 'left' | 'right'; token: number } | null = null;
let linesHeads: (Float32Array | null)[] = [];
let linesShown: boolean[] = [];
let linesShownFor: string | undefined;

async function showLines(): Promise<void> {
  if (!analysis) return;
  const { heads } = analysis.model;
  const layer = state.layer;
  // The selected head alone (its colour stands out), or every head for the mean; the checkboxes add or remove heads.
  const shownKey = `${analysis.analysisId}/${state.head}`;
  if (linesShown.length !== heads || linesShownFor !== shownKey) {
    linesShown = Array.from({ length: heads }, (_, h) => state.head < 0 || h === state.head);
    linesShownFor = shownKey;
  }
  // Head toggles, one colour each.
  el.linesHeads.replaceChildren();
  for (let h = 0; h < heads; h++) {
    const label = document.createElement('label');
    label.className = 'head-toggle';
    const cb = document.createElement('input');
    cb.type = 'checkbox'; cb.checked = linesShown[h]!; cb.dataset.head = String(h);
    cb.setAttribute('aria-label', `show head ${h}`);
    cb.addEventListener('change', () => { linesShown[h] = cb.checked; drawLinesNow(); });
    const sw = document.createElement('span'); sw.className = 'swatch'; sw.style.backgroundColor = categorical(h);
    const t = document.createElement('span'); t.textContent = `H${h}`;
    label.append(cb, sw, t);
    el.linesHeads.append(label);
  }
  for (const [text, on] of [['all', true], ['none', false]] as const) {
    const b = document.createElement('button');
    b.type = 'button'; b.textContent = text; b.id = `lines-${text}`;
    b.setAttribute('aria-label', `${on ? 'show' : 'hide'} every head`);
    b.addEventListener('click', () => {
      linesShown = linesShown.map(() => on);
      el.linesHeads.querySelectorAll('input').forEach((cb) => { cb.checked = on; });
      drawLinesNow();
    });
    el.linesHeads.append(b);
  }
  const ms = await Promise.all(Array.from({ length: heads }, (_, h) => requestMatrix(layer, h)));
  if (options.tab !== 'lines' || layer !== state.layer) return;
  linesHeads = ms.map((m) => m?.data ?? null);
  buildLineTokens();
  drawLinesNow();
  el.app.dataset.lines = 'painted';
}

function buildLineTokens(): void {
  for (const [col, side] of [[el.linesLeft, 'left'], [el.linesRight, 'right']] as const) {
    col.replaceChildren();
    analysis?.tokens.forEach((t, i) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'lines-tok' + (t.special ? ' special' : '');
      b.textContent = displayToken(t.text).label; // text, never markup
      b.dataset.index = String(i);
      b.title = side === 'left' ? `${tokenName(i)} attends to… (hover or focus to isolate)` : `…attends to ${tokenName(i)} (hover or focus to isolate)`;
      const on = () => { linesIsolate = { side, token: i }; drawLinesNow(); vscode.postMessage({ type: 'hoverToken', token: i }); };
      const off = () => { linesIsolate = null; drawLinesNow(); vscode.postMessage({ type: 'hoverToken', token: null }); };
      b.addEventListener('mouseenter', on); b.addEventListener('focus', on);
      b.addEventListener('mouseleave', off); b.addEventListener('blur', off);
      b.addEventListener('keydown', (e) => {
        if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp' && e.key !== 'ArrowLeft' && e.key !== 'ArrowRight') return;
        e.preventDefault(); e.stopPropagation();
        const other = side === 'left' ? el.linesRight : el.linesLeft;
        const target = e.key === 'ArrowDown' ? b.nextElementSibling : e.key === 'ArrowUp' ? b.previousElementSibling : other.children[i];
        (target as HTMLElement | null)?.focus();
      });
      col.append(b);
    });
  }
}

function drawLinesNow(): void {
  if (!analysis) return;
  const n = analysis.tokens.length;
  for (const col of [el.linesLeft, el.linesRight]) {
    Array.from(col.children).forEach((c, i) => c.classList.toggle('active', linesIsolate !== null && (col === el.linesLeft) === (linesIsolate.side === 'left') && linesIsolate.token === i));
  }
  drawLines(el.linesCanvas, { heads: linesHeads.map((m, h) => (linesShown[h] ? m : null)), n, rowHeight: LINE_ROW, isolate: linesIsolate }, 220);
}

// ---------- Distributions ----------

const BINS = 20;

async function showDistributions(): Promise<void> {
  if (!analysis) return;
  const { layer, head } = state;
  if (el.distMetric.options.length === 0) {
    for (const k of METRIC_NAMES) { const o = document.createElement('option'); o.value = k; o.textContent = `${METRIC_LABELS[k] ?? k} (${k})`; el.distMetric.append(o); }
  }
  el.distMetric.value = options.distMetric;
  const weightsParams = { bins: BINS, ...(layer >= 0 ? { layer } : {}), ...(head >= 0 ? { head } : {}) };
  const [w, mh] = await Promise.all([rpc(Methods.histogram, weightsParams), rpc(Methods.histogram, { bins: BINS, metric: options.distMetric })]);
  if (options.tab !== 'distributions') return;
  const width = Math.max(320, Math.min(760, (document.body.clientWidth || 800) - 40));
  const where = `${layer < 0 ? 'all layers' : `layer ${layer}`}, ${head < 0 ? 'all heads' : `head ${head}`}`;
  if (w) {
    const h = w.result as unknown as HistogramResult;
    el.distWeightsTitle.textContent = `Attention weights — ${where} (${h.total} weights, ${h.counts.length} bins)`;
    drawHistogram(el.distWeights, h, width, 'attention weight');
    el.distWeights.setAttribute('aria-label', `Histogram of attention weights, ${where}: counts ${h.counts.join(', ')}`);
  }
  if (mh) {
    const h = mh.result as unknown as HistogramResult;
    el.distMetricTitle.textContent = `${METRIC_LABELS[options.distMetric] ?? options.distMetric} across all ${h.total} heads`;
    drawHistogram(el.distMetrics, h, width, options.distMetric);
    el.distMetrics.setAttribute('aria-label', `Histogram of ${options.distMetric} across heads: counts ${h.counts.join(', ')}`);
  } else {
    el.distMetricTitle.textContent = `${options.distMetric}: not available for this model`;
  }
  el.app.dataset.distributions = 'painted';
}

el.distMetric.addEventListener('change', () => { options.distMetric = el.distMetric.value; persist(); void showDistributions(); });

// ---------- Rollout ----------

let rolloutUnits: ViewUnit[] = [];

async function showRollout(): Promise<void> {
  if (!analysis) return;
  const r = await rpc(Methods.rollout, viewFlags());
  if (!r?.data || options.tab !== 'rollout') return;
  const res = r.result as { rows: number; cols: number; poolFactor: number; layer: number; units: ViewUnit[] };
  rolloutUnits = res.units;
  rolloutMap.set({ rows: res.rows, cols: res.cols, data: r.data, poolFactor: res.poolFactor }, unitLabels(res.units), unitLabels(res.units));
  rolloutMap.draw(Math.max(200, (document.body.clientWidth || 800) - 40), { row: null, col: null });
  el.rolloutCaption.textContent = `Attention rollout (Abnar & Zuidema 2020) through layer ${res.layer}: row i is how much token i's representation draws on each input token. Largest value ${rolloutMap.max.toFixed(3)}.`;
  el.app.dataset.rollout = 'painted';
}

el.rolloutCanvas.addEventListener('mousemove', (e) => {
  const m = rolloutMap.matrix;
  if (!m) return;
  const r = el.rolloutCanvas.getBoundingClientRect();
  const h = rolloutMap.hit(e.clientX - r.left, e.clientY - r.top);
  el.rolloutCanvas.title = h?.kind === 'cell' ? `${rolloutUnits[h.row]?.text ?? h.row} → ${rolloutUnits[h.col]?.text ?? h.col}: ${m.data[h.row * m.cols + h.col]!.toFixed(4)}` : '';
});

// ---------- view options ----------

function onViewOption(): void {
  options.hideSpecial = el.hideSpecial.checked;
  options.wordLevel = el.wordLevel.checked;
  state.locked = null;
  hover = { row: null, col: null };
  void render();
}
el.hideSpecial.addEventListener('change', onViewOption);
el.wordLevel.addEventListener('change', onViewOption);
let rendering: Promise<void> = Promise.resolve();

function syncControls(): void {
  el.layer.value = String(state.layer);
  el.head.value = String(state.head);
}

function setAnalysis(a: AnalysisView, s?: Partial<ViewState>): void {
  analysis = a;
  cache.clear();
  rpcCache.clear();
  for (const r of rpcPending.values()) r(undefined);
  rpcPending.clear();
  units = null;
  graphData = undefined; graphHover = null; linesIsolate = null; linesHeads = []; linesShown = [];
  el.headsMetric.replaceChildren();
  el.hideSpecial.checked = options.hideSpecial;
  el.wordLevel.checked = options.wordLevel;
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
  return `${axisName(row)} → ${axisName(col)}: ${v.toFixed(4)}`;
}

el.canvas.addEventListener('mousemove', (e) => {
  const r = el.canvas.getBoundingClientRect();
  const x = e.clientX - r.left, y = e.clientY - r.top;
  const h = heatmap.hit(x, y);
  const wrapRect = el.wrap.getBoundingClientRect();
  const tx = e.clientX - wrapRect.left, ty = e.clientY - wrapRect.top;
  if (!h) { el.tooltip.hidden = true; if (!state.locked) { hover = { row: null, col: null }; redraw(); } return; }
  if (h.kind === 'cell') showTooltip(tx, ty, cellText(state.locked?.row ?? h.row, state.locked?.col ?? h.col));
  else if (h.kind === 'row') showTooltip(tx, ty, `${axisName(h.row)} (query) attends to its row`);
  else showTooltip(tx, ty, `${axisName(h.col)} (key): its column`);
  if (state.locked) return;
  const next = h.kind === 'cell' ? { row: h.row, col: h.col } : h.kind === 'row' ? { row: h.row, col: null } : { row: null, col: h.col };
  if (next.row !== hover.row || next.col !== hover.col) {
    hover = next;
    redraw();
    paintStrip();
    if (heatmap.matrix?.poolFactor === 1) vscode.postMessage({ type: 'hoverToken', token: hover.row === null ? null : units ? units[hover.row]?.firstToken ?? null : hover.row });
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
  if (!analysis || e.target instanceof HTMLSelectElement || e.target instanceof HTMLInputElement || e.altKey || e.ctrlKey || e.metaKey) return;
  if (e.target instanceof HTMLElement && e.target.closest('#tabs, #heads-table, .lines-col')) return;
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
  resizeTimer = window.setTimeout(() => {
    if (options.tab === 'heatmap' && state.view === 'head') redraw();
    else if (options.tab === 'graph') drawGraphNow();
    else if (options.tab !== 'heatmap') void render();
  }, 60);
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
    case 'rpcResult': {
      const r = rpcPending.get(m.requestId);
      rpcPending.delete(m.requestId);
      r?.({ result: m.result, ...(m.data ? { data: new Float32Array(m.data) } : {}) });
      return;
    }
    case 'rpcError': {
      const r = rpcPending.get(m.requestId);
      rpcPending.delete(m.requestId);
      r?.(undefined);
      el.status.textContent = `Could not load: ${m.message}`;
      return;
    }
  }
}

// Restore after the panel was hidden (the webview is recreated) or VS Code restarted.
const saved = vscode.getState();
if (saved?.analysis) {
  state = { layer: saved.layer ?? 0, head: saved.head ?? 0, view: saved.view ?? 'head', locked: saved.locked ?? null };
  options = { ...options, ...saved.options };
  if (!TABS.includes(options.tab)) options.tab = 'heatmap';
  setAnalysis(saved.analysis, state);
}
vscode.postMessage({ type: 'ready' });
