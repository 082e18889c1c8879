// Colour scale for attention weights: a sequential, colour-blind-safe ramp (viridis, sampled at
// 9 stops and interpolated linearly in sRGB). 0 maps to the first stop, `max` to the last.

export type RGB = [number, number, number];

export const VIRIDIS: readonly RGB[] = [
  [68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
  [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37],
];

/** Maps t in [0, 1] (clamped; NaN → 0) onto the ramp. */
export function rampColour(t: number, ramp: readonly RGB[] = VIRIDIS): RGB {
  if (!(t > 0)) t = 0;
  if (t > 1) t = 1;
  const x = t * (ramp.length - 1);
  const i = Math.min(ramp.length - 2, Math.floor(x));
  const f = x - i;
  const a = ramp[i]!, b = ramp[i + 1]!;
  return [
    Math.round(a[0] + (b[0] - a[0]) * f),
    Math.round(a[1] + (b[1] - a[1]) * f),
    Math.round(a[2] + (b[2] - a[2]) * f),
  ];
}

/** The scale of one view: values in [0, max] → colours; max 0 (all zero) is treated as 1. */
export function scaleColour(v: number, max: number): RGB {
  return rampColour(max > 0 ? v / max : v);
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
