// The colour scale beside a heatmap: the viridis ramp from 0 (bottom) to the view's largest value (top), with ticks.
// The Heatmap and Rollout tabs each have one.
import { cssColour, legendTicks, rampColour } from '../shared/colour';
import { h } from './dom';

export interface Legend {
  element: HTMLElement;
  bar: HTMLCanvasElement;
  ticks: HTMLElement;
}

export function createLegend(idPrefix: string, label = 'Colour scale'): Legend {
  const bar = h('canvas', { id: `${idPrefix}-bar`, class: 'legend-bar', width: 14, height: 200 });
  const ticks = h('div', { id: `${idPrefix}-ticks`, class: 'legend-ticks' });
  return { element: h('aside', { id: idPrefix, class: 'legend', 'aria-label': label }, bar, ticks), bar, ticks };
}

/** Paints the ramp and the ticks for values 0 … max; `what` names the values in the bar's tooltip. */
export function paintLegend(legend: Legend, max: number, what = 'the largest weight of this view'): void {
  const c = legend.bar;
  const ctx = c.getContext('2d');
  if (!ctx) return;
  for (let y = 0; y < c.height; y++) {
    ctx.fillStyle = cssColour(rampColour(1 - y / (c.height - 1)));
    ctx.fillRect(0, y, c.width, 1);
  }
  legend.ticks.replaceChildren(
    ...legendTicks(max, 5)
      .reverse()
      .map((t) => h('span', {}, t.label)),
  );
  c.title = `Colour scale: 0 to ${max.toFixed(4)} (${what})`;
  legend.element.dataset.max = String(max);
}
