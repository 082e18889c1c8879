// Tokens and text ranges. Token offsets are UTF-16 code units into the analyzed text, the same
// unit as VS Code's document offsets, so a token maps to a document range by adding the offset
// of the analyzed text's start in the document.

import type { Token } from './protocol';

/**
 * What a token or view unit reads as. The backend defines it once (Tokenization/TokenDisplay.cs): markers dropped
 * (WordPiece's `##` → `continuation`, a leading `Ġ`/`▁` → `leadingSpace`) and invisible characters escaped as
 * the exported images label them (`\n`, `\t`, `\u{202E}`). A token that is only a space reads `␣`.
 */
export function tokenLabel(x: { display: string; text: string; leadingSpace?: boolean }): string {
  return x.display || (x.leadingSpace ? '␣' : x.text);
}

/** A token's label and the two markers the strip draws its own way. */
export function displayToken(t: Token): { label: string; continuation: boolean; leadingSpace: boolean } {
  return { label: tokenLabel(t), continuation: t.continuation, leadingSpace: t.leadingSpace };
}

/** A short label for axes: continuation pieces get a leading `·`. */
export function axisLabel(
  x: { display: string; text: string; leadingSpace?: boolean; continuation?: boolean },
  maxLength = 14,
): string {
  let s = (x.continuation ? '·' : '') + tokenLabel(x);
  if (s.length > maxLength) s = s.slice(0, maxLength - 1) + '…';
  return s;
}

/**
 * For a sentence pair: the token of segment `typeId` (0 = first text, 1 = second) whose span holds `offset`, an offset
 * into that segment's own text; -1 when none. Spans restart at 0 in each segment, so the search stays in one segment.
 */
export function segmentTokenIndexAt(tokens: readonly Token[], typeId: number, offset: number): number {
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (!t.special && (t.typeId ?? 0) === typeId && offset >= t.start && offset < t.end) return i;
  }
  return -1;
}

/** Index of the non-special token whose [start, end) contains `offset` (relative to the analyzed text), or -1. */
export function tokenIndexAt(tokens: readonly Token[], offset: number): number {
  // Binary search over the non-special tokens (their starts are non-decreasing).
  let lo = 0,
    hi = tokens.length - 1,
    found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const t = tokens[mid]!;
    if (t.special) {
      // Specials sit at the ends; linear fallback keeps it simple and correct.
      return linearIndexAt(tokens, offset);
    }
    if (offset < t.start) hi = mid - 1;
    else if (offset >= t.end) lo = mid + 1;
    else {
      found = mid;
      break;
    }
  }
  return found;
}

function linearIndexAt(tokens: readonly Token[], offset: number): number {
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (!t.special && offset >= t.start && offset < t.end) return i;
  }
  return -1;
}

/** What cut an analysis short: attentionViz.maxTokens, the model's window, or the backend's 32,768-token maximum. */
export type TruncationCause =
  | { kind: 'setting'; maxTokens: number; window: number }
  | { kind: 'window'; window: number }
  | { kind: 'maximum'; maximum: number; window: number };

/** The backend's most tokens per analysis (docs/protocol.md, attention/analyze). */
export const MAX_ANALYSIS_TOKENS = 32_768;

/** The cause, from the setting (0: none) and the model's window as the backend reported it. */
export function truncationCause(maxTokens: number, window: number): TruncationCause {
  if (maxTokens > 0 && maxTokens < Math.min(window, MAX_ANALYSIS_TOKENS)) return { kind: 'setting', maxTokens, window };
  if (window > MAX_ANALYSIS_TOKENS) return { kind: 'maximum', maximum: MAX_ANALYSIS_TOKENS, window };
  return { kind: 'window', window };
}

/** Where and why the analysis stops: the limit and where it came from, the last token, the character. */
export function truncationSummary(
  tokens: readonly Token[],
  text: string,
  truncatedAt: number | undefined,
  cause?: TruncationCause,
): string {
  const at = truncatedAt ?? Math.max(0, ...tokens.filter((t) => !t.special).map((t) => t.end));
  const total = text.length;
  const analyzed = tokens.filter((t) => !t.special).length;
  const snippet = text.slice(Math.max(0, at - 20), at).replace(/\s+/g, ' ');
  const n = (v: number) => v.toLocaleString('en-US');
  const why =
    cause?.kind === 'setting'
      ? `Truncated at ${n(tokens.length)} tokens by the attentionViz.maxTokens setting (${n(cause.maxTokens)}); ` +
        `the model's window holds ${n(cause.window)}`
      : cause?.kind === 'maximum'
        ? `Truncated at the backend's maximum of ${n(cause.maximum)} tokens ` +
          `(the model's window holds ${n(cause.window)})`
        : `Truncated: the model's window holds ${n(cause?.window ?? tokens.length)} tokens`;
  return `${why}; analysis stops after token ${analyzed} (character ${at} of ${total}, after “…${snippet}”).`;
}
