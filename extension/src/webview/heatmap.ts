// One heatmap on a canvas: rows = query tokens, columns = key tokens, token labels on both axes,
// row/column highlight for the hovered or locked cell. Cells are painted from an offscreen n×m
// image scaled without smoothing (never one DOM element per cell). The data may be a window of a bigger matrix,
// pooled: drawn cell i covers units rowRange[0] + i·poolFactor onwards (zoom.ts does that arithmetic).
import { divergingColour, scaleColour, type RGB } from '../shared/colour';
import { maxValue } from '../shared/matrix';

export interface HeatmapData {
  rows: number;
  cols: number;
  data: Float32Array;
  poolFactor: number;
}

/** What the heatmap says over its cells while the window it will show is being fetched. */
export interface DrawOptions {
  loading?: string;
  /** The most CSS pixels the heatmap may take down the panel (its cells are square: the smaller side wins). */
  availableHeight?: number;
}

/** The least pixels between two drawn labels: with smaller cells every k-th label is drawn, never none. */
const LABEL_PITCH = 10;

export interface Layout {
  left: number;
  top: number;
  cell: number;
  width: number;
  height: number;
}

export interface Highlight {
  row: number | null;
  col: number | null;
}

export class Heatmap {
  private image: HTMLCanvasElement | undefined;
  private data: HeatmapData | undefined;
  private rowLabels: string[] = [];
  private colLabels: string[] = [];
  layout: Layout = { left: 0, top: 0, cell: 1, width: 0, height: 0 };
  max = 0;

  constructor(readonly canvas: HTMLCanvasElement) {}

  get matrix(): HeatmapData | undefined {
    return this.data;
  }

  /** `diverging`: a signed difference, on the diverging scale around 0 (max = the largest |value|). */
  set(data: HeatmapData, rowLabels: string[], colLabels: string[], diverging = false): void {
    this.data = data;
    this.rowLabels = rowLabels;
    this.colLabels = colLabels;
    this.max = diverging ? maxAbs(data.data) : maxValue(data.data);
    this.image = renderImage(data.rows, data.cols, data.data, this.max, diverging ? divergingColour : scaleColour);
  }

  clear(): void {
    this.data = undefined;
    this.image = undefined;
  }

  /** Lays out for `availableWidth` CSS pixels and draws with the highlight. */
  draw(availableWidth: number, highlight: Highlight, opts: DrawOptions = {}): void {
    const ctx = this.canvas.getContext('2d');
    const data = this.data;
    if (!ctx || !data || !this.image) return;
    const style = getComputedStyle(document.body);
    const fg = style.getPropertyValue('--vscode-foreground').trim() || style.color || '#ccc';
    const font = style.getPropertyValue('--vscode-editor-font-family').trim() || 'monospace';
    const n = Math.max(data.rows, data.cols);
    // Labels first (at the largest font), then the cells get the rest of the width.
    ctx.font = `12px ${font}`;
    let widest = 0;
    for (const l of this.rowLabels.concat(this.colLabels)) widest = Math.max(widest, ctx.measureText(l).width);
    const labelW = Math.min(120, Math.ceil(widest) + 10);
    // Cells may be fractional pixels: the grid then keeps its size as the zoom changes, so the wheel zooms around
    // the same point under the pointer. Square cells in the width and, when given, the height (#13 point 11: a
    // 600-token heatmap ran past the panel's bottom).
    const side = Math.min(availableWidth, opts.availableHeight ?? Infinity);
    const cell = Math.max(1, Math.min(28, (side - labelW - 8) / n));
    // Labels always: every one while cells are 7 px or more, else every k-th, LABEL_PITCH pixels apart at least.
    const step = cell >= 7 ? 1 : Math.ceil(LABEL_PITCH / cell);
    const fontPx = Math.max(8, Math.min(12, cell * step - 2));
    const left = labelW,
      top = labelW;
    const width = left + data.cols * cell + 4,
      height = top + data.rows * cell + 4;
    const dpr = window.devicePixelRatio || 1;
    if (this.canvas.width !== Math.round(width * dpr) || this.canvas.height !== Math.round(height * dpr)) {
      this.canvas.width = Math.round(width * dpr);
      this.canvas.height = Math.round(height * dpr);
      this.canvas.style.width = `${width}px`;
      this.canvas.style.height = `${height}px`;
    }
    this.layout = { left, top, cell, width, height };
    // Geometry for tests and assistive tooling (CSS pixels).
    Object.assign(this.canvas.dataset, {
      left: String(left),
      top: String(top),
      cell: String(cell),
      rows: String(data.rows),
      cols: String(data.cols),
      labelStep: String(step),
    });
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(this.image, left, top, data.cols * cell, data.rows * cell);

    // Row/column highlight.
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = fg;
    if (highlight.row !== null)
      ctx.strokeRect(left + 0.5, top + highlight.row * cell + 0.5, data.cols * cell - 1, cell - 1);
    if (highlight.col !== null)
      ctx.strokeRect(left + highlight.col * cell + 0.5, top + 0.5, cell - 1, data.rows * cell - 1);

    if (opts.loading) this.drawLoading(ctx, opts.loading, fg, font);
    ctx.font = `${fontPx}px ${font}`;
    ctx.textBaseline = 'middle';
    ctx.fillStyle = fg;
    ctx.textAlign = 'right';
    // With a step, the highlighted row's or column's own label is drawn too, so a hover still names its token.
    const drawn = (i: number, hl: number | null) => i % step === 0 || i === hl;
    this.rowLabels.forEach((l, i) => {
      if (!drawn(i, highlight.row)) return;
      ctx.globalAlpha = highlight.row === null || highlight.row === i ? 1 : 0.65;
      ctx.fillText(l, left - 4, top + i * cell + cell / 2, labelW - 6);
    });
    ctx.save();
    ctx.textAlign = 'left';
    this.colLabels.forEach((l, j) => {
      if (!drawn(j, highlight.col)) return;
      ctx.globalAlpha = highlight.col === null || highlight.col === j ? 1 : 0.65;
      ctx.save();
      ctx.translate(left + j * cell + cell / 2, top - 4);
      ctx.rotate(-Math.PI / 2);
      ctx.fillText(l, 0, 0, labelW - 6);
      ctx.restore();
    });
    ctx.restore();
    ctx.globalAlpha = 1;
  }

  /** Dims the cells (they are a coarser preview) and says what is coming. */
  private drawLoading(ctx: CanvasRenderingContext2D, text: string, fg: string, font: string): void {
    const { left, top, cell } = this.layout;
    const d = this.data!;
    const w = d.cols * cell,
      hgt = d.rows * cell;
    const bg = getComputedStyle(document.body).getPropertyValue('--vscode-editor-background').trim() || '#1e1e1e';
    ctx.save();
    ctx.globalAlpha = 0.55;
    ctx.fillStyle = bg;
    ctx.fillRect(left, top, w, hgt);
    ctx.globalAlpha = 1;
    ctx.font = `13px ${font}`;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    const tw = ctx.measureText(text).width + 16;
    ctx.fillStyle = bg;
    ctx.fillRect(left + w / 2 - tw / 2, top + hgt / 2 - 12, tw, 24);
    ctx.strokeStyle = fg;
    ctx.lineWidth = 1;
    ctx.strokeRect(left + w / 2 - tw / 2 + 0.5, top + hgt / 2 - 11.5, tw - 1, 23);
    ctx.fillStyle = fg;
    ctx.fillText(text, left + w / 2, top + hgt / 2, w);
    ctx.restore();
  }

  /** What is under a point in CSS pixels relative to the canvas. */
  hit(
    x: number,
    y: number,
  ): { kind: 'cell'; row: number; col: number } | { kind: 'row'; row: number } | { kind: 'col'; col: number } | null {
    const d = this.data;
    if (!d) return null;
    const { left, top, cell } = this.layout;
    const col = Math.floor((x - left) / cell),
      row = Math.floor((y - top) / cell);
    const inRows = row >= 0 && row < d.rows,
      inCols = col >= 0 && col < d.cols;
    if (inRows && inCols) return { kind: 'cell', row, col };
    if (inRows && x < left) return { kind: 'row', row };
    if (inCols && y < top) return { kind: 'col', col };
    return null;
  }

  /** Counts painted (non-transparent) pixels of the grid area: > 0 once the heatmap is drawn. */
  litPixels(): number {
    const ctx = this.canvas.getContext('2d');
    const d = this.data;
    if (!ctx || !d) return 0;
    const dpr = window.devicePixelRatio || 1;
    const { left, top, cell } = this.layout;
    const img = ctx.getImageData(
      Math.round(left * dpr),
      Math.round(top * dpr),
      Math.max(1, Math.round(d.cols * cell * dpr)),
      Math.max(1, Math.round(d.rows * cell * dpr)),
    );
    let lit = 0;
    for (let i = 3; i < img.data.length; i += 4) if (img.data[i]! > 0) lit++;
    return lit;
  }
}

/** An offscreen rows×cols image of the matrix on the colour scale. */
export function renderImage(
  rows: number,
  cols: number,
  data: Float32Array,
  max: number,
  colour: (v: number, max: number) => RGB = scaleColour,
): HTMLCanvasElement {
  const c = document.createElement('canvas');
  c.width = cols;
  c.height = rows;
  const ctx = c.getContext('2d')!;
  const img = ctx.createImageData(cols, rows);
  for (let i = 0; i < rows * cols; i++) {
    const [r, g, b]: RGB = colour(data[i]!, max);
    img.data[i * 4] = r;
    img.data[i * 4 + 1] = g;
    img.data[i * 4 + 2] = b;
    img.data[i * 4 + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  return c;
}

function maxAbs(data: Float32Array): number {
  let m = 0;
  for (const v of data) if (Math.abs(v) > m) m = Math.abs(v);
  return m;
}
