// Canvas drawing for the Graph, Lines and Distributions tabs. Pure drawing: data in, pixels out;
// colours come from VS Code's theme variables so light, dark and high-contrast themes stay readable.

/** Colour-blind-safe categorical palette: Okabe & Ito (2008), then Paul Tol's "muted" for heads 8–11. */
export const CATEGORICAL = [
  '#E69F00',
  '#56B4E9',
  '#009E73',
  '#F0E442',
  '#0072B2',
  '#D55E00',
  '#CC79A7',
  '#999999',
  '#44AA99',
  '#DDCC77',
  '#AA4499',
  '#88CCEE',
];
export const categorical = (i: number): string =>
  CATEGORICAL[((i % CATEGORICAL.length) + CATEGORICAL.length) % CATEGORICAL.length]!;

export function themeColour(name: string, fallback: string): string {
  return getComputedStyle(document.body).getPropertyValue(name).trim() || fallback;
}

const fontFamily = () => themeColour('--vscode-font-family', 'sans-serif');
const monoFamily = () => themeColour('--vscode-editor-font-family', 'monospace');

/** Sizes a canvas for `w`×`h` CSS pixels at the device pixel ratio; returns its context (CSS-pixel transform). */
export function sizeCanvas(c: HTMLCanvasElement, w: number, h: number): CanvasRenderingContext2D | null {
  const dpr = window.devicePixelRatio || 1;
  if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
    c.width = Math.round(w * dpr);
    c.height = Math.round(h * dpr);
    c.style.width = `${w}px`;
    c.style.height = `${h}px`;
  }
  const ctx = c.getContext('2d');
  if (!ctx) return null;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  return ctx;
}

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(0) : a >= 1 ? v.toFixed(2) : v.toFixed(3);
}

/** The left and bottom axis lines of a plot area, dimmed. */
function drawAxes(
  ctx: CanvasRenderingContext2D,
  fg: string,
  left: number,
  top: number,
  plotW: number,
  plotH: number,
): void {
  ctx.strokeStyle = fg;
  ctx.globalAlpha = 0.6;
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.moveTo(left, top);
  ctx.lineTo(left, top + plotH + 0.5);
  ctx.lineTo(left + plotW, top + plotH + 0.5);
  ctx.stroke();
  ctx.globalAlpha = 1;
}

// ---------- histogram ----------

export interface Histogram {
  counts: number[];
  edges: number[];
  total: number;
}

/** Bars of a histogram with x ticks at the edges' ends and a y tick at the largest count. */
export function drawHistogram(c: HTMLCanvasElement, h: Histogram, width: number, xLabel: string): void {
  const height = 220;
  const ctx = sizeCanvas(c, width, height);
  if (!ctx) return;
  const fg = themeColour('--vscode-foreground', '#888');
  const bar = themeColour('--vscode-charts-blue', '#3794ff');
  const left = 48,
    right = 12,
    top = 12,
    bottom = 38;
  const plotW = width - left - right,
    plotH = height - top - bottom;
  const max = Math.max(1, ...h.counts);
  const bw = plotW / Math.max(1, h.counts.length);
  ctx.fillStyle = bar;
  let drawn = 0;
  h.counts.forEach((n, i) => {
    if (n <= 0) return;
    const bh = Math.max(1, (n / max) * plotH);
    ctx.fillRect(left + i * bw + 0.5, top + plotH - bh, Math.max(1, bw - 1), bh);
    drawn++;
  });
  drawAxes(ctx, fg, left, top, plotW, plotH);
  ctx.fillStyle = fg;
  ctx.font = `11px ${fontFamily()}`;
  ctx.textBaseline = 'top';
  const lo = h.edges[0] ?? 0,
    hi = h.edges[h.edges.length - 1] ?? 1;
  ctx.textAlign = 'left';
  ctx.fillText(fmt(lo), left, top + plotH + 4);
  ctx.textAlign = 'right';
  ctx.fillText(fmt(hi), left + plotW, top + plotH + 4);
  ctx.textAlign = 'center';
  ctx.fillText(fmt((lo + hi) / 2), left + plotW / 2, top + plotH + 4);
  ctx.fillText(xLabel, left + plotW / 2, top + plotH + 20);
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  ctx.fillText(String(max), left - 4, top);
  ctx.fillText('0', left - 4, top + plotH);
  Object.assign(c.dataset, { bins: String(h.counts.length), bars: String(drawn), total: String(h.total) });
}

// ---------- graph ----------

export interface GraphInput {
  /** n×n attention, row = query. */
  data: Float32Array;
  n: number;
  labels: string[];
  threshold: number;
  /** Community per node (colour), or undefined while loading. */
  communities?: number[];
}

/** Node positions on a circle, token 0 at the top, clockwise: the same for the same n, whatever the weights. */
export function circleLayout(n: number, cx: number, cy: number, r: number): { x: number; y: number; angle: number }[] {
  return Array.from({ length: n }, (_, i) => {
    const angle = -Math.PI / 2 + (2 * Math.PI * i) / Math.max(1, n);
    return { x: cx + r * Math.cos(angle), y: cy + r * Math.sin(angle), angle };
  });
}

/** Draws the graph; returns how many edges were drawn (self-loops are left out). */
export function drawGraph(c: HTMLCanvasElement, g: GraphInput, size: number, highlight: number | null): number {
  const ctx = sizeCanvas(c, size, size);
  if (!ctx) return 0;
  const fg = themeColour('--vscode-foreground', '#888');
  const edge = themeColour('--vscode-charts-foreground', fg);
  const cx = size / 2,
    cy = size / 2,
    r = size / 2 - 90;
  const pos = circleLayout(g.n, cx, cy, r);
  let max = 0;
  for (let i = 0; i < g.n; i++) for (let j = 0; j < g.n; j++) if (i !== j) max = Math.max(max, g.data[i * g.n + j]!);
  let edges = 0;
  ctx.strokeStyle = edge;
  for (let i = 0; i < g.n; i++)
    for (let j = 0; j < g.n; j++) {
      if (i === j) continue;
      const w = g.data[i * g.n + j]!;
      if (w < g.threshold) continue;
      edges++;
      const touches = highlight === null || highlight === i || highlight === j;
      ctx.globalAlpha = touches ? 0.25 + 0.75 * (w / (max || 1)) : 0.06;
      ctx.lineWidth = 0.5 + 3.5 * (w / (max || 1));
      const a = pos[i]!,
        b = pos[j]!;
      // A gentle curve towards the centre so i→j and j→i do not overlap exactly.
      const mx = (a.x + b.x) / 2,
        my = (a.y + b.y) / 2;
      const k = 0.15;
      ctx.beginPath();
      ctx.moveTo(a.x, a.y);
      ctx.quadraticCurveTo(mx + (cx - mx) * k + (b.y - a.y) * 0.05, my + (cy - my) * k - (b.x - a.x) * 0.05, b.x, b.y);
      ctx.stroke();
    }
  ctx.globalAlpha = 1;
  const nodeR = Math.max(4, Math.min(9, (Math.PI * r) / Math.max(1, g.n) - 1));
  ctx.font = `12px ${monoFamily()}`;
  ctx.textBaseline = 'middle';
  pos.forEach((p, i) => {
    const comm = g.communities?.[i];
    ctx.fillStyle = comm === undefined ? fg : categorical(comm);
    ctx.beginPath();
    ctx.arc(p.x, p.y, nodeR, 0, 2 * Math.PI);
    ctx.fill();
    ctx.lineWidth = highlight === i ? 2.5 : 1;
    ctx.strokeStyle = fg;
    ctx.stroke();
    const lx = cx + (r + nodeR + 6) * Math.cos(p.angle),
      ly = cy + (r + nodeR + 6) * Math.sin(p.angle);
    ctx.textAlign = Math.cos(p.angle) < -0.01 ? 'right' : Math.cos(p.angle) > 0.01 ? 'left' : 'center';
    ctx.fillStyle = fg;
    ctx.globalAlpha = highlight === null || highlight === i ? 1 : 0.6;
    ctx.fillText(g.labels[i] ?? '', lx, ly, 80);
    ctx.globalAlpha = 1;
  });
  Object.assign(c.dataset, { nodes: String(g.n), edges: String(edges), radius: String(r), node: String(nodeR) });
  return edges;
}

/** The node under a point (CSS pixels relative to the canvas), if any. */
export function graphHit(n: number, size: number, x: number, y: number): number | null {
  const r = size / 2 - 90;
  const pos = circleLayout(n, size / 2, size / 2, r);
  let best: number | null = null,
    bestD = 14 * 14;
  pos.forEach((p, i) => {
    const d = (p.x - x) ** 2 + (p.y - y) ** 2;
    if (d < bestD) {
      bestD = d;
      best = i;
    }
  });
  return best;
}

// ---------- lines (BertViz head view) ----------

export interface LinesInput {
  /** One n×n matrix per head (null: not shown). */
  heads: (Float32Array | null)[];
  n: number;
  rowHeight: number;
  /** Isolate one token: its outgoing lines (side 'left', as query) or incoming lines (side 'right', as key). */
  isolate: { side: 'left' | 'right'; token: number } | null;
}

/** Lines from query tokens (left) to key tokens (right), alpha = weight, one colour per head. Returns lines drawn. */
export function drawLines(c: HTMLCanvasElement, input: LinesInput, width: number): number {
  const height = input.n * input.rowHeight;
  const ctx = sizeCanvas(c, width, height);
  if (!ctx) return 0;
  const shown = input.heads.filter((h) => h).length || 1;
  let lines = 0;
  ctx.lineWidth = 2;
  input.heads.forEach((m, h) => {
    if (!m) return;
    ctx.strokeStyle = categorical(h);
    for (let i = 0; i < input.n; i++) {
      if (input.isolate?.side === 'left' && input.isolate.token !== i) continue;
      for (let j = 0; j < input.n; j++) {
        if (input.isolate?.side === 'right' && input.isolate.token !== j) continue;
        const w = m[i * input.n + j]!;
        if (w < 0.02) continue;
        ctx.globalAlpha = Math.min(1, (input.isolate ? w * 1.5 : w / Math.sqrt(shown)) + 0.05);
        ctx.beginPath();
        ctx.moveTo(2, (i + 0.5) * input.rowHeight);
        ctx.lineTo(width - 2, (j + 0.5) * input.rowHeight);
        ctx.stroke();
        lines++;
      }
    }
  });
  ctx.globalAlpha = 1;
  Object.assign(c.dataset, {
    lines: String(lines),
    isolated: input.isolate ? `${input.isolate.side}:${input.isolate.token}` : '',
  });
  return lines;
}

// ---------- curves (the Sections tab's mass per layer) ----------

export interface CurvesInput {
  /** One series per name: its value at x = 0, 1, …; null where there is none. */
  series: { name: string; values: (number | null)[] }[];
  xLabel: string;
  /** The y axis runs from 0 to this (e.g. 1 for a share). */
  yMax: number;
}

/** Lines of several series over a shared integer x, one categorical colour each, with a legend on the right. */
export function drawCurves(c: HTMLCanvasElement, input: CurvesInput, width: number): void {
  const height = 220;
  const ctx = sizeCanvas(c, width, height);
  if (!ctx) return;
  const fg = themeColour('--vscode-foreground', '#888');
  ctx.font = `11px ${fontFamily()}`;
  const legendW = Math.min(200, Math.max(60, ...input.series.map((s) => ctx.measureText(s.name).width + 26)));
  const left = 44,
    top = 10,
    bottom = 36,
    right = legendW + 10;
  const plotW = Math.max(40, width - left - right),
    plotH = height - top - bottom;
  const count = Math.max(1, ...input.series.map((s) => s.values.length));
  const x = (i: number) => left + (count === 1 ? plotW / 2 : (i / (count - 1)) * plotW);
  const y = (v: number) => top + plotH - (Math.min(v, input.yMax) / (input.yMax || 1)) * plotH;
  drawAxes(ctx, fg, left, top, plotW, plotH);
  let points = 0;
  input.series.forEach((s, k) => {
    ctx.strokeStyle = ctx.fillStyle = categorical(k);
    ctx.lineWidth = 2;
    ctx.beginPath();
    let open = false;
    s.values.forEach((v, i) => {
      if (v === null) {
        open = false;
        return;
      }
      if (open) ctx.lineTo(x(i), y(v));
      else ctx.moveTo(x(i), y(v));
      open = true;
      points++;
    });
    ctx.stroke();
    s.values.forEach((v, i) => {
      if (v !== null) ctx.fillRect(x(i) - 2, y(v) - 2, 4, 4);
    });
    const ly = top + 6 + k * 16;
    if (ly < height - 8) {
      ctx.fillRect(width - legendW, ly - 1, 14, 3);
      ctx.fillStyle = fg;
      ctx.textAlign = 'left';
      ctx.textBaseline = 'middle';
      ctx.fillText(s.name, width - legendW + 20, ly, legendW - 22);
    }
  });
  ctx.fillStyle = fg;
  ctx.textBaseline = 'top';
  ctx.textAlign = 'left';
  ctx.fillText('0', left, top + plotH + 4);
  ctx.textAlign = 'right';
  ctx.fillText(String(count - 1), left + plotW, top + plotH + 4);
  ctx.textAlign = 'center';
  ctx.fillText(input.xLabel, left + plotW / 2, top + plotH + 20);
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  ctx.fillText(fmt(input.yMax), left - 4, top);
  ctx.fillText('0', left - 4, top + plotH);
  Object.assign(c.dataset, { series: String(input.series.length), points: String(points) });
}
