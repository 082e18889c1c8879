// The sections of a prompt for the Sections tab: where no chat gives them (one per message), the user's pattern
// (attentionViz.sectionPattern), else XML-style tags, else Markdown headings, else blank-line paragraphs.
// Sections tile the text: each runs to the next one's start, so every character's token belongs to one and only
// tokens with no characters (BOS, a template's specials) reach the sink.
import type { SectionsDto, TextSection } from './protocol';

/** The backend takes at most this many (attention/sections). */
export const MAX_SECTIONS = 1000;

export type SectionRule = 'pattern' | 'tags' | 'headings' | 'paragraphs';

export interface FoundSections {
  sections: TextSection[];
  rule: SectionRule;
}

interface Boundary {
  at: number;
  name: string;
}

/**
 * The text's sections by the first rule that gives two or more; undefined when none does. `pattern` (a regular
 * expression, multiline) marks where each section starts, its first capture group (or the match) naming it.
 * Throws a SyntaxError for a pattern that is not a regular expression.
 */
export function findSections(text: string, pattern?: string): FoundSections | undefined {
  const rules: [SectionRule, () => Boundary[]][] = [
    ['tags', () => tagBoundaries(text)],
    ['headings', () => headingBoundaries(text)],
    ['paragraphs', () => paragraphBoundaries(text)],
  ];
  if (pattern?.trim()) rules.unshift(['pattern', () => patternBoundaries(text, new RegExp(pattern, 'gmu'))]);
  for (const [rule, boundaries] of rules) {
    const sections = tile(text, boundaries());
    if (sections.length >= 2 && sections.length <= MAX_SECTIONS) return { sections, rule };
  }
  return undefined;
}

/** Sections from increasing boundaries; text before the first one is a "preamble" unless it is blank. */
function tile(text: string, boundaries: Boundary[]): TextSection[] {
  const bs = boundaries.filter((b, i) => b.at < text.length && (i === 0 || b.at > boundaries[i - 1]!.at));
  if (bs.length === 0) return [];
  if (bs[0]!.at > 0) {
    if (text.slice(0, bs[0]!.at).trim()) bs.unshift({ at: 0, name: 'preamble' });
    else bs[0] = { ...bs[0]!, at: 0 };
  }
  const used = new Map<string, number>();
  return bs.map((b, i) => {
    const n = (used.get(b.name) ?? 0) + 1;
    used.set(b.name, n);
    const name = n > 1 ? `${b.name} ${n}` : b.name;
    return { name, start: b.at, end: i + 1 < bs.length ? bs[i + 1]!.at : text.length };
  });
}

function shortName(s: string): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length > 32 ? `${one.slice(0, 31)}…` : one || 'section';
}

function patternBoundaries(text: string, re: RegExp): Boundary[] {
  const out: Boundary[] = [];
  for (const m of text.matchAll(re)) {
    if (out.length > MAX_SECTIONS) break;
    out.push({ at: m.index, name: shortName(m[1] ?? m[0]) });
  }
  return out;
}

/** Top-level `<name …>…</name>` elements, each a section; non-blank text between them is a "text" section. */
function tagBoundaries(text: string): Boundary[] {
  const open = /<([A-Za-z][\w.-]*)(?:\s[^<>]*)?>/g;
  const out: Boundary[] = [];
  let m: RegExpExecArray | null;
  while ((m = open.exec(text)) && out.length <= MAX_SECTIONS) {
    const name = m[1]!;
    const end = closingEnd(text, name, open.lastIndex);
    if (end < 0) continue;
    out.push({ at: m.index, name });
    // What follows the element up to the next one: its own section when it holds text, else the element's tail.
    const next = text.slice(end).search(/<[A-Za-z]/);
    const gapEnd = next < 0 ? text.length : end + next;
    if (text.slice(end, gapEnd).trim()) out.push({ at: end, name: 'text' });
    open.lastIndex = end;
  }
  return out;
}

/** The end of the `</name>` closing an element opened before `from` (same-name elements nest); −1: none. */
function closingEnd(text: string, name: string, from: number): number {
  const tag = new RegExp(`<(/?)${name.replace(/[.]/g, '\\.')}(?:\\s[^<>]*)?>`, 'g');
  tag.lastIndex = from;
  let depth = 1;
  let m: RegExpExecArray | null;
  while ((m = tag.exec(text))) {
    depth += m[1] ? -1 : 1;
    if (depth === 0) return tag.lastIndex;
  }
  return -1;
}

/** ATX headings (`# …` to `###### …`) outside fenced code, each starting a section named by its text. */
function headingBoundaries(text: string): Boundary[] {
  const out: Boundary[] = [];
  let fence: string | undefined;
  let at = 0;
  for (const line of text.split('\n')) {
    const f = /^\s{0,3}(`{3,}|~{3,})/.exec(line);
    if (f) fence = fence === undefined ? f[1]![0] : fence === f[1]![0] ? undefined : fence;
    else if (fence === undefined) {
      const h = /^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
      if (h) out.push({ at, name: shortName(h[1]!) });
    }
    at += line.length + 1;
  }
  return out;
}

/** Paragraphs separated by blank lines, each named by its first words. */
function paragraphBoundaries(text: string): Boundary[] {
  const out: Boundary[] = [];
  const blank = /\n[ \t\r]*\n\s*/g;
  let start = text.length - text.trimStart().length;
  const push = (at: number) => {
    const own = text.slice(at, at + 120).split(/\n[ \t\r]*\n/)[0]!;
    const words = own.split(/\s+/).filter(Boolean).slice(0, 4).join(' ');
    out.push({ at, name: `¶${out.length + 1} ${shortName(words)}` });
  };
  if (start < text.length) push(start);
  while (blank.exec(text) && out.length <= MAX_SECTIONS) {
    start = blank.lastIndex;
    if (start < text.length) push(start);
  }
  return out;
}

/** Sections named in a CodeLens; the rest are counted (the tooltip has them all). */
const NAMED = 4;

/**
 * The lens's words: each section's share of the last token's attention that lands on the prompt's sections (the
 * sink, BOS and template tokens, is left out, so the shares add up to 100 %).
 */
export function describeSections(tokens: number, r: SectionsDto | undefined): { title: string; tooltip: string } {
  if (!r)
    return { title: `AttentionViz: ${tokens} tokens · inspect attention`, tooltip: 'Open this prompt in the panel.' };
  const onSections = r.sections.reduce((a, s) => a + s.mass, 0);
  const share = (m: number) => `${Math.round((100 * m) / (onSections || 1))}%`;
  const named = r.sections.slice(0, NAMED).map((s) => `${s.name} ${share(s.mass)}`);
  const more = r.sections.length > NAMED ? ` · +${r.sections.length - NAMED} more` : '';
  const tooltip =
    `The last token's attention (mean over layers and heads) by section, as a share of what reaches the sections; ` +
    `${(100 * r.sink).toFixed(1)}% goes to special and template tokens and is left out. ` +
    r.sections.map((s) => `${s.name}: ${share(s.mass)} (${(100 * s.mass).toFixed(1)}% of all)`).join('; ') +
    '. Click to open it in the panel.';
  return { title: `AttentionViz: ${tokens} tokens · ${named.join(' · ')}${more}`, tooltip };
}
