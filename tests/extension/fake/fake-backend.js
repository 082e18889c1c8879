#!/usr/bin/env node
// A stand-in for the .NET backend, for UNIT tests of the client only (tests of the real product use
// the real backend). Speaks JSON-RPC over stdio with LSP framing and answers from recordings of the
// REAL backend (fixtures/fake-answers.json, made by record-answers.cjs and type-checked against the
// generated protocol types by unit/protocol.test.cjs). A request that was not recorded is an error.
// Two behaviours of its own, for the process tests: an analyze text containing "SLOW" is answered
// after 5 s and honours $/cancelRequest; "CRASH" makes the process exit with code 3. An analyze recorded with a
// workDoneToken replays the $/progress notifications the real backend sent.
'use strict';
const path = require('node:path');
const rpc = require(path.join(__dirname, '../../../extension/node_modules/vscode-jsonrpc/lib/node/main.js'));
const { answerKey, loadAnswers } = require('./answers.cjs');

const conn = rpc.createMessageConnection(
  new rpc.StreamMessageReader(process.stdin), new rpc.StreamMessageWriter(process.stdout));
const answers = loadAnswers();
const NOT_RECORDED = -32603;

function answer(method, params) {
  // The handshake's params name the client; every client gets the recorded handshake.
  const recorded = answers.get(answerKey(method, method === 'initialize' ? {} : params));
  if (!recorded) throw new rpc.ResponseError(NOT_RECORDED, `fake backend: not recorded: ${answerKey(method, params)}`);
  if (recorded.error) throw new rpc.ResponseError(recorded.error.code, recorded.error.message);
  return recorded.result;
}

async function analyze(params, token) {
  const text = typeof params?.text === 'string' ? params.text : '';
  if (text.includes('CRASH')) {
    process.stderr.write('Unhandled exception: System.Exception: boom\n   at Fake.Analyze()\n');
    process.exit(3);
  }
  if (text.includes('SLOW')) {
    for (let i = 0; i < 50; i++) {
      if (token.isCancellationRequested) throw new rpc.ResponseError(-32800, 'cancelled');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const result = answer('attention/analyze', params);
  // The $/progress values the real backend reported for this request (record-answers.cjs), under the client's token.
  const recorded = answers.get(answerKey('attention/analyze', params));
  for (const value of recorded?.progress ?? []) await conn.sendNotification('$/progress', { token: params.workDoneToken, value });
  return result;
}

// vscode-jsonrpc hands over positional params as an array; the backend's methods take one object or none.
conn.onRequest((method, params, token) => {
  const single = Array.isArray(params) ? params[0] : params;
  return method === 'attention/analyze' ? analyze(single, token) : answer(method, single);
});
conn.onNotification('exit', () => process.exit(0));
conn.onClose(() => process.exit(0));
conn.listen();
process.stderr.write('fake backend listening on stdio\n');
