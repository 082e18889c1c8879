// The client's process handling against the fake backend (answers recorded from the real backend by
// fake/record-answers.cjs; the real process is exercised by the integration and e2e suites).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { backendProcess: bp, locate, matrix, protocol, fakeBackend } = require('./lib.cjs');

function start(extraHooks = {}) {
  const logs = [];
  const exits = [];
  const proc = new bp.BackendProcess({ command: process.execPath, args: [fakeBackend], env: process.env },
    { log: (l) => logs.push(l), onExit: (i) => exits.push(i), ...extraHooks });
  return { proc, logs, exits };
}

test('initialize, analyze, matrix (binary, pooled), row, shutdown/exit', async () => {
  const { proc, logs, exits } = start();
  const init = await proc.start('test');
  assert.equal(init.defaultModel, 'default');
  assert.equal(init.protocolVersion, '1.0', 'the recorded handshake, as the real backend answers it');
  const text = 'The cat 😀 sat.';
  const a = await proc.request(protocol.Methods.analyze, { text });
  assert.equal(a.tokens[0].special, true);
  const sat = a.tokens.find((t) => t.text === 'sat');
  assert.equal(text.slice(sat.start, sat.end), 'sat', 'UTF-16 offsets after an astral character');
  const m = await proc.request(protocol.Methods.matrix, { analysisId: a.analysisId, layer: 0, head: 1 });
  const data = matrix.decodeFloat32(m.data, m.rows * m.cols);
  for (let i = 0; i < m.rows; i++) {
    let s = 0; for (let j = 0; j < m.cols; j++) s += data[i * m.cols + j];
    assert.ok(Math.abs(s - 1) < 1e-5, `row ${i} sums to 1`);
  }
  const pooled = await proc.request(protocol.Methods.matrix, { analysisId: a.analysisId, layer: 0, head: 1, maxSize: 3 });
  assert.equal(pooled.pooled, true);
  const mine = matrix.maxPool(data, m.rows, m.cols, pooled.poolFactor);
  assert.deepEqual(matrix.decodeFloat32(pooled.data), mine.data, 'client pooling agrees with the server');
  const row = await proc.request(protocol.Methods.row, { analysisId: a.analysisId, layer: 0, head: 1, token: 2, direction: 'from', topK: 5 });
  assert.deepEqual(row.top, matrix.topK(row.scores, 5));
  await assert.rejects(proc.request(protocol.Methods.matrix, { analysisId: 'nope', layer: 0, head: 0 }), (e) => e.code === -32602);
  await assert.rejects(proc.request('no/such', {}), (e) => e.code === -32601);
  await proc.stop();
  assert.equal(proc.running, false);
  assert.deepEqual(exits, [{ code: 0, signal: null, expected: true }]);
  assert.ok(logs.some((l) => l.includes('fake backend listening')), 'stderr goes to the log');
});

test('cancelling a stale analyze sends $/cancelRequest and the server stays usable', async () => {
  const { proc } = start();
  await proc.start('test');
  const cts = new bp.CancellationTokenSource();
  const t0 = Date.now();
  const slow = proc.request(protocol.Methods.analyze, { text: 'SLOW text' }, cts.token);
  setTimeout(() => cts.cancel(), 200);
  await assert.rejects(slow, bp.CancelledError);
  assert.ok(Date.now() - t0 < 3000, 'cancelled long before the 5 s analysis would end');
  const a = await proc.request(protocol.Methods.analyze, { text: 'still alive' });
  assert.equal(a.tokens.length, 4);
  await proc.stop();
});

test('a crash is reported as unexpected exit, pending requests fail, stderr is logged', async () => {
  const { proc, exits, logs } = start();
  await proc.start('test');
  // In the product's words, not vscode-jsonrpc's "Pending response rejected since connection got disposed".
  await assert.rejects(proc.request(protocol.Methods.analyze, { text: 'CRASH now' }), (e) =>
    e.name === 'BackendStoppedError' && e.message === 'The backend stopped during the analysis and was restarted; run it again.');
  await proc.whenExited();
  assert.equal(exits.length, 1);
  assert.equal(exits[0].expected, false);
  assert.equal(exits[0].code, 3);
  assert.ok(logs.some((l) => l.includes('System.Exception: boom')));
  await assert.rejects(proc.request(protocol.Methods.analyze, { text: 'x' }), /not running/);
});

test('a backend that cannot start fails fast with a clear message', async () => {
  const proc = new bp.BackendProcess({ command: '/nonexistent/dotnet', args: [] }, { log: () => {}, onExit: () => {} });
  await assert.rejects(proc.start('test', 5000), /could not start \/nonexistent\/dotnet|exited during start/);
  const dead = new bp.BackendProcess({ command: process.execPath, args: ['-e', 'process.stderr.write("model load failed: bad path\\n"); process.exit(2)'] }, { log: () => {}, onExit: () => {} });
  await assert.rejects(dead.start('test', 5000), /exited during start.*model load failed/);
});

test('restart backoff doubles from 0.5 s and caps at 30 s', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 8].map(bp.restartDelay), [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
});

test('locate: setting, bundled folder, missing dotnet, JavaScript stand-in', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'avz-locate-'));
  const ext = path.join(dir, 'ext');
  fs.mkdirSync(path.join(ext, 'backend'), { recursive: true });
  fs.writeFileSync(path.join(ext, 'backend', locate.BACKEND_DLL), '');
  const fakeDotnet = path.join(dir, 'bin', 'dotnet');
  fs.mkdirSync(path.dirname(fakeDotnet));
  fs.writeFileSync(fakeDotnet, '#!/bin/sh\n', { mode: 0o755 });
  const env = { PATH: path.dirname(fakeDotnet), HOME: dir };
  const spec = locate.resolveBackend('', ext, env);
  assert.equal(spec.command, fakeDotnet);
  assert.deepEqual(spec.args, [path.join(ext, 'backend', locate.BACKEND_DLL), 'serve']);
  assert.equal(spec.env.OMP_WAIT_POLICY, 'PASSIVE');
  assert.throws(() => locate.resolveBackend(path.join(dir, 'missing'), ext, env), (e) => e.name === 'SetupError' && /backendPath/.test(e.hint));
  assert.throws(() => locate.resolveBackend('', ext, { PATH: '/nonexistent', HOME: dir }, []), (e) => e.name === 'SetupError' && /\.NET 10/.test(e.message) && /install/i.test(e.hint));
  assert.throws(() => locate.resolveBackend('', path.join(dir, 'empty'), env), (e) => e.name === 'SetupError' && /no backend/.test(e.message));
  const js = locate.resolveBackend(fakeBackend, ext, env);
  assert.equal(js.command, process.execPath);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('$/progress under a workDoneToken reaches that token\'s listener only, in order, until it is removed', async () => {
  const { proc } = start();
  await proc.start('test');
  const mine = [], other = [];
  const stop = proc.onProgress('recorded-token', (v) => mine.push(v));
  const stopOther = proc.onProgress('someone-else', (v) => other.push(v));
  // The recorded analyze (fake/record-answers.cjs): the fake replays what the real backend reported for it.
  await proc.request(protocol.Methods.analyze, { text: 'Progress, layer by layer.', workDoneToken: 'recorded-token' });
  stop(); stopOther();
  const recorded = require('../fixtures/fake-answers.json').answers.find((a) => a.progress).progress;
  assert.ok(recorded.length >= 2);
  assert.deepEqual(mine, recorded);
  assert.deepEqual([mine[0].kind, mine.at(-1).kind], ['begin', 'end']);
  assert.deepEqual(other, [], 'another token\'s listener hears nothing');
  await proc.stop();
});
