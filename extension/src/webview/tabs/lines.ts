// The Lines tab (BertViz head view): query tokens left, key tokens right, one colour per head.
import { tokenLabel } from '../../shared/tokens';
import { categorical, drawLines } from '../charts';
import type { ViewUnit } from '../../shared/protocol';
import { app, unitName, unitToken, viewFlags, viewMatrix, vscode } from '../state';
import { frame } from '../frame';
import { h, OWN_KEYS } from '../dom';

const ui = {
  linesHeads: h('span', { id: 'lines-heads', role: 'group', 'aria-label': 'Heads shown' }),
  linesNote: h('p', { id: 'lines-note', class: 'caption', hidden: true }),
  linesLeft: h('div', { id: 'lines-left', class: 'lines-col', 'aria-label': 'Query tokens', [OWN_KEYS]: true }),
  linesCanvas: h('canvas', { id: 'lines-canvas', 'aria-hidden': 'true' }),
  linesRight: h('div', { id: 'lines-right', class: 'lines-col', 'aria-label': 'Key tokens', [OWN_KEYS]: true }),
};
frame.tabPanels.lines.append(
  h('div', { class: 'tab-controls' }, ui.linesHeads),
  ui.linesNote,
  h('div', { id: 'lines-view' }, ui.linesLeft, ui.linesCanvas, ui.linesRight),
);

const LINE_ROW = 20;
let linesIsolate: { side: 'left' | 'right'; token: number } | null = null;
let linesHeads: (Float32Array | null)[] = [];
let linesShown: boolean[] = [];
let linesShownFor: string | undefined;
/** The rows: the view's units when hide-special/word-level is on, else null (one per token). */
let linesUnits: ViewUnit[] | null = null;
let linesN = 0;

export async function showLines(): Promise<void> {
  if (!app.analysis) return;
  const { heads } = app.analysis.model;
  const layer = app.state.layer;
  // The selected head alone (its colour stands out), or every head for the mean; the checkboxes add or remove heads.
  const shownKey = `${app.analysis.analysisId}/${app.state.head}`;
  if (linesShown.length !== heads || linesShownFor !== shownKey) {
    linesShown = Array.from({ length: heads }, (_, h) => app.state.head < 0 || h === app.state.head);
    linesShownFor = shownKey;
  }
  // Head toggles, one colour each.
  ui.linesHeads.replaceChildren();
  for (let h = 0; h < heads; h++) {
    const label = document.createElement('label');
    label.className = 'head-toggle';
    const cb = document.createElement('input');
    cb.type = 'checkbox';
    cb.checked = linesShown[h]!;
    cb.dataset.head = String(h);
    cb.setAttribute('aria-label', `show head ${h}`);
    cb.addEventListener('change', () => {
      linesShown[h] = cb.checked;
      drawLinesNow();
    });
    const sw = document.createElement('span');
    sw.className = 'swatch';
    sw.style.backgroundColor = categorical(h);
    const t = document.createElement('span');
    t.textContent = `H${h}`;
    label.append(cb, sw, t);
    ui.linesHeads.append(label);
  }
  for (const [text, on] of [
    ['all', true],
    ['none', false],
  ] as const) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = text;
    b.id = `lines-${text}`;
    b.setAttribute('aria-label', `${on ? 'show' : 'hide'} every head`);
    b.addEventListener('click', () => {
      linesShown = linesShown.map(() => on);
      ui.linesHeads.querySelectorAll('input').forEach((cb) => {
        cb.checked = on;
      });
      drawLinesNow();
    });
    ui.linesHeads.append(b);
  }
  const flags = JSON.stringify(viewFlags());
  const ms = await Promise.all(Array.from({ length: heads }, (_, h) => viewMatrix(layer, h)));
  if (app.options.tab !== 'lines' || layer !== app.state.layer || flags !== JSON.stringify(viewFlags())) return;
  linesHeads = ms.map((m) => m?.data ?? null);
  const first = ms.find((m) => m);
  linesUnits = first?.units ?? null;
  linesN = first?.rows ?? app.analysis.tokens.length;
  if (linesIsolate && linesIsolate.token >= linesN) linesIsolate = null;
  const o = app.options;
  ui.linesNote.hidden = !linesUnits;
  const views = [
    o.hideSpecial ? 'special tokens hidden (rows renormalised without them)' : '',
    o.wordLevel ? 'one row per word (attention to a word: sum over its pieces; from a word: mean)' : '',
  ].filter(Boolean);
  ui.linesNote.textContent = linesUnits
    ? `${linesN} rows of ${app.analysis.tokens.length} tokens: ${views.join('; ')}.`
    : '';
  frame.app.dataset.linesRows = String(linesN);
  buildLineTokens();
  drawLinesNow();
  frame.app.dataset.lines = 'painted';
}

function buildLineTokens(): void {
  for (const [col, side] of [
    [ui.linesLeft, 'left'],
    [ui.linesRight, 'right'],
  ] as const) {
    col.replaceChildren();
    const rows = linesUnits ?? app.analysis?.tokens ?? [];
    rows.forEach((t, i) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'lines-tok' + (t.special ? ' special' : '');
      b.textContent = tokenLabel(t); // text, never markup
      b.dataset.index = String(i);
      const name = unitName(linesUnits, i);
      b.title =
        side === 'left'
          ? `${name} attends to… (hover or focus to isolate)`
          : `…attends to ${name} (hover or focus to isolate)`;
      // A word tints its first piece in the editor.
      const on = () => {
        linesIsolate = { side, token: i };
        drawLinesNow();
        vscode.postMessage({ type: 'hoverToken', token: unitToken(linesUnits, i) });
      };
      const off = () => {
        linesIsolate = null;
        drawLinesNow();
        vscode.postMessage({ type: 'hoverToken', token: null });
      };
      b.addEventListener('mouseenter', on);
      b.addEventListener('focus', on);
      b.addEventListener('mouseleave', off);
      b.addEventListener('blur', off);
      b.addEventListener('keydown', (e) => {
        if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp' && e.key !== 'ArrowLeft' && e.key !== 'ArrowRight') return;
        e.preventDefault();
        e.stopPropagation();
        const other = side === 'left' ? ui.linesRight : ui.linesLeft;
        const target =
          e.key === 'ArrowDown'
            ? b.nextElementSibling
            : e.key === 'ArrowUp'
              ? b.previousElementSibling
              : other.children[i];
        (target as HTMLElement | null)?.focus();
      });
      col.append(b);
    });
  }
}

function drawLinesNow(): void {
  if (!app.analysis) return;
  const n = linesN;
  for (const col of [ui.linesLeft, ui.linesRight]) {
    Array.from(col.children).forEach((c, i) =>
      c.classList.toggle(
        'active',
        linesIsolate !== null && (col === ui.linesLeft) === (linesIsolate.side === 'left') && linesIsolate.token === i,
      ),
    );
  }
  drawLines(
    ui.linesCanvas,
    { heads: linesHeads.map((m, h) => (linesShown[h] ? m : null)), n, rowHeight: LINE_ROW, isolate: linesIsolate },
    220,
  );
}

export function resetLines(): void {
  linesIsolate = null;
  linesHeads = [];
  linesShown = [];
  linesUnits = null;
  linesN = 0;
}
