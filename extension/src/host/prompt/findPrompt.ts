// What "the prompt at the cursor" is in each kind of file: a string literal (decoded), a chat messages list, a
// Markdown fenced block or paragraph, a .prompty file's role blocks, or a whole prompt file.
import MarkdownIt from 'markdown-it';
import { sliceMap, TextMap } from '../../shared/textMap';
import { chatAt, grammarFor, literalAt, promptSites } from './literals';
import type { Parsers } from './parsers';

export interface PromptText {
  kind: 'text';
  /** What was found, for the panel's title and messages: "Python string", "Markdown paragraph", … */
  what: string;
  text: string;
  map: TextMap;
}

export interface PromptMessage {
  role: string;
  text: string;
  map: TextMap;
}

export interface PromptChat {
  kind: 'chat';
  what: string;
  messages: PromptMessage[];
  /** The list in the document. */
  start: number;
  end: number;
}

export type Prompt = PromptText | PromptChat;

export interface PromptQuery {
  source: string;
  languageId: string;
  fileName: string;
  /** The cursor, a document offset (UTF-16). */
  offset: number;
  /** A non-empty selection [start, end), when there is one. */
  selection?: [number, number];
}

/** Whole files that are prompts. */
const PROMPT_FILES = /\.(prompt|jinja|jinja2|j2|txt)$/i;

const LANGUAGE_NAMES: Record<string, string> = {
  python: 'Python',
  javascript: 'JavaScript',
  javascriptreact: 'JavaScript',
  typescript: 'TypeScript',
  typescriptreact: 'TypeScript',
  csharp: 'C#',
  json: 'JSON',
  jsonc: 'JSON',
  yaml: 'YAML',
};

/** The prompt at the query's cursor (or the decoded part of a literal the selection covers); undefined: none. */
export async function findPrompt(q: PromptQuery, parsers: Parsers): Promise<Prompt | undefined> {
  if (/\.prompty$/i.test(q.fileName)) return promptyAt(q.source);
  const grammar = grammarFor(q.languageId);
  if (grammar) {
    const tree = await parsers.parse(grammar, q.source);
    try {
      const name = LANGUAGE_NAMES[q.languageId] ?? q.languageId;
      const literal = literalAt(tree.rootNode, q.source, grammar, q.selection ? q.selection[0] : q.offset);
      if (q.selection) {
        // A selection inside a literal: the decoded value of the characters it covers.
        if (!literal || q.selection[1] > literal.end) return undefined;
        const part = decodedWithin(literal.text, literal.map, q.selection[0], q.selection[1]);
        return part && { kind: 'text', what: `part of a ${name} string`, ...part };
      }
      const chat = chatAt(tree.rootNode, q.source, grammar, q.offset, grammar === 'json' || grammar === 'yaml');
      if (chat && (!literal || (literal.start >= chat.start && literal.end <= chat.end))) {
        return {
          kind: 'chat',
          what: `${name} chat messages`,
          messages: chat.messages.map((m) => ({ role: m.role, text: m.content.text, map: m.content.map })),
          start: chat.start,
          end: chat.end,
        };
      }
      if (literal) return { kind: 'text', what: `${name} string`, text: literal.text, map: literal.map };
      return undefined;
    } finally {
      tree.delete();
    }
  }
  if (q.selection) return undefined;
  if (q.languageId === 'markdown') return markdownAt(q.source, q.offset);
  if (PROMPT_FILES.test(q.fileName) || q.languageId === 'plaintext' || q.languageId === 'jinja') {
    return { kind: 'text', what: 'prompt file', text: q.source, map: TextMap.identity(0, q.source.length) };
  }
  return undefined;
}

/**
 * Where the CodeLens goes: a document offset inside each prompt of the file (findPrompt there finds it). Code and data
 * files: chat lists and prompt-sized literals; .prompt/.prompty/.jinja files: the whole file. Markdown and plain text
 * are prose, not prompts: none.
 */
export async function promptOffsets(q: Omit<PromptQuery, 'offset' | 'selection'>, parsers: Parsers): Promise<number[]> {
  if (/\.(prompty|prompt|jinja|jinja2|j2)$/i.test(q.fileName)) return q.source.trim() ? [0] : [];
  const grammar = grammarFor(q.languageId);
  if (!grammar) return [];
  const tree = await parsers.parse(grammar, q.source);
  try {
    return promptSites(tree.rootNode, q.source, grammar).map((s) => s.start + 1);
  } finally {
    tree.delete();
  }
}

/** The decoded units whose source lies inside document [start, end). */
function decodedWithin(
  text: string,
  map: TextMap,
  start: number,
  end: number,
): { text: string; map: TextMap } | undefined {
  let first = -1,
    last = -1;
  for (let i = 0; i < text.length; i++) {
    if (map.starts[i]! < start || map.ends[i]! > end) continue;
    if (first < 0) first = i;
    last = i;
  }
  return first < 0 ? undefined : { text: text.slice(first, last + 1), map: sliceMap(map, first, last + 1) };
}

function lineStarts(source: string): number[] {
  const starts = [0];
  for (let i = 0; i < source.length; i++) if (source[i] === '\n') starts.push(i + 1);
  return starts;
}

/** Document [start, end) of lines [from, to), without the last line break. */
function linesRange(source: string, starts: readonly number[], from: number, to: number): [number, number] {
  const start = starts[from] ?? source.length;
  let end = to < starts.length ? starts[to]! : source.length;
  while (end > start && (source[end - 1] === '\n' || source[end - 1] === '\r')) end--;
  return [start, end];
}

function verbatim(source: string, what: string, [start, end]: [number, number]): PromptText {
  return { kind: 'text', what, text: source.slice(start, end), map: TextMap.identity(start, end - start) };
}

/** The fenced or indented code block, or the paragraph, holding `offset` (markdown-it's block map). */
export function markdownAt(source: string, offset: number): PromptText | undefined {
  const starts = lineStarts(source);
  let line = starts.findIndex((s) => s > offset) - 1;
  if (line < 0) line = starts.length - 1;
  const tokens = new MarkdownIt().parse(source, {});
  let best: PromptText | undefined;
  for (const t of tokens) {
    if (!t.map || line < t.map[0] || line >= t.map[1]) continue;
    const [a, b] = t.map;
    if (t.type === 'fence') {
      const closed = b - 1 > a && /^\s*(`{3,}|~{3,})\s*$/.test(source.slice(...linesRange(source, starts, b - 1, b)));
      best = verbatim(source, 'Markdown code block', linesRange(source, starts, a + 1, closed ? b - 1 : b));
    } else if (t.type === 'code_block') {
      best = verbatim(source, 'Markdown code block', linesRange(source, starts, a, b));
    } else if (t.type === 'paragraph_open' || t.type === 'heading_open') {
      best = verbatim(source, 'Markdown paragraph', linesRange(source, starts, a, b));
    }
  }
  return best;
}

const ROLE_LINE = /^[ \t]*(system|user|assistant)[ \t]*:[ \t]*$/i;

/**
 * A .prompty file (front matter between `---` lines, then `system:` / `user:` / `assistant:` blocks): its messages;
 * a body without role lines is one text.
 */
export function promptyAt(source: string): Prompt | undefined {
  const starts = lineStarts(source);
  const lineAt = (k: number) => source.slice(...linesRange(source, starts, k, k + 1));
  let body = 0;
  if (lineAt(0).trim() === '---') {
    const close = starts.findIndex((_, k) => k > 0 && lineAt(k).trim() === '---');
    if (close > 0) body = close + 1;
  }
  const blocks: { role: string; from: number }[] = [];
  for (let k = body; k < starts.length; k++) {
    const m = ROLE_LINE.exec(lineAt(k));
    if (m) blocks.push({ role: m[1]!.toLowerCase(), from: k + 1 });
  }
  if (blocks.length === 0) {
    const range = linesRange(source, starts, body, starts.length);
    return range[1] > range[0] ? verbatim(source, 'prompty file', range) : undefined;
  }
  const messages: PromptMessage[] = blocks.map((b, i) => {
    const to = i + 1 < blocks.length ? blocks[i + 1]!.from - 1 : starts.length;
    let [start, end] = linesRange(source, starts, b.from, to);
    while (start < end && /\s/.test(source[start]!)) start++;
    while (end > start && /\s/.test(source[end - 1]!)) end--;
    return { role: b.role, text: source.slice(start, end), map: TextMap.identity(start, end - start) };
  });
  return { kind: 'chat', what: 'prompty messages', messages, start: starts[body] ?? 0, end: source.length };
}
