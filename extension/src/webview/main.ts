// The panel's wiring: tab switching, the view options, layer/head keys, host messages and restore.
// Each tab lives in tabs/; what they share (DOM, state, requests) in state.ts.
// All token text goes into the DOM through textContent (or onto a canvas), never through innerHTML.
import {
  isHostMessage,
  type AnalysisView,
  type HostToWebview,
  type ShownView,
  type ViewState,
} from '../shared/messages';
import { truncationSummary } from '../shared/tokens';
import { modelDisplayName } from '../shared/modelName';
import { app, persist, resetRequests, resolveRpc, setRenderHook, syncControls, vscode } from './state';
import { frame, TABS, type TabId } from './frame';
import { OWN_KEYS } from './dom';
import { buildStrip, paintStrip, redraw, resetHeatmap, showHeatmap, toggleLock } from './tabs/heatmap';
import { resetHeads, showHeads } from './tabs/heads';
import { drawGraphNow, resetGraph, showGraph } from './tabs/graph';
import { resetLines, showLines } from './tabs/lines';
import { showDistributions } from './tabs/distributions';
import { resetRollout, showRollout } from './tabs/rollout';
import { resetSections, showSections } from './tabs/sections';
import { resetDiff, setDiff, showDiff } from './tabs/diff';

let rendering: Promise<void> = Promise.resolve();
let toldView = '';

/** Tells the host what the panel shows when it changed (the editor tint and the exports follow); nothing answers. */
function tellView(view: ShownView): void {
  const json = JSON.stringify(view);
  if (json === toldView) return;
  toldView = json;
  vscode.postMessage({ type: 'viewChanged', ...view });
}

/** What each tab's controls do, after where the text came from; a message (busy, an error) stays until the next one. */
const TAB_HINTS: Record<TabId, string> = {
  heatmap: 'rows: query tokens, columns: key tokens. Hover for scores, click to lock, arrow keys step layer/head.',
  heads: 'one row per head. Click a column to sort, a row to open that head in the heatmap.',
  graph: 'tokens as nodes, edges above the threshold, colours by community. Hover a node for its edges.',
  lines: 'query tokens on the left, key tokens on the right, one colour per head. Hover a token to isolate its lines.',
  distributions: 'histograms of the attention weights and of a metric across heads.',
  rollout: 'attention rolled out through the layers. Click a token for its row and its attention flow.',
  sections: 'attention summed by section of the prompt. Hover a section to mark it in the editor.',
  diff: 'what an edit changed. Click a head for its ΔA.',
};

function showHint(): void {
  const a = app.analysis;
  if (!a || frame.status.dataset.kind === 'message') return;
  frame.status.dataset.kind = 'hint';
  frame.status.textContent = `${a.source} — ${TAB_HINTS[app.options.tab]}`;
}

/** A busy or error message in the status line, kept over the tab hints until the next analysis. */
function showMessage(message: string): void {
  frame.status.dataset.kind = 'message';
  frame.status.textContent = message;
}

async function render(): Promise<void> {
  const { state, options } = app;
  persist();
  showHint();
  frame.viewHead.setAttribute('aria-pressed', String(state.view === 'head'));
  frame.viewGrid.setAttribute('aria-pressed', String(state.view === 'grid'));
  syncTabs();
  const { hideSpecial, wordLevel } = options;
  tellView({ layer: state.layer, head: state.head, view: state.view, hideSpecial, wordLevel, tab: options.tab });
  const tab = options.tab;
  rendering =
    tab === 'heatmap'
      ? showHeatmap()
      : tab === 'heads'
        ? showHeads()
        : tab === 'graph'
          ? showGraph()
          : tab === 'lines'
            ? showLines()
            : tab === 'distributions'
              ? showDistributions()
              : tab === 'sections'
                ? showSections()
                : tab === 'diff'
                  ? showDiff()
                  : showRollout();
  await rendering;
}
setRenderHook(render);

// ---------- tabs ----------

function syncTabs(): void {
  for (const t of TABS) {
    const b = frame.tabButtons[t],
      selected = t === app.options.tab;
    b.setAttribute('aria-selected', String(selected));
    b.tabIndex = selected ? 0 : -1;
    frame.tabPanels[t].hidden = !selected;
  }
  frame.app.dataset.tab = app.options.tab;
  frame.viewHead.disabled = frame.viewGrid.disabled = app.options.tab !== 'heatmap';
}

function selectTab(t: TabId, focus = false): void {
  app.options.tab = t;
  if (focus) frame.tabButtons[t].focus();
  void render();
}

for (const t of TABS) frame.tabButtons[t].addEventListener('click', () => selectTab(t));
frame.tabs.addEventListener('keydown', (e) => {
  const i = TABS.indexOf(app.options.tab);
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

// ---------- view options ----------

function onViewOption(): void {
  app.options.hideSpecial = frame.hideSpecial.checked;
  app.options.wordLevel = frame.wordLevel.checked;
  app.state.locked = null;
  app.hover = { row: null, col: null };
  void render();
}
frame.hideSpecial.addEventListener('change', onViewOption);
frame.wordLevel.addEventListener('change', onViewOption);

function setAnalysis(a: AnalysisView, s?: Partial<ViewState>, flowToken: number | null = null): void {
  app.analysis = a;
  resetRequests();
  resetHeatmap();
  resetGraph();
  resetLines();
  resetRollout(flowToken);
  resetHeads();
  resetSections();
  // A new analysis on the Diff tab of an older comparison shows its heatmap (a comparison that follows switches back).
  if (resetDiff(a.analysisId) && app.options.tab === 'diff') app.options.tab = 'heatmap';
  frame.hideSpecial.checked = app.options.hideSpecial;
  frame.wordLevel.checked = app.options.wordLevel;
  app.hover = { row: null, col: null };
  app.editorFocus = null;
  const state = (app.state = { ...app.state, ...s, locked: null });
  if (state.layer >= a.model.layers) state.layer = 0;
  if (state.head >= a.model.heads) state.head = 0;
  fillSelect(frame.layer, a.model.layers, 'mean of layers', state.layer);
  fillSelect(frame.head, a.model.heads, 'mean of heads', state.head);
  const n = a.tokens.length;
  const shape = `${a.model.layers}×${a.model.heads}${a.model.causal ? ' · causal' : ''}`;
  const elapsed = `${Math.round(a.elapsedMs)} ms`;
  const name = modelDisplayName(a.model.id);
  frame.meta.textContent = `${name} · ${a.model.architecture} · ${shape} · ${n} tokens · ${elapsed}`;
  frame.meta.title = a.model.id === 'default' ? modelDisplayName(a.model.id) : a.model.id;
  delete frame.status.dataset.kind; // a new analysis: the tab's hint again
  showHint();
  if (a.truncated) {
    frame.notice.hidden = false;
    frame.notice.textContent = truncationSummary(a.tokens, a.text, a.truncatedAt, a.truncation);
  } else {
    frame.notice.hidden = true;
    frame.notice.textContent = '';
  }
  frame.app.dataset.state = 'loading';
  buildStrip();
  void render();
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

// ---------- controls ----------

frame.layer.addEventListener('change', () => {
  app.state.layer = Number(frame.layer.value);
  app.state.locked = null;
  void render();
});
frame.head.addEventListener('change', () => {
  app.state.head = Number(frame.head.value);
  app.state.locked = null;
  void render();
});
frame.viewHead.addEventListener('click', () => {
  app.state.view = 'head';
  void render();
});
frame.viewGrid.addEventListener('click', () => {
  app.state.view = 'grid';
  void render();
});

window.addEventListener('keydown', (e) => {
  const { analysis, state } = app;
  if (
    !analysis ||
    e.target instanceof HTMLSelectElement ||
    e.target instanceof HTMLInputElement ||
    e.altKey ||
    e.ctrlKey ||
    e.metaKey
  )
    return;
  if (e.target instanceof HTMLElement && e.target.closest(`[${OWN_KEYS}]`)) return;
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
  // The lock stays on its cell: the readout follows the new layer/head (tabs/heatmap.ts, display).
  syncControls();
  void render();
});

// A theme change (VS Code swaps the body's class and the CSS variables on <html>) repaints the shown tab: canvases
// keep the colours they were drawn with.
let themeTimer: number | undefined;
const themeObserver = new MutationObserver(() => {
  if (themeTimer) clearTimeout(themeTimer);
  themeTimer = window.setTimeout(() => {
    if (app.analysis) void render();
  }, 50);
});
themeObserver.observe(document.body, { attributes: true, attributeFilter: ['class'] });
themeObserver.observe(document.documentElement, { attributes: true, attributeFilter: ['style', 'class'] });

let resizeTimer: number | undefined;
window.addEventListener('resize', () => {
  if (resizeTimer) clearTimeout(resizeTimer);
  resizeTimer = window.setTimeout(() => {
    if (app.options.tab === 'heatmap' && app.state.view === 'head') redraw();
    else if (app.options.tab === 'graph') drawGraphNow();
    else if (app.options.tab !== 'heatmap') void render();
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
    case 'busy':
      showMessage(m.message);
      if (!app.analysis) frame.app.dataset.state = 'empty';
      return;
    case 'idle':
      showMessage(m.message);
      frame.app.dataset.state = app.analysis ? 'painted' : 'empty';
      return;
    case 'error':
      showMessage(m.message);
      frame.app.dataset.state = app.analysis ? (frame.app.dataset.state ?? 'painted') : 'error';
      return;
    case 'diff':
      if (m.diff.afterId !== app.analysis?.analysisId) return;
      setDiff(m.diff);
      selectTab('diff');
      return;
    case 'highlightToken':
      app.editorFocus = m.token;
      if (!app.state.locked && app.hover.row === null) {
        redraw();
        paintStrip();
      }
      return;
    case 'setView':
      if (m.layer !== undefined) app.state.layer = m.layer;
      if (m.head !== undefined) app.state.head = m.head;
      if (m.view) app.state.view = m.view;
      if (m.tab && (TABS as string[]).includes(m.tab)) app.options.tab = m.tab as TabId;
      if (m.hideSpecial !== undefined) frame.hideSpecial.checked = m.hideSpecial;
      if (m.wordLevel !== undefined) frame.wordLevel.checked = m.wordLevel;
      syncControls();
      if (m.hideSpecial !== undefined || m.wordLevel !== undefined) {
        onViewOption();
        return;
      }
      void render();
      return;
    case 'rpcResult':
      resolveRpc(m.requestId, { result: m.result, ...(m.data ? { data: new Float32Array(m.data) } : {}) });
      return;
    case 'rpcError':
      // A cancelled (superseded) request's error is nobody's business.
      if (resolveRpc(m.requestId, undefined)) showMessage(`Could not load: ${m.message}`);
      return;
  }
}

// Restore after the panel was hidden (the webview is recreated) or VS Code restarted.
const saved = vscode.getState();
if (saved?.analysis) {
  const state: ViewState = {
    layer: saved.layer ?? 0,
    head: saved.head ?? 0,
    view: saved.view ?? 'head',
    locked: saved.locked ?? null,
  };
  app.state = state;
  app.options = { ...app.options, ...saved.options };
  if (!TABS.includes(app.options.tab)) app.options.tab = 'heatmap';
  setAnalysis(saved.analysis, state, saved.flowToken ?? null);
}
vscode.postMessage({ type: 'ready' });
