#!/usr/bin/env node
// Records, from the REAL backend (ATTENTIONVIZ_BACKEND_DIR or the repo's Release build), the answers the
// fake backend gives the unit tests (unit/backend.test.cjs), errors included, into fixtures/fake-answers.json.
// Re-run after a backend change: node tests/extension/fake/record-answers.cjs
'use strict';
const fs = require('node:fs');
const { realBackend } = require('../lib/backend.cjs');
const { backendProcess: bp, protocol } = require('../unit/lib.cjs');
const { file } = require('./answers.cjs');

// The texts unit/backend.test.cjs analyzes ("SLOW" only selects the fake's slow path).
const TEXTS = ['The cat 😀 sat.', 'still alive', 'SLOW text', 'x'];
/** Analyzed with a workDoneToken (a text of its own: a fresh forward, which reports progress). */
const PROGRESS_TEXT = 'Progress, layer by layer.';

(async () => {
  const spec = realBackend();
  if (!spec) throw new Error('real backend not built: run `dotnet build src/Backend -c Release`');
  const exits = [];
  const log = (line) => process.stderr.write(line + '\n');
  const proc = new bp.BackendProcess(spec, { log, onExit: (info) => exits.push(info) });
  const init = await proc.start('record-answers', 180_000);
  const answers = [{ method: protocol.Methods.initialize, params: {}, result: init }];
  const ask = async (method, params) => {
    try {
      const result = await proc.request(method, params);
      answers.push({ method, params, result });
      return result;
    } catch (e) {
      answers.push({ method, params, error: { code: e.code, message: e.message } });
      return undefined;
    }
  };
  const M = protocol.Methods;
  await ask(M.modelsList, {});
  for (const text of TEXTS) {
    const { analysisId } = await ask(M.analyze, { text });
    if (text !== TEXTS[0]) continue;
    await ask(M.matrix, { analysisId, layer: 0, head: 1 });
    await ask(M.matrix, { analysisId, layer: 0, head: 1, maxSize: 3 });
    await ask(M.row, { analysisId, layer: 0, head: 1, token: 2, direction: 'from', topK: 5 });
  }
  // An analyze with a workDoneToken: the $/progress values it reported are replayed by the fake before its answer.
  const progress = [];
  const stop = proc.onProgress('recorded-token', (v) => progress.push(v));
  await ask(M.analyze, { text: PROGRESS_TEXT, workDoneToken: 'recorded-token' });
  await new Promise((r) => setTimeout(r, 200)); // notifications are not awaited by the server's forward
  stop();
  answers.at(-1).progress = progress;
  // MiniLM reports begin and end (per-layer reports come from the decoders' forward).
  if (progress[0]?.kind !== 'begin' || progress.at(-1)?.kind !== 'end') throw new Error(`$/progress: ${JSON.stringify(progress)}`);
  await ask(M.matrix, { analysisId: 'nope', layer: 0, head: 0 });
  await ask('no/such', {});
  await ask(M.shutdown, undefined);
  await proc.stop();
  // shutdown then exit: code 0 (LSP), which also shows that the client's shutdown is accepted.
  if (exits[0]?.code !== 0) throw new Error(`the backend exited with ${exits[0]?.code} after shutdown and exit`);
  const recording = {
    recordedWith: `attentionviz-backend ${init.serverVersion} (real model)`,
    recordedBy: 'tests/extension/fake/record-answers.cjs',
    answers,
  };
  fs.writeFileSync(file, JSON.stringify(recording, null, 1) + '\n');
  console.log(`wrote ${file}: ${answers.length} answers`);
})().catch((e) => { console.error(e); process.exit(1); });
