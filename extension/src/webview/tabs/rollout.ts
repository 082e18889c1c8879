// The Rollout tab: attention rollout through the layers as a heatmap, and for one picked token its
// attention flow (attention/flow, last layer) beside its rollout row, as two bar columns. Past the backend's
// whole-matrix limit (LIMITS.rolloutMatrixTokens) the tab shows one picked token's rollout row instead
// (attention/rolloutRow: exact, layer by layer), its largest inputs as bars.
import { Heatmap } from '../heatmap';
import { createLegend, paintLegend } from '../legend';
import { tokenLabel } from '../../shared/tokens';
import { LIMITS, Methods, type FlowResult, type RolloutRowDto, type ViewUnit } from '../../shared/protocol';
import { flowForView, partialFlowForView, unitOfToken } from '../../shared/units';
import { app, cancelRpc, persist, rpc, unitLabels, viewFlags } from '../state';
import { frame } from '../frame';
import { h } from '../dom';

const ui = {
  rolloutCaption: h(
    'p',
    { id: 'rollout-caption', class: 'meta' },
    "Attention rollout (Abnar & Zuidema 2020) through every layer: row i is how much token i's final " +
      'representation draws on each input token.',
  ),
  flowToken: h('select', {
    id: 'flow-token',
    'aria-label': 'Token whose attention flow to compare with its rollout row',
  }),
  flowStatus: h('span', { id: 'flow-status', class: 'meta', role: 'status' }),
  rolloutCanvas: h('canvas', {
    id: 'rollout-canvas',
    tabindex: 0,
    'aria-label':
      'Attention rollout heatmap: click a row, or use the arrow keys, to compare its rollout with its ' +
      'attention flow',
  }),
  flowFigure: h('figure', { id: 'flow-figure', hidden: true }),
  flowCaption: h('figcaption', { id: 'flow-caption', class: 'caption' }),
  flowTable: h('table', { id: 'flow-table', 'aria-describedby': 'flow-caption' }),
  flowBody: h('tbody', { id: 'flow-body' }),
};
const rolloutLegend = createLegend('rollout-legend', 'Colour scale of the rollout');
const flowColumns = ['input', 'rollout', 'flow'].map((c) => h('th', { scope: 'col' }, c));
ui.flowTable.append(h('thead', {}, h('tr', {}, ...flowColumns)), ui.flowBody);
ui.flowFigure.append(ui.flowCaption, ui.flowTable);
const pickLabel = h('span', {}, 'Attention flow of ');
frame.tabPanels.rollout.append(
  ui.rolloutCaption,
  h('div', { class: 'tab-controls' }, h('label', {}, pickLabel, ui.flowToken), ' ', ui.flowStatus),
  h('div', { id: 'rollout-view' }, ui.rolloutCanvas, rolloutLegend.element, ui.flowFigure),
);

const rolloutMap = new Heatmap(ui.rolloutCanvas);

let rolloutUnits: ViewUnit[] = [];
/** The picked token (a raw token index, so the pick survives the view options); null = none. */
let flowSeq = 0;
/** The flow request in flight, to cancel when the user picks another token. */
let flowInFlight: number | null = null;

/** A new analysis: no flow shown, unless restoring the panel (`token`, the one picked before it was hidden). */
export function resetRollout(token: number | null = null): void {
  app.flowToken = token;
  flowSeq++;
  flowInFlight = null;
  rolloutUnits = [];
}

/** Inputs listed for one token's rollout row of a long analysis: its largest ones. */
const LONG_ROW_INPUTS = 40;

/** True when the analysis is longer than the whole rollout matrix the backend computes. */
function longAnalysis(): boolean {
  return (app.analysis?.tokens.length ?? 0) > LIMITS.rolloutMatrixTokens;
}

export async function showRollout(): Promise<void> {
  if (!app.analysis) return;
  ui.rolloutCanvas.hidden = longAnalysis();
  pickLabel.textContent = longAnalysis() ? 'Rollout row of ' : 'Attention flow of ';
  flowColumns[2]!.hidden = longAnalysis();
  ui.flowToken.setAttribute(
    'aria-label',
    longAnalysis() ? 'Token whose rollout row to show' : 'Token whose attention flow to compare with its rollout row',
  );
  if (longAnalysis()) {
    showLongRollout();
    return;
  }
  const flags = viewFlags();
  const r = await rpc(Methods.rollout, flags);
  if (!r?.data || app.options.tab !== 'rollout' || JSON.stringify(flags) !== JSON.stringify(viewFlags())) return;
  const res = r.result;
  rolloutUnits = res.units ?? []; // attention/rollout always sends them (only attention/view may leave them out)
  rolloutMap.set(
    { rows: res.rows, cols: res.cols, data: r.data, poolFactor: res.poolFactor },
    unitLabels(rolloutUnits),
    unitLabels(rolloutUnits),
  );
  drawRollout();
  paintLegend(rolloutLegend, rolloutMap.max, 'the largest rollout value');
  ui.rolloutCaption.textContent =
    `Attention rollout (Abnar & Zuidema 2020) through layer ${res.layer}: ` +
    "row i is how much token i's representation draws on each input token. " +
    `Largest value ${rolloutMap.max.toFixed(3)}. Pick a token to compare its row with its attention flow.`;
  fillFlowSelect();
  frame.app.dataset.rollout = 'painted';
  void showFlow();
}

function pickedUnit(): number {
  return app.flowToken === null ? -1 : unitOfToken(rolloutUnits, app.flowToken);
}

function drawRollout(): void {
  if (longAnalysis()) return; // no matrix: one token's row at a time
  const u = pickedUnit();
  // Room for the colour scale beside it (about 60 px).
  rolloutMap.draw(Math.max(200, (document.body.clientWidth || 800) - 100), { row: u < 0 ? null : u, col: null });
}

function unitName(i: number): string {
  const u = rolloutUnits[i];
  return u ? tokenLabel(u) : `#${i}`;
}

function fillFlowSelect(): void {
  ui.flowToken.replaceChildren();
  const none = document.createElement('option');
  none.value = '';
  none.textContent = '— pick a token —';
  ui.flowToken.append(none);
  rolloutUnits.forEach((u, i) => {
    const o = document.createElement('option');
    o.value = String(u.firstToken);
    o.textContent = `${i}: ${unitName(i)}`; // text, never markup
    ui.flowToken.append(o);
  });
  const u = pickedUnit();
  ui.flowToken.value = u < 0 ? '' : String(rolloutUnits[u]!.firstToken);
}

/** Picks the token of rollout row `unit` (null: none) and shows its flow. */
function pick(unit: number | null): void {
  const token = unit === null ? null : (rolloutUnits[unit]?.firstToken ?? null);
  if (token === app.flowToken) return;
  app.flowToken = token;
  persist();
  ui.flowToken.value = token === null ? '' : String(token);
  drawRollout();
  void showFlow();
}

/** A long analysis: its tokens to pick from (view options do not apply), no matrix. */
function showLongRollout(): void {
  const n = app.analysis!.tokens.length;
  rolloutUnits = app.analysis!.tokens.map((t, i) => ({
    text: t.text,
    start: t.start,
    end: t.end,
    firstToken: i,
    lastToken: i,
    special: t.special,
    display: t.display,
  }));
  ui.rolloutCaption.textContent =
    `Attention rollout (Abnar & Zuidema 2020): this analysis has ${n.toLocaleString('en-US')} tokens, and the ` +
    `whole rollout matrix is computed up to ${LIMITS.rolloutMatrixTokens.toLocaleString('en-US')}. Pick a token to ` +
    "see its row, exact, through every layer: how much that token's final representation draws on each input.";
  fillFlowSelect();
  frame.app.dataset.rollout = 'long';
  void showFlow();
}

async function showLongRow(seq: number, u: number, token: number): Promise<void> {
  ui.flowFigure.classList.add('computing');
  ui.flowStatus.textContent = `computing the rollout row of “${unitName(u)}”…`;
  frame.app.dataset.flow = 'computing';
  const a = await rpc(Methods.rolloutRow, { token });
  if (seq !== flowSeq) return;
  ui.flowFigure.classList.remove('computing');
  if (!a) {
    ui.flowStatus.textContent = 'rollout row unavailable (see the status line)';
    frame.app.dataset.flow = 'error';
    return;
  }
  drawLongRow(u, a.result);
}

/** The row's largest inputs, largest first; a partial answer (time budget) says how far it got. */
function drawLongRow(u: number, r: RolloutRowDto): void {
  const values = r.scores ?? r.partial;
  const top = values
    .map((v, j) => ({ v, j }))
    .sort((a, b) => b.v - a.v || a.j - b.j)
    .slice(0, LONG_ROW_INPUTS);
  const max = Math.max(1e-9, top[0]?.v ?? 0);
  const name = unitName(u);
  ui.flowBody.replaceChildren();
  for (const { v, j } of top) {
    const tr = document.createElement('tr');
    tr.dataset.index = String(j);
    if (j === u) tr.className = 'source';
    if (rolloutUnits[j]?.special) tr.classList.add('special');
    const th = document.createElement('th');
    th.scope = 'row';
    th.textContent = `${j}: ${unitName(j)}`; // text, never markup
    tr.append(th, barCell('rollout', v, max, `rollout ${name} → ${unitName(j)}`, smallValue));
    ui.flowBody.append(tr);
  }
  ui.flowCaption.textContent = r.complete
    ? `“${name}”: its rollout row through layer ${r.layer}, the ${top.length} largest of ` +
      `${values.length.toLocaleString('en-US')} inputs (the row sums to 1). Computed in ${r.elapsedMs.toFixed(0)} ms.`
    : `“${name}”: partial, the backend's time budget ran out after layers ${r.layer} down to ${r.reachedLayer}; ` +
      `shown is that product, not yet the rollout row.`;
  ui.flowTable.setAttribute('aria-label', `Largest rollout inputs of ${name}`);
  ui.flowStatus.textContent = `rollout row of “${name}”: ${r.elapsedMs.toFixed(0)} ms${r.complete ? '' : ' (partial)'}`;
  ui.flowFigure.hidden = false;
  frame.app.dataset.flow = r.complete ? 'painted' : 'partial';
  ui.flowFigure.dataset.token = String(r.token);
}

async function showFlow(): Promise<void> {
  const seq = ++flowSeq;
  // A superseded request only costs the backend time: cancel it (its answer would be ignored anyway).
  if (flowInFlight !== null && flowInFlight !== app.flowToken) cancelRpc(Methods.flow, { token: flowInFlight });
  flowInFlight = null;
  const u = pickedUnit();
  if (app.flowToken !== null && u < 0) app.flowToken = null; // hidden by the view options
  if (app.flowToken === null || u < 0) {
    ui.flowFigure.hidden = true;
    ui.flowStatus.textContent = '';
    delete frame.app.dataset.flow;
    return;
  }
  const token = app.flowToken;
  if (longAnalysis()) {
    await showLongRow(seq, u, token);
    return;
  }
  ui.flowFigure.classList.add('computing');
  ui.flowTable.setAttribute('aria-busy', 'true');
  ui.flowStatus.textContent = `computing the attention flow of “${unitName(u)}”…`;
  frame.app.dataset.flow = 'computing';
  flowInFlight = token;
  const a = await rpc(Methods.flow, { token });
  if (seq !== flowSeq) return; // the user picked another token meanwhile: this answer is stale
  flowInFlight = null;
  ui.flowFigure.classList.remove('computing');
  ui.flowTable.removeAttribute('aria-busy');
  if (!a) {
    ui.flowStatus.textContent = 'attention flow unavailable (see the status line)';
    frame.app.dataset.flow = 'error';
    return;
  }
  drawFlow(u, a.result);
}

function drawFlow(u: number, f: FlowResult): void {
  const m = rolloutMap.matrix;
  if (!m) return;
  const rollout = Array.from(m.data.subarray(u * m.cols, (u + 1) * m.cols));
  // Complete: flow normalised to sum 1 (per unit). Partial: the exact max-flow where computed, nothing made up for
  // the rest (their upper bound goes in the title).
  const partial = !f.complete || !f.flow;
  const view = partial ? undefined : flowForView(f.flow!, rolloutUnits);
  const part = partial ? partialFlowForView(f.raw, f.upperBound, rolloutUnits) : undefined;
  const flow: (number | null)[] = view ? view.values : part!.values;
  const max = Math.max(1e-9, ...rollout, ...flow.map((v) => v ?? 0));
  const o = app.options;
  const name = unitName(u);
  ui.flowBody.replaceChildren();
  rolloutUnits.forEach((unit, j) => {
    const tr = document.createElement('tr');
    tr.dataset.index = String(j);
    if (j === u) tr.className = 'source';
    if (unit.special) tr.classList.add('special');
    const th = document.createElement('th');
    th.scope = 'row';
    th.textContent = unitName(j); // text, never markup
    const what = `flow ${name} → ${unitName(j)}`;
    const v = flow[j] ?? null;
    tr.append(
      th,
      barCell('rollout', rollout[j] ?? 0, max, `rollout ${name} → ${unitName(j)}`),
      v === null
        ? missingCell(`${what}: not computed within the time budget (at most ${part!.upper[j]!.toFixed(6)})`)
        : barCell('flow', v, max, what),
    );
    ui.flowBody.append(tr);
  });
  const computed = flow.filter((v) => v !== null).length;
  const views = [
    o.wordLevel ? `flow from the word's first piece, summed over each word's pieces` : '',
    o.hideSpecial && view
      ? 'special tokens hidden and the rest renormalised to sum 1, as the rollout rows are ' +
        `(${(100 * view.hidden).toFixed(1)}% of the flow went to them)`
      : '',
  ].filter(Boolean);
  ui.flowCaption.textContent =
    (partial
      ? `“${name}”: rollout row (blue) and attention flow (orange) per input token. ` +
        `Partial: the backend's time budget ran out after ${computed} of ${flow.length} inputs; ` +
        `shown is the exact max-flow through layer ${f.layer} where computed ` +
        '(not normalised, as that needs every input), — where not.'
      : `“${name}”: rollout row (blue) and attention flow ` +
        `(orange, max-flow through layer ${f.layer} normalised to sum 1) per input token, on one scale.`) +
    (views.length ? ` Flow is computed on tokens: ${views.join('; ')}.` : '') +
    ` Computed in ${f.elapsedMs.toFixed(0)} ms.`;
  const unitFlowText = (j: number): string =>
    `${unitName(j)} rollout ${(rollout[j] ?? 0).toFixed(4)}, ` +
    `flow ${flow[j] === null ? 'not computed' : (flow[j] ?? 0).toFixed(4)}`;
  ui.flowTable.setAttribute(
    'aria-label',
    `Rollout and attention flow of ${name}: ${rolloutUnits.map((_, j) => unitFlowText(j)).join('; ')}`,
  );
  ui.flowStatus.textContent = `flow of “${name}”: ${f.elapsedMs.toFixed(0)} ms${partial ? ' (partial)' : ''}`;
  ui.flowFigure.hidden = false;
  frame.app.dataset.flow = partial ? 'partial' : 'painted';
  ui.flowFigure.dataset.token = String(f.token);
}

function missingCell(title: string): HTMLTableCellElement {
  const td = document.createElement('td');
  td.dataset.kind = 'flow';
  td.dataset.missing = 'true';
  td.title = title;
  td.setAttribute('aria-label', title);
  const num = document.createElement('span');
  num.className = 'num';
  num.textContent = '—';
  td.append(num);
  return td;
}

/** A long row's weights are mostly far below 0.001: three significant digits, not three decimals. */
const smallValue = (v: number): string => (v === 0 || v >= 0.01 ? v.toFixed(3) : v.toExponential(2));

function barCell(
  kind: 'rollout' | 'flow',
  v: number,
  max: number,
  what: string,
  format: (v: number) => string = (x) => x.toFixed(3),
): HTMLTableCellElement {
  const td = document.createElement('td');
  td.dataset.kind = kind;
  td.dataset.value = String(v);
  td.title = `${what}: ${v.toFixed(6)}`;
  td.setAttribute('aria-label', td.title);
  const bar = document.createElement('span');
  bar.className = `bar ${kind}`;
  bar.style.width = `${Math.max(v > 0 ? 1 : 0, Math.round((v / max) * 100))}px`;
  const num = document.createElement('span');
  num.className = 'num';
  num.textContent = format(v);
  td.append(bar, num);
  return td;
}

ui.rolloutCanvas.addEventListener('mousemove', (e) => {
  const m = rolloutMap.matrix;
  if (!m) return;
  const r = ui.rolloutCanvas.getBoundingClientRect();
  const h = rolloutMap.hit(e.clientX - r.left, e.clientY - r.top);
  ui.rolloutCanvas.title =
    h?.kind === 'cell'
      ? `${rolloutUnits[h.row]?.text ?? h.row} → ${rolloutUnits[h.col]?.text ?? h.col}: ` +
        m.data[h.row * m.cols + h.col]!.toFixed(4)
      : '';
});
// A click on a row (its label or a cell) picks that row's token.
ui.rolloutCanvas.addEventListener('click', (e) => {
  const r = ui.rolloutCanvas.getBoundingClientRect();
  const h = rolloutMap.hit(e.clientX - r.left, e.clientY - r.top);
  if (h && h.kind !== 'col') pick(h.row);
});
// Keyboard: up/down step the picked row, Escape clears it (without stepping the layer).
ui.rolloutCanvas.addEventListener('keydown', (e) => {
  if (!rolloutUnits.length || (e.key !== 'ArrowUp' && e.key !== 'ArrowDown' && e.key !== 'Escape')) return;
  e.preventDefault();
  e.stopPropagation();
  const u = pickedUnit(),
    n = rolloutUnits.length;
  pick(e.key === 'Escape' ? null : u < 0 ? 0 : (u + (e.key === 'ArrowDown' ? 1 : n - 1)) % n);
});
ui.flowToken.addEventListener('change', () => {
  const token = ui.flowToken.value === '' ? null : Number(ui.flowToken.value);
  pick(token === null ? null : unitOfToken(rolloutUnits, token));
});
