// The minimap: the whole (pooled) matrix small, with the zoomed window as a rectangle. A click or drag on it moves
// the window there (same size).
import type { Extent, Viewport } from './zoom';

const SIDE = 128;

export class Minimap {
  private image: HTMLCanvasElement | undefined;
  private extent: Extent = { rows: 1, cols: 1 };
  private dragging = false;

  constructor(
    readonly canvas: HTMLCanvasElement,
    private readonly onPick: (row: number, col: number, done: boolean) => void,
  ) {
    canvas.width = canvas.height = SIDE;
    const pick = (e: MouseEvent, done: boolean) => {
      const r = canvas.getBoundingClientRect();
      const fx = (e.clientX - r.left) / r.width,
        fy = (e.clientY - r.top) / r.height;
      const { rows, cols } = this.extent;
      const clamp = (v: number) => Math.min(1, Math.max(0, v));
      this.onPick(clamp(fy) * rows, clamp(fx) * cols, done);
    };
    canvas.addEventListener('mousedown', (e) => {
      if (e.button !== 0) return;
      this.dragging = true;
      e.preventDefault();
      pick(e, false);
    });
    window.addEventListener('mousemove', (e) => this.dragging && pick(e, false));
    window.addEventListener('mouseup', (e) => {
      if (!this.dragging) return;
      this.dragging = false;
      pick(e, true);
    });
  }

  /** The overview image (one pixel per overview cell) of a matrix of `extent` units. */
  set(image: HTMLCanvasElement, extent: Extent): void {
    this.image = image;
    this.extent = extent;
  }

  draw(v: Viewport, fg: string): void {
    const ctx = this.canvas.getContext('2d');
    if (!ctx || !this.image) return;
    const { rows, cols } = this.extent;
    const w = cols >= rows ? SIDE : Math.max(8, Math.round((SIDE * cols) / rows));
    const h = rows >= cols ? SIDE : Math.max(8, Math.round((SIDE * rows) / cols));
    if (this.canvas.width !== w || this.canvas.height !== h) {
      this.canvas.width = w;
      this.canvas.height = h;
    }
    ctx.imageSmoothingEnabled = false;
    ctx.clearRect(0, 0, w, h);
    ctx.drawImage(this.image, 0, 0, w, h);
    const x0 = (v.cols[0] / cols) * w,
      x1 = (v.cols[1] / cols) * w,
      y0 = (v.rows[0] / rows) * h,
      y1 = (v.rows[1] / rows) * h;
    ctx.lineWidth = 2;
    ctx.strokeStyle = '#000';
    ctx.strokeRect(x0 + 1, y0 + 1, Math.max(2, x1 - x0 - 2), Math.max(2, y1 - y0 - 2));
    ctx.lineWidth = 1;
    ctx.strokeStyle = fg;
    ctx.strokeRect(x0 + 1, y0 + 1, Math.max(2, x1 - x0 - 2), Math.max(2, y1 - y0 - 2));
    Object.assign(this.canvas.dataset, {
      viewport: `${v.rows[0]},${v.rows[1]},${v.cols[0]},${v.cols[1]}`,
    });
  }
}
