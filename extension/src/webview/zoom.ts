// The heatmap's zoom as plain numbers (no DOM): a viewport is a window [start, end) of rows (query units) and
// columns (key units) of the whole matrix. What the panel asks the backend for follows from it (rowRange/colRange,
// pooled to maxSize only when the window is still bigger), and what a drawn cell covers follows from the answer.

/** [start, end) in units (tokens, or words with the view options). */
export type Span = readonly [number, number];
export interface Viewport {
  rows: Span;
  cols: Span;
}
/** The whole matrix: rows × cols units. */
export interface Extent {
  rows: number;
  cols: number;
}
/** What an answer served: its window and how many units one drawn cell covers per side. */
export interface Served {
  rowRange: Span;
  colRange: Span;
  poolFactor: number;
}
export type Pooling = 'max' | 'mean';

/** The smallest window side (fewer units than this is not worth a zoom step). */
export const MIN_SPAN = 4;

export function fullViewport(e: Extent): Viewport {
  return { rows: [0, e.rows], cols: [0, e.cols] };
}

export function isFull(v: Viewport, e: Extent): boolean {
  return v.rows[0] <= 0 && v.rows[1] >= e.rows && v.cols[0] <= 0 && v.cols[1] >= e.cols;
}

/** A span of `length` (at least min(MIN_SPAN, n), at most n) moved inside [0, n), in whole units. */
export function clampSpan(start: number, length: number, n: number): Span {
  const len = Math.max(Math.min(MIN_SPAN, n), Math.min(n, Math.round(length)));
  const s = Math.min(Math.max(0, Math.round(start)), n - len);
  return [s, s + len];
}

export function clampViewport(v: Viewport, e: Extent): Viewport {
  return {
    rows: clampSpan(v.rows[0], v.rows[1] - v.rows[0], e.rows),
    cols: clampSpan(v.cols[0], v.cols[1] - v.cols[0], e.cols),
  };
}

/**
 * Zooms by `factor` (> 1 in, < 1 out) keeping the point (row, col), in fractional units, where it is on screen
 * (the wheel zooms around the pointer).
 */
export function zoomAt(v: Viewport, e: Extent, factor: number, row: number, col: number): Viewport {
  const axis = (s: Span, at: number, n: number): Span => {
    const len = (s[1] - s[0]) / factor;
    const t = (at - s[0]) / (s[1] - s[0] || 1); // where the point sits in the window, 0..1
    return clampSpan(at - t * len, len, n);
  };
  return { rows: axis(v.rows, row, e.rows), cols: axis(v.cols, col, e.cols) };
}

/** Moves by fractions of the window's size (the arrow keys move a quarter). */
export function pan(v: Viewport, e: Extent, rowFraction: number, colFraction: number): Viewport {
  const axis = (s: Span, f: number, n: number): Span => {
    const len = s[1] - s[0];
    return clampSpan(s[0] + (Math.round(f * len) || Math.sign(f)), len, n);
  };
  return { rows: axis(v.rows, rowFraction, e.rows), cols: axis(v.cols, colFraction, e.cols) };
}

/** The same window size centred on (row, col) (a click on the minimap). */
export function centreOn(v: Viewport, e: Extent, row: number, col: number): Viewport {
  const rl = v.rows[1] - v.rows[0],
    cl = v.cols[1] - v.cols[0];
  return { rows: clampSpan(row - rl / 2, rl, e.rows), cols: clampSpan(col - cl / 2, cl, e.cols) };
}

/** The units drawn cell `i` covers along one axis of an answer: [start, end), the last block may be shorter. */
export function cellSpan(served: Span, poolFactor: number, i: number): Span {
  const s = served[0] + i * poolFactor;
  return [s, Math.min(served[1], s + poolFactor)];
}

/** The drawn cell holding unit `u` along one axis, or null when the answer does not hold it. */
export function unitCell(served: Span, poolFactor: number, u: number): number | null {
  if (u < served[0] || u >= served[1]) return null;
  return Math.floor((u - served[0]) / poolFactor);
}

/** The window a dragged rectangle between two drawn cells covers (corners in either order), every cell whole. */
export function fromCells(s: Served, a: { row: number; col: number }, b: { row: number; col: number }): Viewport {
  const axis = (span: Span, i: number, j: number): Span => {
    const lo = cellSpan(span, s.poolFactor, Math.min(i, j)),
      hi = cellSpan(span, s.poolFactor, Math.max(i, j));
    return [lo[0], hi[1]];
  };
  return { rows: axis(s.rowRange, a.row, b.row), cols: axis(s.colRange, a.col, b.col) };
}

/**
 * What to ask attention/view for to show `v`: no ranges for the whole matrix; `maxSize` (and the pooling) only when
 * the window is bigger than `maxSize` on a side, so a window that fits comes at full resolution.
 */
export function windowParams(
  v: Viewport,
  e: Extent,
  maxSize: number,
  pooling: Pooling,
): { rowRange?: [number, number]; colRange?: [number, number]; maxSize?: number; pooling?: Pooling } {
  const full = isFull(v, e);
  const side = Math.max(v.rows[1] - v.rows[0], v.cols[1] - v.cols[0]);
  return {
    ...(full ? {} : { rowRange: [v.rows[0], v.rows[1]], colRange: [v.cols[0], v.cols[1]] }),
    ...(side > maxSize ? { maxSize, pooling } : {}),
  };
}

/** The overview's side in cells for a heatmap of `pixels` CSS pixels: a power of two in [64, 1024]. */
export function overviewSize(pixels: number): number {
  let s = 64;
  while (s * 2 <= pixels && s < 1024) s *= 2;
  return s;
}

/** How the drawn cells relate to the units, e.g. "full resolution" or "max-pooled: a cell is 4×4 tokens". */
export function poolLabel(poolFactor: number, pooling: Pooling, unit = 'tokens'): string {
  if (poolFactor <= 1) return 'full resolution';
  return `${pooling}-pooled: a cell is ${poolFactor}×${poolFactor} ${unit}`;
}

/** A span as people read it: "#100–163" (inclusive), or "#7" for one unit. */
export function spanLabel(s: Span): string {
  return s[1] - s[0] <= 1 ? `#${s[0]}` : `#${s[0]}–${s[1] - 1}`;
}

/**
 * At most one request in flight; while one runs, only the newest waiting one is kept (a burst of wheel events asks
 * once for where it ended). Only the newest request's answer is delivered: older ones settle as undefined, so a late
 * answer for an old viewport is never shown.
 */
export class Coalescer<T> {
  private seq = 0;
  private busy = false;
  private waiting: { seq: number; start: () => Promise<T>; resolve: (v: T | undefined) => void } | undefined;

  ask(start: () => Promise<T>): Promise<T | undefined> {
    const seq = ++this.seq;
    return new Promise((resolve) => {
      this.waiting?.resolve(undefined); // superseded before it started: never sent
      this.waiting = { seq, start, resolve };
      this.pump();
    });
  }

  /** Drops whatever is waiting or running (a new analysis, another head). */
  reset(): void {
    this.seq++;
    this.waiting?.resolve(undefined);
    this.waiting = undefined;
  }

  private pump(): void {
    if (this.busy || !this.waiting) return;
    const job = this.waiting;
    this.waiting = undefined;
    this.busy = true;
    job
      .start()
      .then(
        (v) => v,
        () => undefined,
      )
      .then((v) => {
        this.busy = false;
        job.resolve(job.seq === this.seq ? v : undefined);
        this.pump();
      });
  }
}
