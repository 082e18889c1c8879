// Colour scale for attention weights: viridis, a sequential, colour-blind-safe ramp, with the backend's
// control points (generated from Rendering/ColorMap.cs) interpolated and rounded as the backend does, so
// the panel and the exported PNGs agree to the level. 0 maps to the first point, `max` to the last.

import { VIRIDIS_POINTS } from './generated/viridis';

export type RGB = [number, number, number];
/** A control point: sRGB channels in [0, 1]. */
export type RampPoint = readonly [number, number, number];

/** Maps t in [0, 1] (clamped; NaN → 0) onto the ramp. */
export function rampColour(t: number, ramp: readonly RampPoint[] = VIRIDIS_POINTS): RGB {
  if (!(t > 0)) t = 0;
  if (t > 1) t = 1;
  const x = t * (ramp.length - 1);
  const i = Math.min(ramp.length - 2, Math.floor(x));
  const f = x - i;
  const a = ramp[i]!,
    b = ramp[i + 1]!;
  const channel = (k: 0 | 1 | 2): number => Math.round((a[k] + (b[k] - a[k]) * f) * 255);
  return [channel(0), channel(1), channel(2)];
}

/** The scale of one view: values in [0, max] → colours; max 0 (all zero) is treated as 1. */
export function scaleColour(v: number, max: number): RGB {
  return rampColour(max > 0 ? v / max : v);
}

/**
 * The diverging scale of a difference (the Diff tab's ΔA): blue for less attention, red for more, near-white at
 * 0 (ColorBrewer's RdBu, colour-blind safe). v in [−maxAbs, maxAbs]; NaN (no counterpart) → a darker grey.
 */
export const DIVERGING_POINTS: readonly RampPoint[] = [
  [0.129, 0.4, 0.675],
  [0.573, 0.773, 0.871],
  [0.969, 0.969, 0.969],
  [0.957, 0.647, 0.51],
  [0.698, 0.094, 0.169],
];
export function divergingColour(v: number, maxAbs: number): RGB {
  if (Number.isNaN(v)) return [150, 150, 150];
  return rampColour(maxAbs > 0 ? 0.5 + v / (2 * maxAbs) : 0.5, DIVERGING_POINTS);
}

export function cssColour([r, g, b]: RGB, alpha = 1): string {
  return alpha >= 1 ? `rgb(${r}, ${g}, ${b})` : `rgba(${r}, ${g}, ${b}, ${alpha})`;
}

/** Legend ticks: `count` evenly spaced values from 0 to max, formatted to 2 significant decimals. */
export function legendTicks(max: number, count = 5): { value: number; label: string }[] {
  const out: { value: number; label: string }[] = [];
  for (let i = 0; i < count; i++) {
    const value = (max * i) / (count - 1);
    out.push({ value, label: value.toFixed(max < 0.1 ? 3 : 2) });
  }
  return out;
}

/** Editor tint for a weight: the scale's colour with an opacity that grows with the weight. */
export function tint(v: number, max: number): string {
  const t = max > 0 ? Math.min(1, Math.max(0, v / max)) : 0;
  return cssColour(rampColour(t), 0.15 + 0.6 * t);
}
