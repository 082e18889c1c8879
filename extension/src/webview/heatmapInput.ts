// The heatmap's zoom gestures, turned into calls in drawn-cell coordinates: drag a rectangle, the wheel around the
// pointer, and keys on the focused canvas (+ and − zoom, arrows pan while zoomed, 0 shows the whole matrix).
// What a gesture does to the viewport is zoom.ts's; this module only reads the pointer and the keys.
import type { Heatmap } from './heatmap';

export interface Cell {
  row: number;
  col: number;
}
export type KeyAction =
  { kind: 'in' } | { kind: 'out' } | { kind: 'reset' } | { kind: 'pan'; rows: number; cols: number };

export interface ZoomGestures {
  rect(a: Cell, b: Cell): void;
  /** factor > 1 zooms in, around (row, col) in fractional drawn cells. */
  wheel(factor: number, row: number, col: number): void;
  /** true when the key was used (arrows are only used while zoomed: otherwise they step the layer and head). */
  key(action: KeyAction): boolean;
}

/** A drag shorter than this (CSS pixels) is a click, which locks the cell. */
const DRAG_PX = 5;

export function attachZoomInput(
  canvas: HTMLCanvasElement,
  wrap: HTMLElement,
  heatmap: Heatmap,
  on: ZoomGestures,
): { consumeClick(): boolean } {
  const band = document.createElement('div');
  band.className = 'zoom-band';
  band.hidden = true;
  wrap.append(band);
  let start: { x: number; y: number; cell: Cell } | undefined;
  let dragged = false;
  let swallowClick = false;

  const local = (e: MouseEvent) => {
    const r = canvas.getBoundingClientRect();
    return { x: e.clientX - r.left, y: e.clientY - r.top };
  };
  /** The drawn cell under a canvas point, clamped into the grid (a drag may end outside it). */
  const cellAt = (x: number, y: number): Cell | null => {
    const d = heatmap.matrix;
    if (!d) return null;
    const { left, top, cell } = heatmap.layout;
    const clamp = (v: number, n: number) => Math.min(n - 1, Math.max(0, Math.floor(v)));
    return { row: clamp((y - top) / cell, d.rows), col: clamp((x - left) / cell, d.cols) };
  };

  canvas.addEventListener('mousedown', (e) => {
    if (e.button !== 0) return;
    const p = local(e);
    const h = heatmap.hit(p.x, p.y);
    if (!h || h.kind !== 'cell') return;
    start = { ...p, cell: { row: h.row, col: h.col } };
    dragged = false;
    e.preventDefault(); // no text selection while dragging
  });
  window.addEventListener('mousemove', (e) => {
    if (!start) return;
    const p = local(e);
    if (!dragged && Math.hypot(p.x - start.x, p.y - start.y) < DRAG_PX) return;
    dragged = true;
    const offX = canvas.offsetLeft,
      offY = canvas.offsetTop;
    band.hidden = false;
    band.style.left = `${offX + Math.min(p.x, start.x)}px`;
    band.style.top = `${offY + Math.min(p.y, start.y)}px`;
    band.style.width = `${Math.abs(p.x - start.x)}px`;
    band.style.height = `${Math.abs(p.y - start.y)}px`;
  });
  window.addEventListener('mouseup', (e) => {
    if (!start) return;
    const s = start;
    start = undefined;
    band.hidden = true;
    if (!dragged) return;
    swallowClick = true;
    const p = local(e);
    const end = cellAt(p.x, p.y);
    if (end) on.rect(s.cell, end);
  });
  canvas.addEventListener(
    'wheel',
    (e) => {
      const d = heatmap.matrix;
      if (!d || e.deltaY === 0) return;
      const p = local(e);
      const { left, top, cell } = heatmap.layout;
      const col = (p.x - left) / cell,
        row = (p.y - top) / cell;
      if (row < 0 || col < 0 || row > d.rows || col > d.cols) return;
      e.preventDefault();
      on.wheel(e.deltaY < 0 ? 1.5 : 1 / 1.5, row, col);
    },
    { passive: false },
  );
  canvas.addEventListener('keydown', (e) => {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    const pans: Record<string, [number, number]> = {
      ArrowUp: [-0.25, 0],
      ArrowDown: [0.25, 0],
      ArrowLeft: [0, -0.25],
      ArrowRight: [0, 0.25],
    };
    const action: KeyAction | undefined =
      e.key === '+' || e.key === '='
        ? { kind: 'in' }
        : e.key === '-' || e.key === '_'
          ? { kind: 'out' }
          : e.key === '0'
            ? { kind: 'reset' }
            : pans[e.key]
              ? { kind: 'pan', rows: pans[e.key]![0], cols: pans[e.key]![1] }
              : undefined;
    if (action && on.key(action)) {
      e.preventDefault();
      e.stopPropagation(); // not also a layer/head step
    }
  });
  return {
    /** true once after a drag: the click that ends it is not a lock. */
    consumeClick: () => {
      const was = swallowClick;
      swallowClick = false;
      return was;
    },
  };
}
