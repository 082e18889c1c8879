// The fake backend's recorded answers (fixtures/fake-answers.json, written by record-answers.cjs from the
// REAL backend), looked up by method and params.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const file = path.join(__dirname, '../fixtures/fake-answers.json');

/** `method {params with sorted keys}`: the same request always gives the same key. */
function answerKey(method, params) {
  const sorted = params && typeof params === 'object' && !Array.isArray(params)
    ? Object.fromEntries(Object.entries(params).sort(([a], [b]) => (a < b ? -1 : 1)))
    : params ?? null;
  return `${method} ${JSON.stringify(sorted)}`;
}

function loadAnswers() {
  const { answers } = JSON.parse(fs.readFileSync(file, 'utf8'));
  return new Map(answers.map((a) => [answerKey(a.method, a.params), a]));
}

module.exports = { file, answerKey, loadAnswers };
