// The Sections tab: how much attention each section of the prompt gets (attention/sections) — a bar per section
// (its mass, and its mass per token, since long sections collect mass by size), the section × section matrix, and
// each section's mass layer by layer. Hovering a section marks its range in the editor.
import { Methods, type SectionsDto, type TextSection } from '../../shared/protocol';
import { drawCurves } from '../charts';
import { Heatmap } from '../heatmap';
import { app, rpc, vscode } from '../state';
import { frame } from '../frame';
import { h } from '../dom';

const ui = {
  query: h('select', { id: 'sections-query', 'aria-label': 'Query tokens' }),
  empty: h('p', { id: 'sections-empty', class: 'empty-note', hidden: true }),
  barsTitle: h('h3', { id: 'sections-bars-title', class: 'chart-title' }, 'Attention by section'),
  bars: h('div', { id: 'sections-bars', role: 'list', 'aria-labelledby': 'sections-bars-title' }),
  matrixTitle: h('h3', { id: 'sections-matrix-title', class: 'chart-title' }, 'Section × section'),
  matrix: h('canvas', { id: 'sections-matrix', 'aria-labelledby': 'sections-matrix-title' }),
  curveTitle: h('h3', { id: 'sections-curve-title', class: 'chart-title' }, 'By layer'),
  curve: h('canvas', { id: 'sections-curve', 'aria-labelledby': 'sections-curve-title' }),
};
const content = h('div', { id: 'sections-content' }, ui.barsTitle, ui.bars, ui.matrixTitle, ui.matrix);
frame.tabPanels.sections.append(
  h('div', { class: 'tab-controls' }, h('label', {}, 'Query ', ui.query)),
  ui.empty,
  content,
  ui.curveTitle,
  ui.curve,
);
const matrix = new Heatmap(ui.matrix);
let shownSections: TextSection[] = [];

/** A new analysis: its sections fill the query list again. */
export function resetSections(): void {
  ui.query.replaceChildren();
  ui.bars.replaceChildren();
  matrix.clear();
  shownSections = [];
}

/** The query range the list names: undefined for the last token (the backend's default). */
function queryRange(sections: TextSection[]): { start: number; end: number } | undefined {
  const v = ui.query.value;
  if (v === 'all') return { start: 0, end: app.analysis?.text.length ?? 0 };
  const i = Number(v);
  return v !== 'last' && sections[i] ? { start: sections[i].start, end: sections[i].end } : undefined;
}

function fillQuery(sections: TextSection[]): void {
  if (ui.query.options.length) return;
  const add = (value: string, text: string) => ui.query.append(h('option', { value }, text));
  add('last', 'the last token');
  add('all', 'every token');
  sections.forEach((s, i) => add(String(i), `the tokens of ${s.name}`));
  ui.query.value = 'last';
}

const pct = (v: number) => `${(100 * v).toFixed(1)} %`;

export async function showSections(): Promise<void> {
  const a = app.analysis;
  if (!a) return;
  const sections = a.sections ?? [];
  ui.empty.hidden = sections.length > 0;
  content.hidden = ui.curve.hidden = ui.curveTitle.hidden = sections.length === 0;
  if (sections.length === 0) {
    ui.empty.textContent =
      'This text has no sections. A chat has one per message; other prompts are divided by XML-style tags ' +
      '(<context>…</context>), Markdown headings or blank-line paragraphs, or by attentionViz.sectionPattern.';
    frame.app.dataset.sections = 'none';
    return;
  }
  fillQuery(sections);
  const { layer, head } = app.state;
  const excludeSpecial = app.options.hideSpecial;
  const query = queryRange(sections);
  const base = { sections, ...(query ? { query } : {}), ...(excludeSpecial ? { excludeSpecial } : {}) };
  const stale = () =>
    app.analysis !== a ||
    app.options.tab !== 'sections' ||
    layer !== app.state.layer ||
    head !== app.state.head ||
    excludeSpecial !== app.options.hideSpecial ||
    query?.start !== queryRange(sections)?.start;
  frame.app.dataset.sections = 'loading';
  ui.barsTitle.textContent = 'Attention by section — summing…';
  ui.bars.setAttribute('aria-busy', 'true');
  const r = await rpc(Methods.sections, { ...base, layer, head });
  if (stale()) return;
  ui.bars.removeAttribute('aria-busy');
  if (!r) {
    ui.barsTitle.textContent = 'Attention by section: not available (the status line says why)';
    frame.app.dataset.sections = 'error';
    return;
  }
  const where = `${layer < 0 ? 'mean of layers' : `layer ${layer}`}, ${head < 0 ? 'mean of heads' : `head ${head}`}`;
  const from =
    r.result.query.tokenCount === 1 ? `token ${r.result.query.firstToken}` : `${r.result.query.tokenCount} tokens`;
  const excluded = excludeSpecial ? ', special tokens excluded' : '';
  ui.barsTitle.textContent = `Attention from ${from} by section — ${where}${excluded}`;
  shownSections = sections;
  paintBars(r.result);
  paintMatrix(r.result);
  frame.app.dataset.sections = 'painted';
  await paintCurve(a.model.layers, head, base, stale);
}

function paintBars(r: SectionsDto): void {
  const maxPerToken = Math.max(1e-12, ...r.sections.map((s) => s.massPerToken ?? 0));
  const rows = r.sections.map((s, i) => {
    const bar = h('span', { class: 'section-bar' });
    bar.style.width = `${Math.max(0, Math.min(100, 100 * s.mass))}%`;
    const perToken = h('span', { class: 'section-bar per-token' });
    perToken.style.width = `${(100 * (s.massPerToken ?? 0)) / maxPerToken}%`;
    const perTokenText = s.massPerToken == null ? 'no tokens' : `${pct(s.massPerToken)} per token`;
    const row = h(
      'div',
      { class: 'section-row', role: 'listitem', 'data-index': i, tabindex: 0 },
      h('span', { class: 'section-name', title: s.name }, s.name),
      h('span', { class: 'section-bars' }, bar, perToken),
      h('span', { class: 'section-value' }, `${pct(s.mass)} · ${perTokenText} · ${s.tokenCount} tokens`),
    );
    const tell = (index: number | null) => vscode.postMessage({ type: 'hoverSection', index });
    row.addEventListener('mouseenter', () => tell(i));
    row.addEventListener('focus', () => tell(i));
    row.addEventListener('mouseleave', () => tell(null));
    row.addEventListener('blur', () => tell(null));
    return row;
  });
  const sinkBar = h('span', { class: 'section-bar sink' });
  sinkBar.style.width = `${Math.max(0, Math.min(100, 100 * r.sink))}%`;
  rows.push(
    h(
      'div',
      { class: 'section-row sink', role: 'listitem' },
      h('span', { class: 'section-name' }, 'no section'),
      h('span', { class: 'section-bars' }, sinkBar),
      h('span', { class: 'section-value' }, `${pct(r.sink)} · special and template tokens`),
    ),
  );
  ui.bars.replaceChildren(...rows);
  ui.bars.dataset.masses = r.sections.map((s) => s.mass.toFixed(6)).join(',');
  ui.bars.dataset.sink = r.sink.toFixed(6);
}

function paintMatrix(r: SectionsDto): void {
  const n = r.sections.length;
  const data = new Float32Array(n * n);
  r.matrix.forEach((row, a) => row.forEach((v, b) => (data[a * n + b] = v)));
  const names = r.sections.map((s) => s.name);
  matrix.set({ rows: n, cols: n, data, poolFactor: 1 }, names, names);
  ui.matrixTitle.textContent = 'Section × section: rows attend (mean over their tokens), columns receive';
  matrix.draw(Math.min(560, (document.body.clientWidth || 800) - 40), { row: null, col: null });
}

ui.matrix.addEventListener('mousemove', (e) => {
  const hit = matrix.hit(e.offsetX, e.offsetY);
  const row = hit && hit.kind !== 'col' ? hit.row : null;
  const col = hit && hit.kind !== 'row' ? hit.col : null;
  matrix.draw(Math.min(560, (document.body.clientWidth || 800) - 40), { row, col });
  const m = matrix.matrix;
  if (hit?.kind === 'cell' && m) {
    const v = m.data[hit.row * m.cols + hit.col]!;
    ui.matrix.title = `${shownSections[hit.row]?.name} → ${shownSections[hit.col]?.name}: ${pct(v)}`;
  }
  vscode.postMessage({ type: 'hoverSection', index: col ?? row });
});
ui.matrix.addEventListener('mouseleave', () => vscode.postMessage({ type: 'hoverSection', index: null }));

/** Each section's mass in every layer (the chosen head, or the mean of heads): one request per layer. */
async function paintCurve(
  layers: number,
  head: number,
  base: { sections: TextSection[] },
  stale: () => boolean,
): Promise<void> {
  ui.curveTitle.textContent = `By layer — ${head < 0 ? 'mean of heads' : `head ${head}`}: computing ${layers} layers…`;
  const answers = await Promise.all(
    Array.from({ length: layers }, (_, l) => rpc(Methods.sections, { ...base, layer: l, head })),
  );
  if (stale()) return;
  const series = base.sections.map((s, k) => ({
    name: s.name,
    values: answers.map((x) => (x ? x.result.sections[k]!.mass : null)),
  }));
  ui.curveTitle.textContent = `Mass of each section by layer — ${head < 0 ? 'mean of heads' : `head ${head}`}`;
  drawCurves(
    ui.curve,
    { series, xLabel: 'layer', yMax: 1 },
    Math.max(320, Math.min(760, (document.body.clientWidth || 800) - 40)),
  );
  frame.app.dataset.sectionsCurve = 'painted';
}

ui.query.addEventListener('change', () => void showSections());
