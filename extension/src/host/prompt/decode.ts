// String-literal escapes decoded to the value the program sees, each decoded unit mapped to the source characters
// that produced it. The parser (tree-sitter, literals.ts) finds the literals and their parts; the escape rules are
// each language's own, written out here because no parser decodes them.
import type { TextMapBuilder } from '../../shared/textMap';

export type EscapeStyle =
  | 'python'
  | 'python-bytes'
  | 'js'
  | 'csharp'
  | 'json'
  | 'yaml-double'
  | 'verbatim'
  /** C# @"…": `""` is a quote. */
  | 'csharp-verbatim'
  /** YAML '…': `''` is a quote. */
  | 'yaml-single';

export interface DecodeOptions {
  /** f-strings, template strings with `{{`/`}}` doubling (Python f"…", C# $"…"). */
  doubledBraces?: boolean;
  /** Line breaks as the language reads them: CRLF becomes LF (Python, JS template literals, YAML). */
  normalizeNewlines?: boolean;
}

const SIMPLE: Record<string, Record<string, string>> = {
  python: { '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' },
  js: { '\\': '\\', "'": "'", '"': '"', '`': '`', $: '$', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' },
  csharp: {
    '\\': '\\',
    "'": "'",
    '"': '"',
    '0': '\0',
    a: '\x07',
    b: '\b',
    e: '\x1b',
    f: '\f',
    n: '\n',
    r: '\r',
    t: '\t',
    v: '\v',
  },
  json: { '\\': '\\', '"': '"', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' },
  'yaml-double': {
    '\\': '\\',
    '"': '"',
    '/': '/',
    ' ': ' ',
    '\t': '\t',
    '0': '\0',
    a: '\x07',
    b: '\b',
    e: '\x1b',
    f: '\f',
    n: '\n',
    r: '\r',
    t: '\t',
    v: '\v',
    N: '\x85',
    _: '\xa0',
    L: '\u2028',
    P: '\u2029',
  },
};

const isHex = (c: string | undefined): boolean => c !== undefined && /^[0-9a-fA-F]$/.test(c);

/** Reads up to `max` (at least `min`) hex digits at `at`; undefined when fewer than `min`. */
function hexRun(s: string, at: number, end: number, min: number, max: number): string | undefined {
  let k = 0;
  while (k < max && at + k < end && isHex(s[at + k])) k++;
  return k >= min ? s.slice(at, at + k) : undefined;
}

function codePoint(hex: string): string | undefined {
  const cp = parseInt(hex, 16);
  return cp <= 0x10ffff ? String.fromCodePoint(cp) : undefined;
}

/** A line break at `at` (LF, CR or CRLF): its length, 0 when none. */
function lineBreak(s: string, at: number): number {
  if (s[at] === '\r') return s[at + 1] === '\n' ? 2 : 1;
  return s[at] === '\n' ? 1 : 0;
}

/** One escape at source[at] (a backslash): its value and length; undefined leaves the backslash as it is. */
function escapeAt(
  s: string,
  at: number,
  end: number,
  style: EscapeStyle,
): { value: string; length: number } | undefined {
  const c = s[at + 1];
  if (c === undefined || at + 1 >= end) return undefined;
  const br = lineBreak(s, at + 1);
  if (br > 0 && (style === 'python' || style === 'python-bytes' || style === 'js' || style === 'yaml-double'))
    return { value: '', length: 1 + br }; // a line continuation
  if (style === 'js' && (c === '\u2028' || c === '\u2029')) return { value: '', length: 2 };
  const table = SIMPLE[style === 'python-bytes' ? 'python' : style];
  if (table && Object.hasOwn(table, c)) {
    if (style === 'js' && c === '0' && /[0-9]/.test(s[at + 2] ?? '')) return undefined;
    return { value: table[c]!, length: 2 };
  }
  if (style === 'js' && c === '0') return { value: '\0', length: 2 };
  const hex = (min: number, max: number, prefix = 2) => {
    const h = hexRun(s, at + prefix, end, min, max);
    const v = h === undefined ? undefined : codePoint(h);
    return h === undefined || v === undefined ? undefined : { value: v, length: prefix + h.length };
  };
  switch (style) {
    case 'python':
    case 'python-bytes': {
      if (/[0-7]/.test(c)) {
        let k = 1;
        while (k < 3 && at + 1 + k < end && /[0-7]/.test(s[at + 1 + k]!)) k++;
        return { value: String.fromCodePoint(parseInt(s.slice(at + 1, at + 1 + k), 8)), length: 1 + k };
      }
      if (c === 'x') return hex(2, 2);
      if (style === 'python-bytes') return undefined; // bytes have no \u, \U, \N
      if (c === 'u') return hex(4, 4);
      if (c === 'U') return hex(8, 8);
      return undefined; // \N{…} and unknown escapes stay as written (Python keeps unknown ones too)
    }
    case 'js': {
      if (c === 'x') return hex(2, 2);
      if (c === 'u' && s[at + 2] === '{') {
        const close = s.indexOf('}', at + 3);
        if (close < 0 || close >= end) return undefined;
        const v = /^[0-9a-fA-F]+$/.test(s.slice(at + 3, close)) ? codePoint(s.slice(at + 3, close)) : undefined;
        return v === undefined ? undefined : { value: v, length: close + 1 - at };
      }
      if (c === 'u') return hex(4, 4);
      return { value: c, length: 2 }; // JS drops the backslash of any other escape
    }
    case 'csharp':
      if (c === 'x') return hex(1, 4);
      if (c === 'u') return hex(4, 4);
      if (c === 'U') return hex(8, 8);
      return undefined;
    case 'json':
      return c === 'u' ? hex(4, 4) : undefined;
    case 'yaml-double':
      if (c === 'x') return hex(2, 2);
      if (c === 'u') return hex(4, 4);
      if (c === 'U') return hex(8, 8);
      return undefined;
    default:
      return undefined;
  }
}

/** Appends source[start, end) decoded with `style` to `out`. */
export function decodeInto(
  out: TextMapBuilder,
  source: string,
  start: number,
  end: number,
  style: EscapeStyle,
  options: DecodeOptions = {},
): void {
  let i = start;
  while (i < end) {
    const c = source[i]!;
    if (options.normalizeNewlines && c === '\r' && source[i + 1] === '\n' && i + 1 < end) {
      out.decoded('\n', i, i + 2);
      i += 2;
      continue;
    }
    if (options.doubledBraces && (c === '{' || c === '}') && source[i + 1] === c && i + 1 < end) {
      out.decoded(c, i, i + 2);
      i += 2;
      continue;
    }
    if (style === 'csharp-verbatim' && c === '"' && source[i + 1] === '"' && i + 1 < end) {
      out.decoded('"', i, i + 2);
      i += 2;
      continue;
    }
    if (style === 'yaml-single' && c === "'" && source[i + 1] === "'" && i + 1 < end) {
      out.decoded("'", i, i + 2);
      i += 2;
      continue;
    }
    if (c === '\\' && style !== 'verbatim' && style !== 'csharp-verbatim' && style !== 'yaml-single') {
      const e = escapeAt(source, i, end, style);
      if (e) {
        out.decoded(e.value, i, i + e.length);
        i += e.length;
        continue;
      }
    }
    // A surrogate pair stays one source character pair.
    out.verbatim(c, i);
    i++;
  }
}
