// Prompts in code: the string literal (or chat messages list) at an offset, found with tree-sitter's grammars
// (web-tree-sitter, the grammars' own .wasm builds from npm: exact parsers of each language, so quotes inside
// comments, nested templates and raw strings are never mistaken) and decoded to the value the program sees.
import type { Node } from 'web-tree-sitter';
import { TextMapBuilder, type TextMap } from '../../shared/textMap';
import { decodeInto, type DecodeOptions, type EscapeStyle } from './decode';

export type Grammar = 'python' | 'javascript' | 'typescript' | 'tsx' | 'csharp' | 'json' | 'yaml';

/** The .wasm of each grammar, as its npm package ships it. */
export const GRAMMAR_WASM: Record<Grammar, string> = {
  python: 'tree-sitter-python.wasm',
  javascript: 'tree-sitter-javascript.wasm',
  typescript: 'tree-sitter-typescript.wasm',
  tsx: 'tree-sitter-tsx.wasm',
  csharp: 'tree-sitter-c_sharp.wasm',
  json: 'tree-sitter-json.wasm',
  yaml: 'tree-sitter-yaml.wasm',
};

/** VS Code's language id → the grammar that parses it. */
export function grammarFor(languageId: string): Grammar | undefined {
  switch (languageId) {
    case 'python':
      return 'python';
    case 'javascript':
      return 'javascript';
    case 'javascriptreact':
    case 'typescriptreact':
      return 'tsx';
    case 'typescript':
      return 'typescript';
    case 'csharp':
      return 'csharp';
    case 'json':
    case 'jsonc':
    case 'jsonl':
      return 'json';
    case 'yaml':
      return 'yaml';
    default:
      return undefined;
  }
}

/** A literal's decoded value; `start`/`end` is the whole literal in the document (quotes included). */
export interface DecodedLiteral {
  text: string;
  map: TextMap;
  start: number;
  end: number;
}

const STRING_TYPES: Record<Grammar, readonly string[]> = {
  python: ['concatenated_string', 'string'],
  javascript: ['template_string', 'string'],
  typescript: ['template_string', 'string'],
  tsx: ['template_string', 'string'],
  csharp: ['interpolated_string_expression', 'raw_string_literal', 'verbatim_string_literal', 'string_literal'],
  json: ['string'],
  yaml: ['block_scalar', 'double_quote_scalar', 'single_quote_scalar', 'plain_scalar'],
};

/** Parts of a literal's content: decoded with the literal's escapes, or kept as written (placeholders). */
interface Part {
  start: number;
  end: number;
  verbatim?: boolean;
}

function emit(
  out: TextMapBuilder,
  source: string,
  parts: readonly Part[],
  style: EscapeStyle,
  options: DecodeOptions = {},
): void {
  for (const p of parts) {
    if (p.verbatim) out.verbatim(source.slice(p.start, p.end), p.start);
    else decodeInto(out, source, p.start, p.end, style, options);
  }
}

/** [start, end) split around the `holes` (interpolations), which are kept verbatim. */
function around(start: number, end: number, holes: readonly Node[]): Part[] {
  const parts: Part[] = [];
  let at = start;
  for (const h of holes) {
    if (h.startIndex > at) parts.push({ start: at, end: h.startIndex });
    parts.push({ start: h.startIndex, end: h.endIndex, verbatim: true });
    at = h.endIndex;
  }
  if (end > at) parts.push({ start: at, end });
  return parts;
}

const childrenOf = (n: Node): Node[] => n.children.filter((c): c is Node => c !== null);

function decodePython(node: Node, source: string, out: TextMapBuilder): void {
  if (node.type === 'concatenated_string') {
    for (const c of childrenOf(node)) if (c.type === 'string') decodePython(c, source, out);
    return;
  }
  const kids = childrenOf(node);
  const open = kids.find((c) => c.type === 'string_start'),
    close = kids.find((c) => c.type === 'string_end');
  if (!open || !close) return;
  const prefix = open.text.replace(/["']/g, '').toLowerCase();
  const style: EscapeStyle = prefix.includes('r') ? 'verbatim' : prefix.includes('b') ? 'python-bytes' : 'python';
  const holes = kids.filter((c) => c.type === 'interpolation');
  const braces = prefix.includes('f') || prefix.includes('t');
  emit(out, source, around(open.endIndex, close.startIndex, holes), style, {
    doubledBraces: braces,
    normalizeNewlines: true,
  });
}

function decodeJs(node: Node, source: string, out: TextMapBuilder): void {
  const holes = childrenOf(node).filter((c) => c.type === 'template_substitution');
  const template = node.type === 'template_string';
  emit(out, source, around(node.startIndex + 1, node.endIndex - 1, holes), 'js', { normalizeNewlines: template });
}

/** C# raw strings: no escapes; a multi-line one drops its first and last line breaks and the closing indentation. */
function decodeCsharpRaw(source: string, start: number, end: number, out: TextMapBuilder): void {
  const content = source.slice(start, end);
  const firstBreak = /^[ \t]*\r?\n/.exec(content);
  const lastLine = /\r?\n([ \t]*)$/.exec(content);
  if (!firstBreak || !lastLine) {
    out.verbatim(content, start);
    return;
  }
  const indent = lastLine[1]!;
  const bodyStart = start + firstBreak[0].length,
    bodyEnd = end - lastLine[0].length;
  let lineStart = bodyStart;
  while (lineStart <= bodyEnd) {
    let lineEnd = source.indexOf('\n', lineStart);
    if (lineEnd < 0 || lineEnd > bodyEnd) lineEnd = bodyEnd;
    const skip = source.startsWith(indent, lineStart) ? indent.length : 0;
    out.verbatim(source.slice(lineStart + skip, lineEnd), lineStart + skip);
    if (lineEnd < bodyEnd) out.verbatim('\n', lineEnd);
    lineStart = lineEnd + 1;
  }
}

function decodeCsharp(node: Node, source: string, out: TextMapBuilder): void {
  const kids = childrenOf(node);
  switch (node.type) {
    case 'string_literal': {
      const quotes = kids.filter((c) => c.type === '"');
      if (quotes.length < 2) return;
      decodeInto(out, source, quotes[0]!.endIndex, quotes[quotes.length - 1]!.startIndex, 'csharp');
      return;
    }
    case 'verbatim_string_literal':
      decodeInto(out, source, node.startIndex + 2, node.endIndex - 1, 'csharp-verbatim');
      return;
    case 'raw_string_literal': {
      const open = kids.find((c) => c.type === 'raw_string_start'),
        close = kids.find((c) => c.type === 'raw_string_end');
      if (open && close) decodeCsharpRaw(source, open.endIndex, close.startIndex, out);
      return;
    }
    case 'interpolated_string_expression': {
      const start = kids.find((c) => c.type === 'interpolation_start');
      const quotes = kids.filter((c) => c.type === '"' || c.type === 'interpolation_quote');
      if (!start || quotes.length < 2) return;
      const from = quotes[0]!.endIndex,
        to = quotes[quotes.length - 1]!.startIndex;
      if (quotes[0]!.text.length >= 3) {
        // Raw and interpolated: the placeholders are part of the text kept as written.
        decodeCsharpRaw(source, from, to, out);
        return;
      }
      const holes = kids.filter((c) => c.type === 'interpolation');
      const style: EscapeStyle = start.text.includes('@') ? 'csharp-verbatim' : 'csharp';
      emit(out, source, around(from, to, holes), style, { doubledBraces: true });
      return;
    }
  }
}

/** YAML block scalars (`|`, `>`, with chomping and indentation indicators), line by line. */
function decodeYamlBlock(node: Node, source: string, out: TextMapBuilder): void {
  const headerEnd = source.indexOf('\n', node.startIndex);
  if (headerEnd < 0 || headerEnd >= node.endIndex) return;
  const header = source.slice(node.startIndex, headerEnd).replace(/\s+#.*$/, '');
  const folded = header.startsWith('>');
  const chomp = header.includes('-') ? 'strip' : header.includes('+') ? 'keep' : 'clip';
  const explicit = /[1-9]/.exec(header);
  const lines: { start: number; end: number; breakAt: number }[] = [];
  for (let at = headerEnd + 1; at <= node.endIndex;) {
    let end = source.indexOf('\n', at);
    if (end < 0) end = source.length;
    const lineEnd = end > at && source[end - 1] === '\r' ? end - 1 : end;
    lines.push({ start: at, end: Math.min(lineEnd, node.endIndex), breakAt: end < source.length ? lineEnd : -1 });
    at = end + 1;
  }
  const blank = (l: { start: number; end: number }) => source.slice(l.start, l.end).trim() === '';
  const firstText = lines.find((l) => !blank(l));
  if (!firstText) return;
  const indent = explicit ? Number(explicit[0]) : /^ */.exec(source.slice(firstText.start, firstText.end))![0].length;
  let last = lines.length - 1;
  while (last >= 0 && blank(lines[last]!)) last--;
  const breakOf = (l: { breakAt: number }, value: string) => {
    if (l.breakAt >= 0) out.decoded(value, l.breakAt, source[l.breakAt] === '\r' ? l.breakAt + 2 : l.breakAt + 1);
    else out.unmapped(value);
  };
  for (let k = 0; k <= last; k++) {
    const l = lines[k]!;
    const from = Math.min(l.start + indent, l.end);
    out.verbatim(source.slice(from, l.end), from);
    if (k === last) {
      if (chomp !== 'strip') breakOf(l, '\n');
      break;
    }
    const next = lines[k + 1]!;
    const moreIndented = (x: { start: number; end: number }) => /^[ \t]/.test(source.slice(x.start + indent, x.end));
    // Folding joins two text lines with a space; an empty or more-indented line keeps its line break.
    const fold = folded && !blank(l) && !moreIndented(l) && (blank(next) || !moreIndented(next));
    // Before empty lines the break itself is dropped: the empty lines' breaks are the newlines.
    if (fold && blank(next)) continue;
    breakOf(l, fold ? ' ' : '\n');
  }
}

function decodeYaml(node: Node, source: string, out: TextMapBuilder): void {
  switch (node.type) {
    case 'block_scalar':
      decodeYamlBlock(node, source, out);
      return;
    case 'double_quote_scalar':
      decodeYamlFlow(out, source, node.startIndex + 1, node.endIndex - 1, 'yaml-double');
      return;
    case 'single_quote_scalar':
      decodeYamlFlow(out, source, node.startIndex + 1, node.endIndex - 1, 'yaml-single');
      return;
    default:
      decodeYamlFlow(out, source, node.startIndex, node.endIndex, 'verbatim');
  }
}

/**
 * A YAML flow scalar (quoted or plain) over several lines, folded as YAML does: a line break between two text lines,
 * with the whitespace around it, is one space; each empty line between them is a line break; in double quotes an
 * escaped line break joins the lines with nothing (decodeInto's line continuation).
 */
function decodeYamlFlow(
  out: TextMapBuilder,
  source: string,
  start: number,
  end: number,
  style: 'yaml-double' | 'yaml-single' | 'verbatim',
): void {
  const lines: { from: number; to: number; breakEnd: number }[] = [];
  for (let at = start; ;) {
    const nl = source.indexOf('\n', at);
    if (nl < 0 || nl >= end) {
      lines.push({ from: at, to: end, breakEnd: end });
      break;
    }
    lines.push({ from: at, to: nl > at && source[nl - 1] === '\r' ? nl - 1 : nl, breakEnd: nl + 1 });
    at = nl + 1;
  }
  if (lines.length === 1) {
    decodeInto(out, source, start, end, style);
    return;
  }
  const escapedBreak = (l: { from: number; to: number }) =>
    style === 'yaml-double' && /(^|[^\\])(\\\\)*\\$/.test(source.slice(l.from, l.to));
  let pendingBreak: { at: number; end: number } | undefined;
  let joined = false;
  for (const [k, l] of lines.entries()) {
    let from = l.from,
      to = l.to;
    if (k > 0) while (from < to && (source[from] === ' ' || source[from] === '\t')) from++;
    // Trailing whitespace goes with the fold, unless escaped (`\ ` in double quotes keeps its space).
    if (k < lines.length - 1 && !escapedBreak(l))
      while (to > from && (source[to - 1] === ' ' || source[to - 1] === '\t') && source[to - 2] !== '\\') to--;
    if (from === to && k > 0 && k < lines.length - 1) {
      out.decoded('\n', l.to, l.breakEnd); // an empty line: a line break
      pendingBreak = undefined;
      continue;
    }
    if (pendingBreak && !joined) out.decoded(' ', pendingBreak.at, pendingBreak.end);
    joined = escapedBreak(l);
    // An escaped break: the backslash and the break decode to nothing; decodeInto sees `\` + break together.
    decodeInto(out, source, from, joined ? l.breakEnd : to, style, { normalizeNewlines: true });
    pendingBreak = { at: to, end: l.breakEnd };
  }
}

/** A string node of `grammar` decoded; undefined when `node` is not one. */
export function decodeLiteral(node: Node, source: string, grammar: Grammar): DecodedLiteral | undefined {
  if (!STRING_TYPES[grammar].includes(node.type)) return undefined;
  const out = new TextMapBuilder();
  switch (grammar) {
    case 'python':
      decodePython(node, source, out);
      break;
    case 'javascript':
    case 'typescript':
    case 'tsx':
      decodeJs(node, source, out);
      break;
    case 'csharp':
      decodeCsharp(node, source, out);
      break;
    case 'json':
      decodeInto(out, source, node.startIndex + 1, node.endIndex - 1, 'json');
      break;
    case 'yaml':
      decodeYaml(node, source, out);
      break;
  }
  return { ...out.build(), start: node.startIndex, end: node.endIndex };
}

/** The literal around `offset` (the outermost of adjacent Python literals), or undefined. */
export function literalAt(root: Node, source: string, grammar: Grammar, offset: number): DecodedLiteral | undefined {
  let node: Node | null = root.descendantForIndex(offset, offset);
  let found: Node | undefined;
  for (; node; node = node.parent) {
    if (!STRING_TYPES[grammar].includes(node.type)) continue;
    found = node;
    // Python's adjacent literals make one value; a template's nested literal is the innermost on purpose.
    if (grammar === 'python' && node.parent?.type === 'concatenated_string') found = node.parent;
    break;
  }
  return found ? decodeLiteral(found, source, grammar) : undefined;
}

export interface ChatLiteralMessage {
  role: string;
  content: DecodedLiteral;
}

/** A list of `{role, content}` messages in code or data; `start`/`end` is the list in the document. */
export interface ChatLiteral {
  messages: ChatLiteralMessage[];
  start: number;
  end: number;
}

const LIST_TYPES: Record<Grammar, readonly string[]> = {
  python: ['list', 'tuple'],
  javascript: ['array'],
  typescript: ['array'],
  tsx: ['array'],
  csharp: [],
  json: ['array'],
  yaml: ['block_sequence', 'flow_sequence'],
};

/** The first string node in `node` (itself included): a value wrapped in YAML's flow/block nodes. */
function stringIn(node: Node, grammar: Grammar): Node | undefined {
  if (STRING_TYPES[grammar].includes(node.type)) return node;
  for (const c of node.namedChildren) {
    if (!c) continue;
    const s = stringIn(c, grammar);
    if (s) return s;
  }
  return undefined;
}

/** The key → value pairs of a mapping node (dict, object, YAML mapping), keys decoded. */
function pairsOf(node: Node, source: string, grammar: Grammar): Map<string, Node> | undefined {
  let mapping: Node | undefined = node;
  if (grammar === 'yaml') {
    mapping = node.namedChildren.find((c) => c?.type === 'block_mapping' || c?.type === 'flow_mapping') ?? undefined;
  }
  if (!mapping || !['dictionary', 'object', 'block_mapping', 'flow_mapping'].includes(mapping.type)) return undefined;
  const pairs = new Map<string, Node>();
  for (const p of mapping.namedChildren) {
    if (!p || !['pair', 'block_mapping_pair', 'flow_pair'].includes(p.type)) continue;
    const key = p.childForFieldName('key'),
      value = p.childForFieldName('value');
    if (!key || !value) continue;
    const keyLiteral = stringIn(key, grammar);
    const name = keyLiteral ? decodeLiteral(keyLiteral, source, grammar)!.text : key.text;
    pairs.set(name, value);
  }
  return pairs;
}

function messagesOf(list: Node, source: string, grammar: Grammar): ChatLiteralMessage[] | undefined {
  const items = list.namedChildren.filter((c): c is Node => !!c && c.type !== 'comment');
  if (items.length === 0) return undefined;
  const messages: ChatLiteralMessage[] = [];
  for (const item of items) {
    const pairs = pairsOf(grammar === 'yaml' ? (item.namedChildren[0] ?? item) : item, source, grammar);
    const role = pairs?.get('role'),
      content = pairs?.get('content');
    const roleNode = role && stringIn(role, grammar),
      contentNode = content && stringIn(content, grammar);
    if (!roleNode || !contentNode) return undefined;
    messages.push({
      role: decodeLiteral(roleNode, source, grammar)!.text,
      content: decodeLiteral(contentNode, source, grammar)!,
    });
  }
  return messages;
}

/** The innermost list of chat messages around `offset`; with `anywhere`, the document's first one otherwise. */
export function chatAt(
  root: Node,
  source: string,
  grammar: Grammar,
  offset: number,
  anywhere = false,
): ChatLiteral | undefined {
  for (let node: Node | null = root.descendantForIndex(offset, offset); node; node = node.parent) {
    if (!LIST_TYPES[grammar].includes(node.type)) continue;
    const messages = messagesOf(node, source, grammar);
    if (messages) return { messages, start: node.startIndex, end: node.endIndex };
  }
  if (!anywhere) return undefined;
  const queue: Node[] = [root];
  while (queue.length > 0) {
    const node = queue.shift()!;
    if (LIST_TYPES[grammar].includes(node.type)) {
      const messages = messagesOf(node, source, grammar);
      if (messages) return { messages, start: node.startIndex, end: node.endIndex };
    }
    for (const c of node.namedChildren) if (c) queue.push(c);
  }
  return undefined;
}

/** A prompt of a file for the CodeLens: a chat messages list, or a string literal long enough to be a prompt. */
export interface PromptSite {
  kind: 'chat' | 'text';
  start: number;
  end: number;
}

/**
 * The prompts of a parsed file, in document order: every chat messages list, and every string literal outside them
 * whose value holds a line break or at least `minLength` characters (names, keys and short labels are not prompts).
 */
export function promptSites(root: Node, source: string, grammar: Grammar, minLength = 40): PromptSite[] {
  const out: PromptSite[] = [];
  const stack: Node[] = [root];
  while (stack.length > 0) {
    const node = stack.pop()!;
    if (LIST_TYPES[grammar].includes(node.type) && messagesOf(node, source, grammar)) {
      out.push({ kind: 'chat', start: node.startIndex, end: node.endIndex });
      continue;
    }
    if (STRING_TYPES[grammar].includes(node.type)) {
      const value = decodeLiteral(node, source, grammar)?.text ?? '';
      if (value.length >= minLength || value.trim().includes('\n'))
        out.push({ kind: 'text', start: node.startIndex, end: node.endIndex });
      continue; // Python's adjacent literals are one value: the parts are not prompts of their own
    }
    for (let i = node.namedChildCount - 1; i >= 0; i--) {
      const c = node.namedChild(i);
      if (c) stack.push(c);
    }
  }
  return out;
}
