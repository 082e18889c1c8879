// A prompt's sections for the Sections tab (extension/src/shared/sections.ts): the user's pattern, else XML-style
// tags, else Markdown headings, else blank-line paragraphs. Sections tile the text, so only characterless tokens
// (BOS, template specials) fall outside every section.
const test = require('node:test');
const assert = require('node:assert/strict');
const { sections: s, textMap } = require('./lib.cjs');

/** Names and texts of the sections found. */
function found(text, pattern) {
  const r = s.findSections(text, pattern);
  if (!r) return undefined;
  // They tile the text: the first starts at 0, each ends where the next starts, the last at the end.
  assert.equal(r.sections[0].start, 0);
  r.sections.forEach((x, i) => assert.equal(x.end, i + 1 < r.sections.length ? r.sections[i + 1].start : text.length));
  return { rule: r.rule, parts: r.sections.map((x) => [x.name, text.slice(x.start, x.end)]) };
}

test('XML-style tags: each top-level element a section, text between them its own, nesting kept inside', () => {
  const text = 'You answer from the context.\n<context>\nA <b>bold</b> fact.\n<context>inner</context>\n</context>\n' +
    '<question>What is it?</question>\n';
  assert.deepEqual(found(text), {
    rule: 'tags',
    parts: [
      ['preamble', 'You answer from the context.\n'],
      ['context', '<context>\nA <b>bold</b> fact.\n<context>inner</context>\n</context>\n'],
      ['question', '<question>What is it?</question>\n'],
    ],
  });
  // Repeated names are numbered; text after the last element is a "text" section; an unclosed tag is no section.
  assert.deepEqual(found('<doc>a</doc><doc>b</doc> tail <open> no close').parts.map((p) => p[0]), ['doc', 'doc 2', 'text']);
});

test('Markdown headings (not inside fences), else blank-line paragraphs, else none', () => {
  const md = 'Intro line.\n\n# System\nBe brief.\n```\n# not a heading\n```\n## Context ##\nFacts.\n';
  assert.deepEqual(found(md), {
    rule: 'headings',
    parts: [['preamble', 'Intro line.\n\n'], ['System', '# System\nBe brief.\n```\n# not a heading\n```\n'], ['Context', '## Context ##\nFacts.\n']],
  });
  const paras = '\n  First paragraph here.\n\n \nSecond one, a bit longer than four words.\r\n\r\nThird.';
  assert.deepEqual(found(paras), {
    rule: 'paragraphs',
    parts: [['¶1 First paragraph here.', '\n  First paragraph here.\n\n \n'], ['¶2 Second one, a bit', 'Second one, a bit longer than four words.\r\n\r\n'], ['¶3 Third.', 'Third.']],
  });
  assert.equal(found('One paragraph, no structure.'), undefined);
  assert.equal(found(''), undefined);
});

test('a user pattern wins: its first group names each section; an invalid pattern throws', () => {
  const text = 'Preface.\n### Task: summarise\nDo it.\n### Task: translate\nAlso.';
  assert.deepEqual(found(text, '^### Task: (.+)$'), {
    rule: 'pattern',
    parts: [['preamble', 'Preface.\n'], ['summarise', '### Task: summarise\nDo it.\n'], ['translate', '### Task: translate\nAlso.']],
  });
  // Without a group the match names it; a pattern that matches nothing falls back to the built-in rules.
  assert.deepEqual(found('A: x\nB: y', '^[AB]:').parts.map((p) => p[0]), ['A:', 'B:']);
  assert.equal(found('<a>1</a><b>2</b>', 'nomatch').rule, 'tags');
  assert.throws(() => s.findSections('x', '(unclosed'), SyntaxError);
});

test('more sections than the backend takes: the rule is skipped', () => {
  const many = Array.from({ length: s.MAX_SECTIONS + 5 }, (_, i) => `para ${i}`).join('\n\n');
  assert.equal(found(many), undefined);
});

test('Git HEAD: an offset in the current text maps to the other version around the edit', () => {
  const now = 'a = "You are helpful."\nb = "Answer in French."\n';
  const head = 'a = "You are kind."\nb = "Answer in French."\n';
  const at = (t, needle) => t.indexOf(needle);
  assert.equal(textMap.offsetInOtherVersion(now, head, at(now, 'You')), at(head, 'You'), 'before the edit');
  assert.equal(textMap.offsetInOtherVersion(now, head, at(now, 'French')), at(head, 'French'), 'after the edit');
  assert.equal(textMap.offsetInOtherVersion(now, head, at(now, 'lpful')), at(head, 'kind'), 'inside it: where it starts');
  assert.equal(textMap.offsetInOtherVersion(now, now, 7), 7);
});

test('CodeLens words: each section\'s share of what reaches the sections (the sink left out), four named', () => {
  const r = { sink: 0.5, sections: [{ name: 'system', mass: 0.2 }, { name: 'context', mass: 0.25 }, { name: 'question', mass: 0.05 }] };
  const d = s.describeSections(412, r);
  assert.equal(d.title, 'AttentionViz: 412 tokens · system 40% · context 50% · question 10%');
  assert.match(d.tooltip, /50\.0% goes to special and template tokens/);
  const many = { sink: 0, sections: ['a', 'b', 'c', 'd', 'e', 'f'].map((name) => ({ name, mass: 1 / 6 })) };
  assert.equal(s.describeSections(9, many).title, 'AttentionViz: 9 tokens · a 17% · b 17% · c 17% · d 17% · +2 more');
  assert.equal(s.describeSections(9, undefined).title, 'AttentionViz: 9 tokens · inspect attention');
});

test('model names as people read them: the hub repo of a cache snapshot, else the folder, the embedded one by name', () => {
  const { modelDisplayName, EMBEDDED_MODEL_NAME } = require('./lib.cjs').modelName;
  assert.equal(modelDisplayName('/home/u/.cache/huggingface/hub/models--Qwen--Qwen2.5-0.5B-Instruct/snapshots/9f8e7d6c'), 'Qwen/Qwen2.5-0.5B-Instruct');
  assert.equal(modelDisplayName('/hub/models--HuggingFaceTB--SmolLM2-135M/snapshots/abc/'), 'HuggingFaceTB/SmolLM2-135M');
  assert.equal(modelDisplayName('/models/my-llama'), 'my-llama');
  assert.equal(modelDisplayName('/models/snapshots/x'), 'x', 'a folder named snapshots outside the hub layout');
  assert.equal(modelDisplayName('default'), EMBEDDED_MODEL_NAME);
  assert.equal(modelDisplayName(undefined), EMBEDDED_MODEL_NAME);
  // The table the backend's Models/ModelName.cs is held to as well (ModelNameTests): one rule on both sides.
  const table = require('../../reference/model-names/cases.json').cases;
  assert.ok(table.length >= 8);
  for (const { id, name } of table) assert.equal(modelDisplayName(id), name, id);
  assert.equal(modelDisplayName('/hub/models--gpt2/snapshots/607a30d'), 'gpt2', 'a repo without an organisation');
});

test('export file names: one scheme for PNG and CSV/JSON, the source file first (#13 point 10)', () => {
  const { exportFileName } = require('./lib.cjs').exportName;
  assert.equal(exportFileName('/w/q880.md', 'L2-H3', 'csv'), 'q880-attention-L2-H3.csv');
  assert.equal(exportFileName('/w/q880.md', 'L2-H3', 'png'), 'q880-attention-L2-H3.png');
  assert.equal(exportFileName('/w/q880.md', 'grid', 'png'), 'q880-attention-grid.png');
  assert.equal(exportFileName('Untitled-1', 'L0-H0', 'csv'), 'Untitled-1-attention-L0-H0.csv');
  assert.equal(exportFileName('/w/.env', 'L0-H0', 'csv'), 'selection-attention-L0-H0.csv');
});
