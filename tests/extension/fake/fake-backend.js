#!/usr/bin/env node
// A stand-in for the .NET backend, for UNIT tests of the client only (tests of the real product use
// the real backend). Speaks the same JSON-RPC contract over stdio with LSP framing. Its attention
// numbers are synthetic (a softmax of a fixed per-head pattern), not a model's.
// Magic texts: containing "SLOW" → analyze takes 5 s and honours $/cancelRequest; "CRASH" → exit(3).
'use strict';
const path = require('node:path');
const rpc = require(path.join(__dirname, '../../../extension/node_modules/vscode-jsonrpc/lib/node/main.js'));

const conn = rpc.createMessageConnection(new rpc.StreamMessageReader(process.stdin), new rpc.StreamMessageWriter(process.stdout));
const LAYERS = 2, HEADS = 3, WINDOW = 512;
const analyses = new Map();
let next = 1;

function tokenize(text, maxTokens) {
  const toks = [{ id: 101, text: '[CLS]', start: 0, end: 0, special: true }];
  const re = /[A-Za-z0-9]+|[^\sA-Za-z0-9]/gu; // words, single symbols (a surrogate pair is one symbol)
  let m, truncatedAt;
  while ((m = re.exec(text))) {
    if (toks.length >= maxTokens - 1) { truncatedAt = m.index; break; }
    toks.push({ id: 1000 + toks.length, text: m[0].toLowerCase(), start: m.index, end: m.index + m[0].length, special: false });
  }
  toks.push({ id: 102, text: '[SEP]', start: 0, end: 0, special: true });
  return { toks, truncatedAt };
}

function attention(n, layer, head) {
  const a = new Float32Array(n * n);
  for (let i = 0; i < n; i++) {
    let sum = 0;
    for (let j = 0; j < n; j++) {
      const target = (i + head - 1 + n) % n; // head 0: previous token, 1: self, 2: next
      const logit = (j === target ? 3 : 0) + (j === 0 ? 1 + layer : 0) - 0.1 * Math.abs(i - j);
      a[i * n + j] = Math.exp(logit); sum += a[i * n + j];
    }
    for (let j = 0; j < n; j++) a[i * n + j] /= sum;
  }
  return a;
}

function matrixOf(an, layer, head) {
  const n = an.tokens.length;
  if (layer === -1 || head === -1) {
    const out = new Float32Array(n * n);
    const ls = layer === -1 ? [...Array(LAYERS).keys()] : [layer];
    const hs = head === -1 ? [...Array(HEADS).keys()] : [head];
    for (const l of ls) for (const h of hs) { const m = attention(n, l, h); for (let k = 0; k < out.length; k++) out[k] += m[k] / (ls.length * hs.length); }
    return out;
  }
  return attention(n, layer, head);
}

function check(an, layer, head) {
  if (!an) throw new rpc.ResponseError(-32602, 'unknown analysisId');
  if (!Number.isInteger(layer) || layer < -1 || layer >= LAYERS) throw new rpc.ResponseError(-32602, `layer ${layer} out of range`);
  if (!Number.isInteger(head) || head < -1 || head >= HEADS) throw new rpc.ResponseError(-32602, `head ${head} out of range`);
}

conn.onRequest('initialize', () => ({ serverVersion: '0.0.0-fake', protocolVersion: '1', defaultModel: 'default' }));
conn.onRequest('models/list', () => [{ id: 'default', name: 'fake (synthetic)', architecture: 'bert', layers: LAYERS, heads: HEADS, source: 'fake' }]);
conn.onRequest('attention/analyze', async (p, token) => {
  if (typeof p?.text !== 'string') throw new rpc.ResponseError(-32602, 'text is required');
  if (p.text.includes('CRASH')) { process.stderr.write('Unhandled exception: System.Exception: boom\n   at Fake.Analyze()\n'); process.exit(3); }
  if (p.text.includes('SLOW')) {
    for (let i = 0; i < 50; i++) {
      if (token.isCancellationRequested) throw new rpc.ResponseError(-32800, 'cancelled');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const t0 = Date.now();
  const { toks, truncatedAt } = tokenize(p.text, Math.min(WINDOW, p.maxTokens ?? WINDOW));
  const analysisId = `${process.pid.toString(36)}-${next++}`;
  analyses.set(analysisId, { tokens: toks });
  return {
    analysisId, model: { id: 'default', architecture: 'bert', layers: LAYERS, heads: HEADS, causal: false }, tokens: toks,
    truncated: truncatedAt !== undefined, ...(truncatedAt !== undefined ? { truncatedAt } : {}), elapsedMs: Date.now() - t0,
  };
});
conn.onRequest('attention/matrix', (p) => {
  const an = analyses.get(p.analysisId);
  check(an, p.layer, p.head);
  let n = an.tokens.length, data = matrixOf(an, p.layer, p.head), rows = n, factor = 1;
  if (p.maxSize && p.maxSize < n) {
    factor = Math.ceil(n / p.maxSize);
    rows = Math.ceil(n / factor);
    const out = new Float32Array(rows * rows);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
      const o = Math.floor(i / factor) * rows + Math.floor(j / factor);
      out[o] = Math.max(out[o], data[i * n + j]);
    }
    data = out;
  }
  return { rows, cols: rows, layer: p.layer, head: p.head, pooled: factor > 1, poolFactor: factor, data: Buffer.from(data.buffer).toString('base64') };
});
conn.onRequest('attention/row', (p) => {
  const an = analyses.get(p.analysisId);
  check(an, p.layer, p.head);
  const n = an.tokens.length;
  if (!Number.isInteger(p.token) || p.token < 0 || p.token >= n) throw new rpc.ResponseError(-32602, 'token out of range');
  const m = matrixOf(an, p.layer, p.head);
  const scores = [];
  for (let k = 0; k < n; k++) scores.push(p.direction === 'to' ? m[k * n + p.token] : m[p.token * n + k]);
  const top = scores.map((score, token) => ({ token, score })).sort((a, b) => b.score - a.score).slice(0, p.topK ?? 5);
  return { scores, top };
});
conn.onRequest('shutdown', () => null);
conn.onNotification('exit', () => process.exit(0));
conn.onClose(() => process.exit(0));
conn.listen();
process.stderr.write('fake backend listening on stdio\n');
