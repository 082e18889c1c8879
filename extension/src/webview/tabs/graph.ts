// The Graph tab: tokens (or the view's units) on a circle, edges above a threshold, Louvain communities as colours.
import { LIMITS, Methods, type ViewUnit } from '../../shared/protocol';
import { drawGraph, graphHit } from '../charts';
import { unitCommunities } from '../../shared/units';
import { app, labels, persist, rpc, unitLabels, unitName, unitToken, viewFlags, viewMatrix, vscode } from '../state';
import { frame } from '../frame';
import { h } from '../dom';

const ui = {
  graphSource: h(
    'select',
    { id: 'graph-source', 'aria-label': 'Graph source' },
    h('option', { value: 'head' }, 'the selected head'),
    h('option', { value: 'mean' }, 'the layer mean'),
  ),
  graphThreshold: h('input', {
    type: 'range',
    id: 'graph-threshold',
    min: 0.01,
    max: 0.5,
    step: 0.01,
    value: 0.1,
    'aria-label': 'Edge threshold',
  }),
  graphThresholdValue: h('output', { id: 'graph-threshold-value', for: 'graph-threshold' }, '0.10'),
  graphQ: h('span', { id: 'graph-q', class: 'meta', role: 'status' }),
  graphNote: h('p', { id: 'graph-note', class: 'caption', hidden: true }),
  graphCanvas: h('canvas', {
    id: 'graph-canvas',
    tabindex: 0,
    'aria-label':
      'Attention graph: tokens as nodes on a circle, edges where attention is above the threshold, ' +
      'colours are modularity communities',
  }),
};
frame.tabPanels.graph.append(
  h(
    'div',
    { class: 'tab-controls' },
    h('label', {}, 'Edges from ', ui.graphSource),
    ' ',
    h('label', {}, 'Threshold ', ui.graphThreshold),
    ' ',
    ui.graphThresholdValue,
    ' ',
    ui.graphQ,
  ),
  ui.graphNote,
  ui.graphCanvas,
);

let graphHover: number | null = null;
/** units: the view's nodes when hide-special/word-level is on (null: one node per token). */
let graphData: { data: Float32Array; n: number; units: ViewUnit[] | null; communities?: number[] } | undefined;
let graphSummary = '';

function graphSize(): number {
  return Math.max(360, Math.min(720, (document.body.clientWidth || 800) - 40));
}

export async function showGraph(): Promise<void> {
  if (!app.analysis) return;
  const layer = app.state.layer,
    head = app.options.graphSource === 'mean' ? -1 : app.state.head;
  ui.graphSource.value = app.options.graphSource;
  ui.graphThreshold.value = String(app.options.threshold);
  ui.graphThresholdValue.textContent = app.options.threshold.toFixed(2);
  const flags = JSON.stringify(viewFlags());
  // Past the backend's modularity limit the graph is drawn without communities (it would refuse them).
  const withCommunities = app.analysis.tokens.length <= LIMITS.modularityTokens;
  const [m, mod] = await Promise.all([
    viewMatrix(layer, head),
    withCommunities ? rpc(Methods.modularity, { layer, head }) : Promise.resolve(undefined),
  ]);
  if (!m || app.options.tab !== 'graph' || layer !== app.state.layer || flags !== JSON.stringify(viewFlags())) return;
  const modularity = mod?.result;
  // Louvain runs on the token graph (attention/modularity has no view options): a node of the view
  // takes its first token's community; Q stays the token graph's.
  const mapped = modularity && m.units ? unitCommunities(m.units, modularity.communities) : undefined;
  const communities = mapped?.communities ?? modularity?.communities;
  if (graphHover !== null && graphHover >= m.rows) graphHover = null;
  graphData = { data: m.data, n: m.rows, units: m.units, ...(communities ? { communities } : {}) };
  const what = `${layer < 0 ? 'mean of layers' : `layer ${layer}`}, ${head < 0 ? 'mean of heads' : `head ${head}`}`;
  graphSummary = modularity
    ? `${what} · modularity Q = ${modularity.q.toFixed(3)} · ${modularity.communityCount} communities`
    : withCommunities
      ? `${what} · modularity unavailable`
      : `${what} · no communities past ${LIMITS.modularityTokens.toLocaleString('en-US')} tokens`;
  ui.graphNote.textContent = m.units ? graphNote(m.units, mapped?.mixed ?? 0) : '';
  ui.graphNote.hidden = !m.units;
  frame.app.dataset.graphNodes = String(m.rows);
  drawGraphNow();
  frame.app.dataset.graph = 'painted';
}

/** What the view changed, said plainly: edges are the view's, communities and Q the token graph's. */
function graphNote(units: ViewUnit[], mixed: number): string {
  const o = app.options,
    n = app.analysis?.tokens.length ?? 0;
  const parts = [
    o.hideSpecial ? 'special tokens hidden (edges renormalised without them)' : '',
    o.wordLevel ? 'subword pieces merged into words (attention to a word: sum over its pieces; from a word: mean)' : '',
  ].filter(Boolean);
  const spanning = `${mixed} word${mixed === 1 ? '' : 's'} span${mixed === 1 ? 's' : ''} more than one`;
  return (
    `${units.length} nodes of ${n} tokens: ${parts.join('; ')}. ` +
    'Communities and Q are computed on the full token graph; ' +
    `each node takes its first token's community${o.wordLevel ? ` (${spanning})` : ''}.`
  );
}

function nodeName(i: number): string {
  return unitName(graphData?.units ?? null, i);
}

export function drawGraphNow(): void {
  if (!graphData) return;
  const nodeLabels = graphData.units ? unitLabels(graphData.units) : labels();
  drawGraph(
    ui.graphCanvas,
    { ...graphData, labels: nodeLabels, threshold: app.options.threshold },
    graphSize(),
    graphHover,
  );
  // The focused/hovered node, in words (the canvas itself is not readable by a screen reader).
  const h = graphHover;
  ui.graphQ.textContent = h === null ? graphSummary : `${graphSummary} · ${hoveredNodeText(graphData, h)}`;
}

/** The hovered node: its name, its community and how many of its edges reach the threshold. */
function hoveredNodeText(g: NonNullable<typeof graphData>, h: number): string {
  const edgesOut = Array.from({ length: g.n }, (_, j) => j).filter(
    (j) => j !== h && g.data[h * g.n + j]! >= app.options.threshold,
  ).length;
  return `${nodeName(h)}: community ${g.communities?.[h] ?? '?'}, ${edgesOut} edges out`;
}

function setGraphHover(i: number | null): void {
  if (i === graphHover) return;
  graphHover = i;
  vscode.postMessage({ type: 'hoverToken', token: i === null ? null : unitToken(graphData?.units ?? null, i) });
  drawGraphNow();
}

ui.graphSource.addEventListener('change', () => {
  app.options.graphSource = ui.graphSource.value === 'mean' ? 'mean' : 'head';
  persist();
  void showGraph();
});
ui.graphThreshold.addEventListener('input', () => {
  app.options.threshold = Number(ui.graphThreshold.value);
  ui.graphThresholdValue.textContent = app.options.threshold.toFixed(2);
  persist();
  drawGraphNow();
});
ui.graphCanvas.addEventListener('mousemove', (e) => {
  if (!graphData) return;
  const r = ui.graphCanvas.getBoundingClientRect();
  const hit = graphHit(graphData.n, graphSize(), e.clientX - r.left, e.clientY - r.top);
  if (hit !== graphHover) {
    ui.graphCanvas.title = hit === null ? '' : `${nodeName(hit)}: community ${graphData.communities?.[hit] ?? '?'}`;
    setGraphHover(hit);
  }
});
ui.graphCanvas.addEventListener('mouseleave', () => setGraphHover(null));
ui.graphCanvas.addEventListener('keydown', (e) => {
  if (!graphData || (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft' && e.key !== 'Escape')) return;
  e.preventDefault();
  e.stopPropagation();
  const n = graphData.n;
  setGraphHover(
    e.key === 'Escape' ? null : graphHover === null ? 0 : (graphHover + (e.key === 'ArrowRight' ? 1 : n - 1)) % n,
  );
});

export function resetGraph(): void {
  graphData = undefined;
  graphHover = null;
}
