// The Diff tab: what an edit changed (Compare with Previous Analysis / Git HEAD). Heads ranked by attention/diff's
// change score, the chosen head's ΔA = after − before over aligned tokens on a diverging scale, and the budget of
// each section before and after.
import type { DiffView } from '../../shared/messages';
import { Methods } from '../../shared/protocol';
import { axisLabel } from '../../shared/tokens';
import { Heatmap } from '../heatmap';
import { app, rpc, rpcBefore } from '../state';
import { frame } from '../frame';
import { h } from '../dom';

/** ΔA is drawn token by token up to this many tokens a side (two full matrices travel to the panel). */
export const DIFF_MATRIX_MAX_TOKENS = 1024;
const RANKED = 12;

const ui = {
  empty: h('p', { id: 'diff-empty', class: 'empty-note' }),
  title: h('h3', { id: 'diff-title', class: 'chart-title' }),
  heads: h('div', { id: 'diff-heads', role: 'listbox', 'aria-label': 'Heads ranked by change' }),
  deltaTitle: h('h3', { id: 'diff-delta-title', class: 'chart-title' }),
  delta: h('canvas', { id: 'diff-delta', 'aria-labelledby': 'diff-delta-title' }),
  budgetTitle: h('h3', { id: 'diff-budget-title', class: 'chart-title' }, 'Section budget, before → after'),
  budget: h('div', { id: 'diff-budget', role: 'list', 'aria-labelledby': 'diff-budget-title' }),
};
const content = h(
  'div',
  { id: 'diff-content', hidden: true },
  ui.title,
  h('div', { class: 'diff-body' }, ui.heads, h('div', { id: 'diff-delta-box' }, ui.deltaTitle, ui.delta)),
  ui.budgetTitle,
  ui.budget,
);
frame.tabPanels.diff.append(ui.empty, content);
const delta = new Heatmap(ui.delta);

let diff: DiffView | undefined;
let chosen: { layer: number; head: number } | undefined;

/** The comparison the host sent; it belongs to the analysis it names as `afterId`. */
export function setDiff(d: DiffView): void {
  diff = d;
  const top = [...d.heads].sort((a, b) => b.score - a.score)[0];
  chosen = top && { layer: top.layer, head: top.head };
}

/** A new analysis: a comparison of an older one no longer applies. True when one was dropped. */
export function resetDiff(analysisId: string): boolean {
  if (!diff || diff.afterId === analysisId) return false;
  diff = chosen = undefined;
  return true;
}

const pct = (v: number) => `${(100 * v).toFixed(1)} %`;

export async function showDiff(): Promise<void> {
  const a = app.analysis;
  const d = diff;
  content.hidden = !d || !a;
  ui.empty.hidden = !!d && !!a;
  if (!a || !d) {
    ui.empty.textContent =
      'Edit the prompt, then run “AttentionViz: Compare with Previous Analysis” (or “Compare with Git HEAD”) ' +
      'to see which heads attend differently and how each section’s share moved.';
    frame.app.dataset.diff = 'none';
    return;
  }
  const aligned = d.alignment.length;
  ui.title.textContent =
    `${d.before.source} → ${a.source}: ${aligned} of ${a.tokens.length} tokens aligned ` +
    `(${d.before.tokens.length} before)`;
  paintRanking(d);
  frame.app.dataset.diff = 'loading';
  await Promise.all([paintDelta(d), paintBudget(d)]);
  if (diff === d && app.analysis === a) frame.app.dataset.diff = 'painted';
}

function paintRanking(d: DiffView): void {
  const ranked = [...d.heads].sort((x, y) => y.score - x.score).slice(0, RANKED);
  const max = Math.max(1e-12, ranked[0]?.score ?? 0);
  ui.heads.replaceChildren(
    ...ranked.map((c) => {
      const selected = chosen?.layer === c.layer && chosen.head === c.head;
      const bar = h('span', { class: 'section-bar' });
      bar.style.width = `${(100 * c.score) / max}%`;
      const row = h(
        'div',
        {
          class: 'diff-head',
          role: 'option',
          tabindex: 0,
          'aria-selected': String(selected),
          'data-layer': c.layer,
          'data-head': c.head,
        },
        h('span', { class: 'section-name' }, `L${c.layer} H${c.head}`),
        h('span', { class: 'section-bars' }, bar),
        h('span', { class: 'section-value' }, c.score.toFixed(4)),
      );
      const choose = () => {
        chosen = { layer: c.layer, head: c.head };
        void showDiff();
      };
      row.addEventListener('click', choose);
      row.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          choose();
        }
      });
      return row;
    }),
  );
  ui.heads.dataset.top = ranked[0] ? `${ranked[0].layer}:${ranked[0].head}:${ranked[0].score}` : '';
}

/** ΔA of the chosen head on the after prompt's tokens: after − before where both tokens have a counterpart. */
async function paintDelta(d: DiffView): Promise<void> {
  const a = app.analysis!;
  const c = chosen;
  if (!c) return;
  const nA = d.before.tokens.length,
    nB = a.tokens.length;
  if (Math.max(nA, nB) > DIFF_MATRIX_MAX_TOKENS) {
    ui.deltaTitle.textContent =
      `ΔA is drawn for prompts of up to ${DIFF_MATRIX_MAX_TOKENS} tokens (these have ${nA} and ${nB}); ` +
      'the ranking covers every head.';
    delta.clear();
    ui.delta.hidden = true;
    return;
  }
  ui.delta.hidden = false;
  ui.deltaTitle.textContent = `ΔA of layer ${c.layer}, head ${c.head} — loading…`;
  const [after, before] = await Promise.all([
    // ΔA needs the cells, not the labels; without view options this is the heatmap's own request (one cached answer).
    rpc(Methods.view, { layer: c.layer, head: c.head, includeUnits: false }),
    rpcBefore(d.before.analysisId, Methods.view, { layer: c.layer, head: c.head, includeUnits: false }),
  ]);
  if (diff !== d || chosen !== c || app.analysis !== a) return;
  if (!after?.data || !before?.data) {
    ui.deltaTitle.textContent = `ΔA of layer ${c.layer}, head ${c.head}: not available (the status line says why)`;
    return;
  }
  const values = alignedDelta(d.alignment, before.data, nA, after.data, nB);
  const labels = a.tokens.map((t) => axisLabel(t));
  delta.set({ rows: nB, cols: nB, data: values, poolFactor: 1 }, labels, labels, true);
  ui.deltaTitle.textContent =
    `ΔA = after − before, layer ${c.layer}, head ${c.head} (largest change ±${delta.max.toFixed(3)}; ` +
    'red: more attention, blue: less, grey: a token with no counterpart)';
  // The heatmap's box: beside the ranking in a wide panel, under it in a narrow one.
  const box = ui.delta.parentElement?.clientWidth || (document.body.clientWidth || 800) - 40;
  delta.draw(Math.min(760, Math.max(200, box)), { row: null, col: null });
  ui.delta.dataset.maxAbs = String(delta.max);
}

/** After's n×n grid: after[j][l] − before[i][k] for aligned pairs (i, j) and (k, l); NaN elsewhere. */
export function alignedDelta(
  alignment: number[][],
  before: Float32Array,
  nBefore: number,
  after: Float32Array,
  nAfter: number,
): Float32Array {
  const out = new Float32Array(nAfter * nAfter).fill(Number.NaN);
  const beforeOf = new Int32Array(nAfter).fill(-1);
  for (const [i, j] of alignment) beforeOf[j!] = i!;
  for (let j = 0; j < nAfter; j++) {
    const i = beforeOf[j]!;
    if (i < 0) continue;
    for (let l = 0; l < nAfter; l++) {
      const k = beforeOf[l]!;
      if (k >= 0) out[j * nAfter + l] = after[j * nAfter + l]! - before[i * nBefore + k]!;
    }
  }
  return out;
}

/** Each section's share of the last token's attention (mean of layers and heads), before and after, by name. */
async function paintBudget(d: DiffView): Promise<void> {
  const a = app.analysis!;
  const sb = d.before.sections ?? [],
    sa = a.sections ?? [];
  ui.budgetTitle.hidden = ui.budget.hidden = sb.length === 0 || sa.length === 0;
  if (ui.budget.hidden) return;
  const [after, before] = await Promise.all([
    rpc(Methods.sections, { sections: sa }),
    rpcBefore(d.before.analysisId, Methods.sections, { sections: sb }),
  ]);
  if (diff !== d || app.analysis !== a || !after || !before) return;
  const was = new Map(before.result.sections.map((s) => [s.name, s.mass]));
  const names = [
    ...new Set([...before.result.sections.map((s) => s.name), ...after.result.sections.map((s) => s.name)]),
  ];
  const now = new Map(after.result.sections.map((s) => [s.name, s.mass]));
  ui.budget.replaceChildren(
    ...names.map((name) => {
      const b = was.get(name),
        n = now.get(name);
      const barB = h('span', { class: 'section-bar before' });
      barB.style.width = `${100 * (b ?? 0)}%`;
      const barA = h('span', { class: 'section-bar' });
      barA.style.width = `${100 * (n ?? 0)}%`;
      const change = b !== undefined && n !== undefined ? ` (${n >= b ? '+' : '−'}${pct(Math.abs(n - b))})` : '';
      return h(
        'div',
        { class: 'section-row', role: 'listitem' },
        h('span', { class: 'section-name', title: name }, name),
        h('span', { class: 'section-bars' }, barB, barA),
        h(
          'span',
          { class: 'section-value' },
          `${b === undefined ? 'new' : pct(b)} → ${n === undefined ? 'gone' : pct(n)}${change}`,
        ),
      );
    }),
  );
}
