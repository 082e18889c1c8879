const test = require('node:test');
const assert = require('node:assert/strict');
const { messages, html } = require('./lib.cjs');

const parse = messages.parseWebviewMessage;

test('valid webview messages pass, with only known fields', () => {
  assert.deepEqual(parse({ type: 'ready', extra: 1 }), { type: 'ready' });
  assert.equal(parse({ type: 'requestMatrix', requestId: 3, analysisId: 'x', layer: -1, head: 11 }), undefined,
    'matrices come through rpc attention/view');
  assert.deepEqual(parse({ type: 'hoverToken', token: null }), { type: 'hoverToken', token: null });
  assert.deepEqual(parse({ type: 'hoverSection', index: 2, x: 1 }), { type: 'hoverSection', index: 2 });
  assert.deepEqual(parse({ type: 'hoverSection', index: null }), { type: 'hoverSection', index: null });
  assert.deepEqual(parse({ type: 'viewChanged', layer: 0, head: 0, view: 'head', hideSpecial: false, wordLevel: false, tab: 'diff' }).tab, 'diff');
  assert.equal(parse({ type: 'viewChanged', layer: 0, head: 0, view: 'head', hideSpecial: false, wordLevel: false, tab: '<b>' }).tab, undefined);
  assert.deepEqual(parse({ type: 'viewChanged', layer: 0, head: -1, view: 'grid', hideSpecial: true, wordLevel: false }), { type: 'viewChanged', layer: 0, head: -1, view: 'grid', hideSpecial: true, wordLevel: false });
  assert.deepEqual(parse({ type: 'cancelRpc', requestId: 7, extra: 'x' }), { type: 'cancelRpc', requestId: 7 });
  assert.deepEqual(parse({ type: 'rpc', requestId: 8, method: 'attention/flow', params: { analysisId: 'a', token: 3 } }), { type: 'rpc', requestId: 8, method: 'attention/flow', params: { analysisId: 'a', token: 3 } });
  assert.equal(parse({ type: 'log', message: 'x'.repeat(5000) }).message.length, 2000);
});

test('malformed or hostile webview messages are dropped', () => {
  for (const m of [null, 42, 'ready', [], {}, { type: 'nope' },
    { type: 'viewChanged', layer: -2, head: 0, view: 'head', hideSpecial: false, wordLevel: false },
    { type: 'viewChanged', layer: 0, head: 1.5, view: 'head', hideSpecial: false, wordLevel: false },
    { type: 'hoverToken', token: -1 },
    { type: 'hoverSection', index: -1 },
    { type: 'hoverSection', index: '1' },
    { type: 'viewChanged', layer: 0, head: 0, view: 'evil' },
    { type: 'viewChanged', layer: 0, head: 0, view: 'head' }, // without its view options
    { type: 'viewChanged', layer: 0, head: 0, view: 'head', hideSpecial: 'yes', wordLevel: false },
    { type: 'cancelRpc', requestId: '1' },
    { type: 'cancelRpc' },
    { type: 'rpc', requestId: 1, method: 'attention/analyze', params: { analysisId: 'a', text: 'x' } },
    { type: 'png', requestId: 1, dataUrl: 'data:image/png;base64,AAAA' }, // the canvas export is gone
  ]) assert.equal(parse(m), undefined, JSON.stringify(m));
});

test('host messages: a matrix answer must carry exactly rows×cols float32 bytes', () => {
  const result = { rows: 2, cols: 2, layer: 0, head: 0, pooled: false, poolFactor: 1, units: [] };
  const ok = { type: 'rpcResult', requestId: 1, result, data: new ArrayBuffer(16) };
  assert.ok(messages.isHostMessage(ok));
  assert.ok(!messages.isHostMessage({ ...ok, data: new ArrayBuffer(12) }));
  assert.ok(!messages.isHostMessage({ ...ok, data: [1, 2, 3, 4] }), 'no JSON number arrays');
  assert.ok(!messages.isHostMessage({ ...ok, result: { q: 1 } }), 'data without its shape');
  const oldMatrix = { type: 'matrix', requestId: 1, ...result, data: new ArrayBuffer(16) };
  assert.ok(!messages.isHostMessage(oldMatrix), 'one path: rpcResult');
  assert.ok(messages.isHostMessage({ type: 'highlightToken', token: null }));
  assert.ok(!messages.isHostMessage({ type: 'other' }));
});

test('panel HTML: strict CSP with a fresh nonce, no inline script without it', () => {
  const n1 = html.makeNonce(), n2 = html.makeNonce();
  assert.notEqual(n1, n2);
  assert.match(n1, /^[A-Za-z0-9_-]{24}$/);
  const page = html.panelHtml({ cspSource: 'https://res.test', scriptUri: 'https://res.test/w.js', styleUri: 'https://res.test/p.css', nonce: n1 });
  const csp = /http-equiv="Content-Security-Policy" content="([^"]+)"/.exec(page)[1];
  assert.match(csp, /^default-src 'none'/);
  assert.match(csp, new RegExp(`script-src 'nonce-${n1}'`));
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
  const scripts = page.match(/<script[^>]*>/g);
  assert.equal(scripts.length, 1);
  assert.match(scripts[0], new RegExp(`nonce="${n1}"`));
  assert.deepEqual(page.match(/\sid="[^"]*"/g), [' id="app"'], 'one root: each tab builds its own elements');
  const evil = html.panelHtml({ cspSource: 'x', scriptUri: '"><script>alert(1)</script>', styleUri: 's', nonce: n1 });
  assert.equal(evil.match(/<script/g).length, 1, 'URIs are attribute-escaped');
});

test('rpc messages: only the analysis methods, an analysisId and scalar params pass', () => {
  assert.deepEqual(parse({ type: 'rpc', requestId: 1, method: 'attention/metrics', params: { analysisId: 'a1' } }),
    { type: 'rpc', requestId: 1, method: 'attention/metrics', params: { analysisId: 'a1' } });
  assert.deepEqual(parse({ type: 'rpc', requestId: 2, method: 'attention/view', params: { analysisId: 'a1', layer: 0, head: 0, hideSpecial: true } }).params,
    { analysisId: 'a1', layer: 0, head: 0, hideSpecial: true });
  assert.equal(parse({ type: 'rpc', requestId: 3, method: 'shutdown', params: { analysisId: 'a1' } }), undefined);
  assert.equal(parse({ type: 'rpc', requestId: 3, method: 'attention/analyze', params: { analysisId: 'a1' } }), undefined);
  assert.equal(parse({ type: 'rpc', requestId: 4, method: 'attention/metrics', params: {} }), undefined);
  assert.equal(parse({ type: 'rpc', requestId: 5, method: 'attention/view', params: { analysisId: 'a1', path: { x: 1 } } }), undefined);
  assert.equal(parse({ type: 'rpc', requestId: 'x', method: 'attention/metrics', params: { analysisId: 'a1' } }), undefined);
  // A zoomed window: [start, end) pairs of integers pass (the backend checks the values); nothing else array-like.
  const win = { analysisId: 'a1', layer: 0, head: 0, rowRange: [100, 164], colRange: [0, 64], maxSize: 256 };
  assert.deepEqual(parse({ type: 'rpc', requestId: 6, method: 'attention/view', params: win }).params, win);
  for (const bad of [[1], [1, 2, 3], [1.5, 2], ['1', 2], [[1], 2]])
    assert.equal(parse({ type: 'rpc', requestId: 7, method: 'attention/view', params: { analysisId: 'a1', rowRange: bad } }), undefined, JSON.stringify(bad));
  // attention/sections: named ranges (rebuilt with their own fields) and a query range; nothing else object-like.
  const sections = [{ name: 'system 1', start: 0, end: 12, extra: 'dropped' }, { name: 'user 2', start: 12, end: 40 }];
  const sp = parse({ type: 'rpc', requestId: 9, method: 'attention/sections', params: { analysisId: 'a1', sections, query: { start: 12, end: 40, x: 1 }, layer: -1 } }).params;
  assert.deepEqual(sp, { analysisId: 'a1', sections: [{ name: 'system 1', start: 0, end: 12 }, { name: 'user 2', start: 12, end: 40 }], query: { start: 12, end: 40 }, layer: -1 });
  for (const bad of [[{ name: 1, start: 0, end: 1 }], [{ name: 'a', start: '0', end: 1 }], [{ name: 'a', start: 0 }], 'x', Array.from({ length: 1001 }, () => ({ name: 'a', start: 0, end: 1 }))])
    assert.equal(parse({ type: 'rpc', requestId: 10, method: 'attention/sections', params: { analysisId: 'a1', sections: bad } }), undefined, JSON.stringify(bad).slice(0, 80));
  assert.equal(parse({ type: 'rpc', requestId: 11, method: 'attention/sections', params: { analysisId: 'a1', sections: [], query: [1, 2, 3] } }), undefined);
  assert.equal(parse({ type: 'rpc', requestId: 12, method: 'attention/view', params: { analysisId: 'a1', query: { start: { x: 1 }, end: 2 } } }), undefined);
  assert.deepEqual(parse({ type: 'rpc', requestId: 8, method: 'attention/row', params: { analysisId: 'a1', layer: 0, head: 0, token: 3, direction: 'from' } }).method, 'attention/row');
  assert.ok(messages.isHostMessage({ type: 'rpcResult', requestId: 1, result: { q: 1 } }));
  const oneValue = { type: 'rpcResult', requestId: 1, result: { rows: 1, cols: 1 }, data: new ArrayBuffer(4) };
  assert.ok(messages.isHostMessage(oneValue));
  assert.ok(!messages.isHostMessage({ type: 'rpcResult', requestId: 1, result: [] }));
  assert.ok(messages.isHostMessage({ type: 'rpcError', requestId: 1, message: 'gone' }));
});
