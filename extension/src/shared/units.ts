// Per-token answers (communities, attention flow) mapped onto a view's units (tokens with special
// tokens hidden and/or subword pieces merged into words; see attention/view). Pure: unit-tested.
import type { ViewUnit } from './protocol';

/** A unit's community is its first token's; `mixed` counts the units whose pieces span several communities. */
export function unitCommunities(
  units: readonly ViewUnit[],
  tokenCommunities: readonly number[],
): { communities: number[]; mixed: number } {
  let mixed = 0;
  const communities = units.map((u) => {
    const first = tokenCommunities[u.firstToken] ?? -1;
    for (let t = u.firstToken + 1; t <= u.lastToken; t++)
      if (tokenCommunities[t] !== first) {
        mixed++;
        break;
      }
    return first;
  });
  return { communities, mixed };
}

/** Sums a per-token vector over each unit's pieces [firstToken, lastToken]; hidden tokens are left out. */
export function sumPerUnit(values: readonly number[], units: readonly ViewUnit[]): number[] {
  return units.map((u) => {
    let s = 0;
    for (let t = u.firstToken; t <= u.lastToken; t++) s += values[t] ?? 0;
    return s;
  });
}

/** The unit holding a token, or -1 (a hidden special token). */
export function unitOfToken(units: readonly ViewUnit[], token: number): number {
  return units.findIndex((u) => token >= u.firstToken && token <= u.lastToken);
}

/**
 * Attention flow (per input token, sums to 1) on a view's units: each unit gets the sum over its pieces;
 * when tokens are hidden the rest is renormalised to sum 1, as the view's rows are. `hidden`: the share
 * of the flow that went into hidden tokens.
 */
export function flowForView(flow: readonly number[], units: readonly ViewUnit[]): { values: number[]; hidden: number } {
  const summed = sumPerUnit(flow, units);
  const total = flow.reduce((a, b) => a + b, 0);
  const shown = summed.reduce((a, b) => a + b, 0);
  // The hidden tokens' own flow, not total − shown: sums in another order differ by rounding (2e-16 with none hidden).
  const covered = new Uint8Array(flow.length);
  for (const u of units) covered.fill(1, u.firstToken, u.lastToken + 1);
  const hiddenFlow = flow.reduce((a, v, t) => (covered[t] ? a : a + v), 0);
  const hidden = total > 0 ? hiddenFlow / total : 0;
  return { values: shown > 0 && hidden > 0 ? summed.map((v) => v / shown) : summed, hidden };
}

/**
 * An incomplete flow (the backend's time budget ran out) on a view's units: the exact max-flow where every piece of
 * the unit was computed, else null, with the summed upper bounds. Not normalised: normalising needs every input.
 */
export function partialFlowForView(
  raw: readonly (number | null)[],
  upperBound: readonly number[],
  units: readonly ViewUnit[],
): { values: (number | null)[]; upper: number[] } {
  const values = units.map((u) => {
    let s = 0;
    for (let t = u.firstToken; t <= u.lastToken; t++) {
      const v = raw[t];
      if (v === null || v === undefined) return null;
      s += v;
    }
    return s;
  });
  return { values, upper: sumPerUnit(upperBound, units) };
}
