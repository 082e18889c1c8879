// Extension-host integration: the built extension in a REAL VS Code extension host (code-server's
// bundled VS Code server + headless Chromium), against the REAL backend process.
import test from 'node:test';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';

const require = createRequire(import.meta.url);
const { runExtensionSuite } = require('../lib/vscodeServer.cjs');
const { realBackend } = require('../lib/backend.cjs');
const { writeLlamaTestModel, writeQwenTestModel } = require('../lib/llamaTestModel.cjs');
const { longPrompt } = await import('../lib/longPrompt.mjs');
const here = path.dirname(new URL(import.meta.url).pathname);
const extensionPath = path.resolve(here, '../../../extension');

const backend = realBackend();
let backendPath = backend?.dir;
if (!backendPath) {
  if (process.env.ATTENTIONVIZ_ALLOW_FAKE_BACKEND !== '1') throw new Error('the real backend is not built (dotnet build src/Backend -c Release)');
  backendPath = path.resolve(here, '../fake/fake-backend.js');
  console.log('# WARNING: using the FAKE backend (ATTENTIONVIZ_ALLOW_FAKE_BACKEND=1): numbers are synthetic');
}

const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'avz-ws-'));
fs.mkdirSync(path.join(workspace, '.vscode'));
fs.writeFileSync(path.join(workspace, '.vscode/settings.json'), JSON.stringify({
  'attentionViz.backendPath': backendPath,
  // Off but in the CodeLens test, so that background summaries do not interleave with the other tests' requests.
  'attentionViz.codeLens.enabled': false,
}, null, 2));
fs.writeFileSync(path.join(workspace, 'prompt.md'), [
  'The animal didn\'t cross the street because it was too tired, said the 😀 keeper.',
  '',
  'You are a helpful assistant. Answer in one sentence.',
  'def add(a, b): return a + b  # code is text too',
].join('\n') + '\n');
// The long-input test (issue #10): a Llama-shaped model with the real Llama-2 tokenizer.json and seeded random weights,
// and a prompt of about 3,000 tokens with its count from an independent tokenizer.
const tSetup = Date.now();
writeLlamaTestModel(path.join(workspace, 'llama-test-model'));
// Inspect Prompt at Cursor (issue #11): a prompt in Python code with escapes, and chat messages for Qwen's template.
writeQwenTestModel(path.join(workspace, 'qwen-test-model'));
// Select Model (#13 point 14): a Hugging Face cache holding one model, laid out as the hub lays it out (files in the
// snapshot are links), seen by the backend through HF_HUB_CACHE.
const hub = fs.mkdtempSync(path.join(os.tmpdir(), 'avz-hub-'));
const snapshot = path.join(hub, 'models--acme--tiny-llama', 'snapshots', '0123abcd');
fs.mkdirSync(snapshot, { recursive: true });
for (const f of fs.readdirSync(path.join(workspace, 'llama-test-model')))
  fs.symlinkSync(path.join(workspace, 'llama-test-model', f), path.join(snapshot, f));
process.env.HF_HUB_CACHE = hub;
fs.writeFileSync(path.join(workspace, 'prompt.py'), 'SYSTEM = """You are helpful.\\nAnswer briefly, in \\"one\\" line."""\n');
fs.writeFileSync(path.join(workspace, 'messages.json'), JSON.stringify({ messages: [
  { role: 'system', content: 'You are a terse assistant.\nAnswer in one line.' },
  { role: 'user', content: 'What is attention in a transformer?' },
] }, null, 2) + '\n');
// Sections and diffs (issue #11): a prompt file with XML-style sections, committed in a Git repository (Compare with
// Git HEAD reads it through VS Code's Git extension).
fs.writeFileSync(path.join(workspace, 'sections.prompt'), '<context>\nParis is the capital of France.\n</context>\n' +
  '<question>What is the capital of France?</question>\n');
fs.writeFileSync(path.join(workspace, '.gitignore'), '*\n!sections.prompt\n!.gitignore\n');
const git = (...args) => execFileSync('git', ['-c', 'user.name=AttentionViz tests', '-c', 'user.email=tests@attentionviz.invalid', ...args], { cwd: workspace });
git('init', '-q');
git('add', 'sections.prompt', '.gitignore');
git('commit', '-q', '-m', 'the prompt');
const long = await longPrompt(3000);
fs.writeFileSync(path.join(workspace, 'long-prompt.md'), long.text);
fs.writeFileSync(path.join(workspace, 'long-prompt.json'), JSON.stringify({ tokens: long.tokens }));
console.log(`# wrote the Llama test model and a ${long.tokens}-token prompt in ${((Date.now() - tSetup) / 1000).toFixed(1)} s`);

const t0 = Date.now();
const screenshot = path.join(here, '../.output/integration-final.png');
const result = await runExtensionSuite({ extensionPath, testsPath: path.join(here, 'suite/index.js'), workspace, screenshot });
// The window as the last test left it (the 3,000-token Llama analysis: heatmap and tinted editor), kept to look at.
if (fs.existsSync(screenshot)) {
  const kept = path.resolve(here, '../../../.test-output');
  fs.mkdirSync(kept, { recursive: true });
  fs.copyFileSync(screenshot, path.join(kept, 'integration-long-llama.png'));
}
console.log(`# extension host suite finished in ${((Date.now() - t0) / 1000).toFixed(1)} s with code ${result.code}`);
fs.rmSync(workspace, { recursive: true, force: true });

const results = result.lines.map((l) => /^(not ok|ok) \d+ - (.*)$/.exec(l)).filter(Boolean);
if (results.length === 0) test('extension host suite ran', () => { throw new Error(`no results (exit ${result.code})`); });
for (const [, status, name] of results) {
  test(name.replace(/: .*$/, ''), () => { if (status !== 'ok') throw new Error(name); });
}
if (result.code !== 0 && results.every(([, s]) => s === 'ok')) test('extension host exit code', () => { throw new Error(`exit ${result.code}`); });
