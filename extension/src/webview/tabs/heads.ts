// The Heads tab: every layer × head as small multiples coloured by a metric, and a sortable table.
import { scaleColour, cssColour } from '../../shared/colour';
import { LIMITS, Methods, METRIC_NAMES, type HeadMetric } from '../../shared/protocol';
import { app, persist, render, rpc, syncControls } from '../state';
import { frame } from '../frame';
import { h, OWN_KEYS } from '../dom';
import { METRIC_LABELS } from '../metricLabels';

const ui = {
  headsMetric: h('select', { id: 'heads-metric', 'aria-label': 'Metric for the heads grid' }),
  headsSummary: h('span', { id: 'heads-summary', class: 'meta' }),
  headsGrid: h('div', { id: 'heads-grid', role: 'group', 'aria-label': 'Heads coloured by the chosen metric' }),
  headsHead: h('tr', { id: 'heads-head' }),
  headsBody: h('tbody', { id: 'heads-body' }),
};
frame.tabPanels.heads.append(
  h('div', { class: 'tab-controls' }, h('label', {}, 'Colour heads by ', ui.headsMetric), ' ', ui.headsSummary),
  ui.headsGrid,
  h(
    'table',
    { id: 'heads-table', 'aria-label': 'Metrics of every layer and head', [OWN_KEYS]: true },
    h('thead', {}, ui.headsHead),
    ui.headsBody,
  ),
);

function openHead(layer: number, head: number): void {
  app.state = { ...app.state, layer, head, view: 'head', locked: null };
  app.options.tab = 'heatmap';
  syncControls();
  void render().then(() => frame.tabButtons.heatmap.focus());
}

type Column = {
  key: string;
  label: string;
  title: string;
  value: (m: HeadMetric, q?: { q: number; communityCount: number }) => number | undefined;
  digits: number;
};
const COLUMNS: Column[] = [
  { key: 'layer', label: 'layer', title: 'layer', value: (m) => m.layer, digits: 0 },
  { key: 'head', label: 'head', title: 'head', value: (m) => m.head, digits: 0 },
  ...METRIC_NAMES.map((k): Column => ({
    key: k,
    label: METRIC_LABELS[k] ?? k,
    title: k,
    value: (m) => m[k] as number | undefined,
    digits: 3,
  })),
  {
    key: 'q',
    label: METRIC_LABELS.q!,
    title: 'Newman modularity Q of the symmetrised attention graph (Louvain communities)',
    value: (_m, q) => q?.q,
    digits: 3,
  },
  {
    key: 'communityCount',
    label: METRIC_LABELS.communityCount!,
    title: 'number of Louvain communities',
    value: (_m, q) => q?.communityCount,
    digits: 0,
  },
];

async function headsData(): Promise<
  { metrics: HeadMetric[]; q: Map<string, { q: number; communityCount: number }> } | undefined
> {
  // Modularity is a dense graph per head: past its limit the backend refuses it, so it is not asked (no Q columns).
  const modularity = (app.analysis?.tokens.length ?? 0) <= LIMITS.modularityTokens;
  const [m, q] = await Promise.all([
    rpc(Methods.metrics, {}),
    modularity ? rpc(Methods.modularityAll, {}) : Promise.resolve(undefined),
  ]);
  if (!m) return undefined;
  const qm = new Map<string, { q: number; communityCount: number }>();
  for (const h of q?.result.heads ?? []) qm.set(`${h.layer}/${h.head}`, h);
  return { metrics: m.result.metrics, q: qm };
}

/** A new analysis: nothing of the previous one stays (its metrics decide the selector's options again). */
export function resetHeads(): void {
  ui.headsMetric.replaceChildren();
  ui.headsGrid.replaceChildren();
  ui.headsHead.replaceChildren();
  ui.headsBody.replaceChildren();
  ui.headsSummary.textContent = '';
  delete frame.app.dataset.heads;
}

export async function showHeads(): Promise<void> {
  const a = app.analysis;
  if (!a) return;
  if (frame.app.dataset.heads !== 'painted') {
    // Until this analysis's metrics arrive (seconds on a long prompt), say so rather than show an empty or old table.
    frame.app.dataset.heads = 'loading';
    ui.headsSummary.textContent = `Computing the metrics of ${a.model.layers * a.model.heads} heads…`;
  }
  const d = await headsData();
  if (!d || app.options.tab !== 'heads' || app.analysis !== a) return;
  const present = COLUMNS.filter((c) =>
    d.metrics.some((m) => c.value(m, d.q.get(`${m.layer}/${m.head}`)) !== undefined),
  );
  // Metric selector (once per analysis).
  if (ui.headsMetric.options.length !== present.length - 2) {
    ui.headsMetric.replaceChildren();
    for (const c of present.slice(2)) {
      const o = document.createElement('option');
      o.value = c.key;
      o.textContent = c.label;
      ui.headsMetric.append(o);
    }
  }
  if (!present.some((c) => c.key === app.options.headsMetric)) app.options.headsMetric = 'entropy';
  ui.headsMetric.value = app.options.headsMetric;
  const colour = present.find((c) => c.key === app.options.headsMetric)!;
  const qOf = (m: HeadMetric) => d.q.get(`${m.layer}/${m.head}`);
  // Small multiples: layers × heads, coloured by the chosen metric.
  const { layers, heads } = app.analysis.model;
  const values = d.metrics.map((m) => colour.value(m, qOf(m)) ?? NaN);
  const finite = values.filter((v) => Number.isFinite(v));
  const lo = Math.min(...finite),
    hi = Math.max(...finite);
  ui.headsGrid.replaceChildren();
  ui.headsGrid.style.gridTemplateColumns = `auto repeat(${heads}, minmax(42px, 1fr))`;
  // The grid scrolls inside itself past the panel's size, its head and layer labels held at the top and left.
  ui.headsGrid.append(h('span', { class: 'grid-corner' }));
  for (let h = 0; h < heads; h++) {
    const s = document.createElement('span');
    s.className = 'grid-label col-label';
    s.textContent = `H${h}`;
    ui.headsGrid.append(s);
  }
  for (let l = 0; l < layers; l++) {
    const s = document.createElement('span');
    s.className = 'grid-label row-label';
    s.textContent = `L${l}`;
    ui.headsGrid.append(s);
    for (let h = 0; h < heads; h++) {
      const idx = d.metrics.findIndex((m) => m.layer === l && m.head === h);
      const v = values[idx] ?? NaN;
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'cell';
      const t = hi > lo ? (v - lo) / (hi - lo) : 0.5;
      const [r, g, bl] = scaleColour(Number.isFinite(t) ? t : 0, 1);
      b.style.backgroundColor = cssColour([r, g, bl]);
      if (0.299 * r + 0.587 * g + 0.114 * bl < 140) b.classList.add('dark');
      b.textContent = Number.isFinite(v) ? v.toFixed(colour.digits === 0 ? 0 : 2) : '–';
      b.title = `layer ${l}, head ${h}: ${colour.label} ${Number.isFinite(v) ? v.toFixed(4) : 'n/a'}`;
      b.setAttribute('aria-label', b.title);
      b.dataset.layer = String(l);
      b.dataset.head = String(h);
      b.addEventListener('click', () => openHead(l, h));
      ui.headsGrid.append(b);
    }
  }
  ui.headsSummary.textContent = `${colour.label}: ${lo.toFixed(3)} (dark) … ${hi.toFixed(3)} (bright)`;
  // The table.
  ui.headsHead.replaceChildren();
  for (const c of present) {
    const th = document.createElement('th');
    th.scope = 'col';
    th.dataset.key = c.key;
    th.setAttribute(
      'aria-sort',
      app.options.sortKey === c.key ? (app.options.sortDesc ? 'descending' : 'ascending') : 'none',
    );
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = c.label + (app.options.sortKey === c.key ? (app.options.sortDesc ? ' ▼' : ' ▲') : '');
    b.title = `${c.title}: click to sort`;
    b.addEventListener('click', () => {
      app.options.sortDesc =
        app.options.sortKey === c.key ? !app.options.sortDesc : c.key !== 'layer' && c.key !== 'head';
      app.options.sortKey = c.key;
      persist();
      void showHeads().then(() =>
        (ui.headsHead.querySelector(`th[data-key="${c.key}"] button`) as HTMLButtonElement | null)?.focus(),
      );
    });
    th.append(b);
    ui.headsHead.append(th);
  }
  const rows = d.metrics.slice();
  const sortCol = present.find((c) => c.key === app.options.sortKey);
  if (sortCol) {
    const val = (m: HeadMetric) => sortCol.value(m, qOf(m)) ?? -Infinity;
    rows.sort(
      (a, b) => (app.options.sortDesc ? val(b) - val(a) : val(a) - val(b)) || a.layer - b.layer || a.head - b.head,
    );
  }
  ui.headsBody.replaceChildren();
  for (const m of rows) {
    const tr = document.createElement('tr');
    tr.tabIndex = 0;
    tr.dataset.layer = String(m.layer);
    tr.dataset.head = String(m.head);
    if (m.layer === app.state.layer && m.head === app.state.head) tr.classList.add('current');
    tr.setAttribute('aria-label', `layer ${m.layer}, head ${m.head}: open in the heatmap`);
    for (const c of present) {
      const td = document.createElement('td');
      const v = c.value(m, qOf(m));
      const rounded = v !== undefined && Math.abs(v) < 0.5 * 10 ** -c.digits ? 0 : v; // no "-0.000"
      td.textContent = rounded === undefined ? '–' : rounded.toFixed(c.digits);
      if (v !== undefined) td.title = String(v);
      td.dataset.key = c.key;
      if (v !== undefined) td.dataset.value = String(v);
      tr.append(td);
    }
    tr.addEventListener('click', () => openHead(m.layer, m.head));
    tr.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        openHead(m.layer, m.head);
      } else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        e.stopPropagation();
        const sib = (e.key === 'ArrowDown' ? tr.nextElementSibling : tr.previousElementSibling) as HTMLElement | null;
        sib?.focus();
      }
    });
    ui.headsBody.append(tr);
  }
  frame.app.dataset.heads = 'painted';
}

ui.headsMetric.addEventListener('change', () => {
  app.options.headsMetric = ui.headsMetric.value;
  persist();
  void showHeads();
});
