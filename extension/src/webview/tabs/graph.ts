// The Graph tab: tokens on a circle, edges above a threshold, Louvain communities as colours.
import { Methods, type ModularityResult } from '../../shared/protocol';
import { drawGraph, graphHit } from '../charts';
import { app, el, labels, persist, requestMatrix, rpc, tokenName } from '../state';

let graphHover: number | null = null;
let graphData: { data: Float32Array; n: number; communities?: number[] } | undefined;
let graphSummary = '';

function graphSize(): number {
  return Math.max(360, Math.min(720, (document.body.clientWidth || 800) - 40));
}

export async function showGraph(): Promise<void> {
  if (!app.analysis) return;
  const layer = app.state.layer, head = app.options.graphSource === 'mean' ? -1 : app.state.head;
  el.graphSource.value = app.options.graphSource;
  el.graphThreshold.value = String(app.options.threshold);
  el.graphThresholdValue.textContent = app.options.threshold.toFixed(2);
  const [m, mod] = await Promise.all([requestMatrix(layer, head), rpc(Methods.modularity, { layer, head })]);
  if (!m || app.options.tab !== 'graph' || layer !== app.state.layer) return;
  const modularity = mod?.result as ModularityResult | undefined;
  graphData = { data: m.data, n: m.rows, ...(modularity ? { communities: modularity.communities } : {}) };
  const what = `${layer < 0 ? 'mean of layers' : `layer ${layer}`}, ${head < 0 ? 'mean of heads' : `head ${head}`}`;
  graphSummary = modularity ? `${what} · modularity Q = ${modularity.q.toFixed(3)} · ${modularity.communityCount} communities` : `${what} · modularity unavailable`;
  drawGraphNow();
  el.app.dataset.graph = 'painted';
}

export function drawGraphNow(): void {
  if (!graphData) return;
  drawGraph(el.graphCanvas, { ...graphData, labels: labels(), threshold: app.options.threshold }, graphSize(), graphHover);
  // The focused/hovered node, in words (the canvas itself is not readable by a screen reader).
  const h = graphHover;
  el.graphQ.textContent = h === null ? graphSummary
    : `${graphSummary} · ${tokenName(h)}: community ${graphData.communities?.[h] ?? '?'}, ${Array.from({ length: graphData.n }, (_, j) => j).filter((j) => j !== h && graphData!.data[h * graphData!.n + j]! >= app.options.threshold).length} edges out`;
}

el.graphSource.addEventListener('change', () => { app.options.graphSource = el.graphSource.value === 'mean' ? 'mean' : 'head'; persist(); void showGraph(); });
el.graphThreshold.addEventListener('input', () => {
  app.options.threshold = Number(el.graphThreshold.value);
  el.graphThresholdValue.textContent = app.options.threshold.toFixed(2);
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

export function resetGraph(): void { graphData = undefined; graphHover = null; }
