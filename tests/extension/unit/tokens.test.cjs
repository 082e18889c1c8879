const test = require('node:test');
const assert = require('node:assert/strict');
const { tokens } = require('./lib.cjs');

const tok = (text, start, end, special = false) => ({ id: 0, text, start, end, special });

// The display text itself is the backend's (Tokenization/TokenDisplay.cs, tested there); the client only draws it.
const shown = (text, display, flags = {}) => ({ text, display, continuation: false, leadingSpace: false, ...flags });
test('labels come from the backend\'s display text: continuation and leading-space flags, a lone space as ␣', () => {
  assert.deepEqual(tokens.displayToken(shown('##ing', 'ing', { continuation: true })),
    { label: 'ing', continuation: true, leadingSpace: false });
  assert.deepEqual(tokens.displayToken(shown('Ġhello', 'hello', { leadingSpace: true })),
    { label: 'hello', continuation: false, leadingSpace: true });
  assert.equal(tokens.tokenLabel(shown('Ċ', '\\n')), '\\n', 'an escape is shown as the backend wrote it');
  assert.equal(tokens.tokenLabel(shown('Ġ', '', { leadingSpace: true })), '␣');
  assert.equal(tokens.tokenLabel(shown('[CLS]', '[CLS]', { special: true })), '[CLS]');
  assert.equal(tokens.tokenLabel({ text: 'hel lo', display: 'hel lo' }), 'hel lo', 'a view unit has no flags');
  assert.equal(tokens.axisLabel(shown('##ization', 'ization', { continuation: true })), '·ization');
  assert.equal(tokens.axisLabel(shown('supercalifragilistic', 'supercalifragilistic'), 8), 'superca…');
});

test('tokenIndexAt maps UTF-16 offsets, including astral characters (surrogate pairs)', () => {
  // "hi 😀 there": 😀 is 2 UTF-16 units at [3,5)
  const text = 'hi 😀 there';
  assert.equal(text.slice(3, 5), '😀');
  const ts = [tok('[CLS]', 0, 0, true), tok('hi', 0, 2), tok('[UNK]', 3, 5), tok('there', 6, 11), tok('[SEP]', 0, 0, true)];
  assert.equal(tokens.tokenIndexAt(ts, 0), 1);
  assert.equal(tokens.tokenIndexAt(ts, 1), 1);
  assert.equal(tokens.tokenIndexAt(ts, 2), -1, 'the space belongs to no token');
  assert.equal(tokens.tokenIndexAt(ts, 3), 2);
  assert.equal(tokens.tokenIndexAt(ts, 4), 2, 'second half of the surrogate pair');
  assert.equal(tokens.tokenIndexAt(ts, 10), 3);
  assert.equal(tokens.tokenIndexAt(ts, 11), -1, 'end is exclusive');
  // Without specials the binary search path is taken.
  const plain = ts.slice(1, 4);
  for (let o = 0; o < 12; o++) {
    const expected = plain.findIndex((t) => o >= t.start && o < t.end);
    assert.equal(tokens.tokenIndexAt(plain, o), expected, `offset ${o}`);
  }
});

test('truncationSummary names the token and the character where the analysis stops', () => {
  const text = 'one two three four';
  const ts = [tok('[CLS]', 0, 0, true), tok('one', 0, 3), tok('two', 4, 7), tok('[SEP]', 0, 0, true)];
  const s = tokens.truncationSummary(ts, text, 8);
  assert.match(s, /after token 2/);
  assert.match(s, /character 8 of 18/);
  assert.match(s, /one two/);
  // Where the limit came from (issue #13 point 8): the setting at 4 on a 32,768-token window is not "the window holds 4".
  const setting = tokens.truncationSummary(ts, text, 8, tokens.truncationCause(4, 32_768));
  assert.match(setting, /^Truncated at 4 tokens by the attentionViz\.maxTokens setting \(4\); the model's window holds 32,768; analysis stops after token 2/);
  assert.doesNotMatch(setting, /window holds 4\b/);
  assert.match(tokens.truncationSummary(ts, text, 8, tokens.truncationCause(0, 512)), /^Truncated: the model's window holds 512 tokens;/);
  assert.match(tokens.truncationSummary(ts, text, 8, tokens.truncationCause(0, 131_072)), /^Truncated at the backend's maximum of 32,768 tokens \(the model's window holds 131,072\)/);
  assert.equal(tokens.truncationCause(600, 512).kind, 'window', 'a setting above the window: the window cut it');
});

test('segmentTokenIndexAt keeps the two texts of a sentence pair apart', () => {
  const ts = [
    { id: 101, text: '[CLS]', start: 0, end: 0, special: true, typeId: 0 },
    { id: 1, text: 'where', start: 0, end: 5, special: false, typeId: 0 },
    { id: 102, text: '[SEP]', start: 0, end: 0, special: true, typeId: 0 },
    { id: 2, text: 'here', start: 0, end: 4, special: false, typeId: 1 },
    { id: 102, text: '[SEP]', start: 0, end: 0, special: true, typeId: 1 },
  ];
  assert.equal(tokens.segmentTokenIndexAt(ts, 0, 2), 1);
  assert.equal(tokens.segmentTokenIndexAt(ts, 1, 2), 3);
  assert.equal(tokens.segmentTokenIndexAt(ts, 1, 4), -1);
});
