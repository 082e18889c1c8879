// Runs INSIDE the real VS Code extension host (loaded through extensionTestsPath). A tiny harness:
// each test logs "[suite] ok N - name" or "[suite] not ok N - name: error"; run() rejects if any failed.
const vscode = require('vscode');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const log = (s) => console.log(`[suite] ${s}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** A picture of the window as it is now, in tests/extension/.output/NAME.png (taken by the harness, lib/vscodeServer.cjs). */
async function screenshot(name) {
  await sleep(800); // the panel's last paint
  log(`screenshot ${name}`);
  await sleep(1500);
}
async function until(what, fn, ms = 60_000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e; }
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
}

const tests = [];
const test = (name, fn) => tests.push({ name, fn });

let api;
const ws = () => vscode.workspace.workspaceFolders[0].uri;
async function openPrompt(name = 'prompt.md') {
  const doc = await vscode.workspace.openTextDocument(vscode.Uri.joinPath(ws(), name));
  return vscode.window.showTextDocument(doc, vscode.ViewColumn.One);
}
function selectLine(editor, line) {
  const r = editor.document.lineAt(line).range;
  editor.selection = new vscode.Selection(r.start, r.end);
  return r;
}
async function analyzeLine(editor, line) {
  const before = api?.session()?.seq;
  selectLine(editor, line);
  await vscode.commands.executeCommand('attentionViz.showAttention'); // activates the extension on first use
  api = api ?? vscode.extensions.getExtension('attentionviz.attentionviz').exports;
  return until('a new analysis', () => { const s = api.session(); return s && s.seq !== before && s; }, 180_000);
}
const webviewTabs = () => vscode.window.tabGroups.all.flatMap((g) => g.tabs)
  .filter((t) => t.input instanceof vscode.TabInputWebview && t.input.viewType.includes('attentionViz.panel'));

test('the command on a selection opens the panel beside the editor and paints the heatmap', async () => {
  const editor = await openPrompt();
  const ext = vscode.extensions.getExtension('attentionviz.attentionviz');
  assert.ok(ext, 'extension present');
  assert.equal(ext.isActive, false, 'not active before its command (activation on commands only)');
  const s = await analyzeLine(editor, 0);
  assert.ok(s.tokens > 5, `tokens: ${s.tokens}`);
  const tabs = await until('the panel tab', () => webviewTabs().length === 1 && webviewTabs());
  assert.notEqual(tabs[0].group.viewColumn, editor.viewColumn, 'beside the editor');
  const r = await until('the webview to paint', () => { const x = api.lastRendered(); return x && x.litPixels > 0 && x; }, 60_000);
  assert.equal(r.layer, 0); assert.equal(r.head, 0);
  log(`  painted ${r.litPixels} px, ${s.tokens} tokens, backend pid ${api.backendPid()}`);
});

test("the panel's analysis requests (tabs) reach the real backend through the host; matrices arrive as ArrayBuffers", async () => {
  const editor = await openPrompt();
  const s = api?.session() ?? await analyzeLine(editor, 0);
  const id = s.analysisId;
  const metrics = await api.analysisRpc('attention/metrics', { analysisId: id });
  assert.equal(metrics.type, 'rpcResult', JSON.stringify(metrics));
  assert.equal(metrics.result.metrics.length, metrics.result.layers * metrics.result.heads);
  const rollout = await api.analysisRpc('attention/rollout', { analysisId: id });
  assert.equal(rollout.type, 'rpcResult');
  assert.equal(rollout.dataBytes, rollout.result.rows * rollout.result.cols * 4);
  assert.equal(rollout.result.data, undefined, 'no base64 copy travels to the webview');
  const view = await api.analysisRpc('attention/view', { analysisId: id, layer: 0, head: 0, hideSpecial: true });
  assert.equal(view.result.rows, s.tokens - 2);
  const hist = await api.analysisRpc('attention/histogram', { analysisId: id, layer: 0, head: 0, bins: 20 });
  assert.equal(hist.result.counts.length, 20);
  const mod = await api.analysisRpc('attention/modularity', { analysisId: id, layer: 0, head: 0 });
  assert.equal(mod.result.communities.length, s.tokens);
  assert.equal((await api.analysisRpc('attention/metrics', { analysisId: 'stale' })).type, 'rpcError');
  assert.equal((await api.analysisRpc('attention/analyze', { analysisId: id })).type, 'rejected', 'only the analysis methods');
  const bad = await api.analysisRpc('attention/histogram', { analysisId: id, bins: 0 });
  assert.equal(bad.type, 'rpcError');
});

test('the hover provider returns the top-5 attended tokens with scores', async () => {
  const editor = await openPrompt();
  const text = editor.document.lineAt(0).text;
  const word = /[A-Za-z]{4,}/.exec(text);
  const pos = editor.document.positionAt(editor.document.offsetAt(new vscode.Position(0, 0)) + word.index + 1);
  const hovers = await until('a hover', async () => {
    const h = await vscode.commands.executeCommand('vscode.executeHoverProvider', editor.document.uri, pos);
    return h.find((x) => x.contents.some((c) => (c.value ?? String(c)).includes('AttentionViz')));
  });
  const md = hovers.contents.map((c) => c.value ?? String(c)).join('\n');
  const scores = [...md.matchAll(/`(0\.\d{4}|1\.0000)`/g)].map((m) => Number(m[1]));
  assert.equal(scores.length, 5, md);
  assert.deepEqual([...scores].sort((a, b) => b - a), scores, 'best first');
  assert.ok(scores.every((x) => x >= 0 && x <= 1));
  assert.ok(hovers.range.contains(pos));
  log(`  hover: ${md.replace(/\n+/g, ' | ').slice(0, 200)}`);
});

test('moving the cursor into the analyzed range tints its tokens', async () => {
  const editor = await openPrompt();
  editor.selection = new vscode.Selection(new vscode.Position(0, 2), new vscode.Position(0, 2));
  const n = await until('decorations', () => api.decorationCount() > 0 && api.decorationCount());
  const s = api.session();
  assert.ok(n >= s.tokens - 2 - 1, `decorated ${n} of ${s.tokens} tokens`);
  // A cursor right after a word (the space after "animal") picks that word's token, as VS Code's word highlight does.
  const animal = api.sessionTokens().findIndex((t) => t.text === 'animal');
  const after = editor.document.lineAt(0).text.indexOf('animal') + 'animal'.length;
  editor.selection = new vscode.Selection(new vscode.Position(0, after), new vscode.Position(0, after));
  await until('the tint by the token the cursor touches', () => api.tintFocus() === animal, 10_000);
});

test('an edit before or inside the range removes the decorations', async () => {
  const editor = await openPrompt();
  await editor.edit((b) => b.insert(new vscode.Position(0, 0), 'X'));
  await until('decorations cleared', () => api.decorationCount() === 0 && api.session()?.valid === false);
  await vscode.commands.executeCommand('undo');
  await analyzeLine(editor, 0);
  editor.selection = new vscode.Selection(new vscode.Position(0, 1), new vscode.Position(0, 1));
  await until('decorations back', () => api.decorationCount() > 0);
});

test('an empty selection analyzes the current line', async () => {
  const editor = await openPrompt();
  const line = 2;
  editor.selection = new vscode.Selection(new vscode.Position(line, 3), new vscode.Position(line, 3));
  const previous = api.session();
  await vscode.commands.executeCommand('attentionViz.showAttention');
  const s = await until('analysis of the line', () => api.session()?.seq !== previous.seq && api.session());
  assert.ok(s.tokens > 3);
  // The replaced analysis stays for Compare with Previous Analysis; one more analysis releases it in the backend (its
  // memory is reused): its id is unknown there then, while the one it replaced in turn stays.
  assert.ok((await api.renderPng({ analysisId: previous.analysisId })).width > 0, 'the previous analysis is kept');
  await vscode.commands.executeCommand('attentionViz.showAttention');
  await until('one more analysis', () => api.session()?.seq !== s.seq);
  await until('the analysis two back to be released', async () => {
    try { await api.renderPng({ analysisId: previous.analysisId }); return false; } catch (e) { return /Unknown analysisId/.test(e.message); }
  }, 10_000);
  assert.ok((await api.renderPng({ analysisId: s.analysisId })).width > 0, 'the previous one is kept');
  assert.ok((await api.renderPng({})).width > 0, 'the current analysis is still there');
});

test('two selections analyze as a sentence pair; hovers map tokens of both texts', async () => {
  const editor = await openPrompt();
  const a = editor.document.lineAt(0).range, b = editor.document.lineAt(2).range;
  editor.selections = [new vscode.Selection(b.start, b.end), new vscode.Selection(a.start, a.end)];
  const before = api.session().seq;
  await vscode.commands.executeCommand('attentionViz.showAttention');
  const s = await until('the pair analysis', () => api.session()?.seq !== before && api.session(), 180_000);
  assert.ok(s.pairTokens >= 8, `second-segment tokens: ${s.pairTokens}`);
  async function hoverTitle(line, word) {
    const col = editor.document.lineAt(line).text.indexOf(word) + 1;
    const pos = new vscode.Position(line, col);
    const h = await until(`a hover on ${word}`, async () => {
      const all = await vscode.commands.executeCommand('vscode.executeHoverProvider', editor.document.uri, pos);
      return all.find((x) => x.contents.some((c) => (c.value ?? String(c)).includes('AttentionViz')));
    });
    return h.contents.map((c) => c.value ?? String(c)).join('\n');
  }
  assert.match(await hoverTitle(2, 'helpful'), /“helpful”(\s|&nbsp;)attends/);
  assert.match(await hoverTitle(0, 'animal'), /“animal”(\s|&nbsp;)attends/);
  editor.selection = new vscode.Selection(a.start, a.start);
});

const pngSize = (bytes) => ({ width: Buffer.from(bytes).readUInt32BE(16), height: Buffer.from(bytes).readUInt32BE(20) });
const themeName = () => [vscode.ColorThemeKind.Dark, vscode.ColorThemeKind.HighContrast].includes(vscode.window.activeColorTheme.kind) ? 'dark' : 'light';

test("Export Heatmap PNG saves the backend's SkiaSharp image of the panel's view (one head, then the grid)", async () => {
  await until('the webview to paint', () => api.lastRendered());
  const view = await until('the panel to report its view', () => api.panelView());
  const target = vscode.Uri.joinPath(ws(), 'export-test.png');
  const uri = await vscode.commands.executeCommand('attentionViz.exportPng', target);
  assert.equal(uri.toString(), target.toString());
  const bytes = Buffer.from(await vscode.workspace.fs.readFile(target));
  assert.deepEqual([...bytes.slice(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
  // The same bytes as render/png for that view: the file is the labelled SkiaSharp image, not a canvas grab.
  const direct = await api.renderPng({ layer: view.layer, head: view.head, hideSpecial: view.hideSpecial, wordLevel: view.wordLevel, theme: themeName() });
  assert.deepEqual(pngSize(bytes), { width: direct.width, height: direct.height });
  assert.ok(Buffer.from(direct.png, 'base64').equals(bytes), 'exported bytes equal render/png');
  log(`  heatmap L${view.layer} H${view.head}: ${direct.width}×${direct.height}, ${bytes.length} bytes`);
  fs.writeFileSync(path.join(__dirname, '../../.output/export-heatmap.png'), bytes); // kept to look at

  // Hide special tokens in the panel: the export follows.
  api.setPanelView({ hideSpecial: true });
  await until('the panel to hide special tokens', () => api.panelView()?.hideSpecial === true);
  await vscode.commands.executeCommand('attentionViz.exportPng', target);
  const trimmed = Buffer.from(await vscode.workspace.fs.readFile(target));
  const directTrimmed = await api.renderPng({ layer: view.layer, head: view.head, hideSpecial: true, theme: themeName() });
  assert.ok(Buffer.from(directTrimmed.png, 'base64').equals(trimmed), 'the export uses the panel\'s hideSpecial');
  assert.ok(!trimmed.equals(bytes), 'a different image than with [CLS]/[SEP]');
  api.setPanelView({ hideSpecial: false });
  await until('special tokens shown again', () => api.panelView()?.hideSpecial === false);

  api.setPanelView({ view: 'grid' });
  await until('the grid view', () => api.panelView()?.view === 'grid');
  await vscode.commands.executeCommand('attentionViz.exportPng', target);
  const grid = Buffer.from(await vscode.workspace.fs.readFile(target));
  const directGrid = await api.renderPng({ grid: true, theme: themeName() });
  assert.ok(Buffer.from(directGrid.png, 'base64').equals(grid), 'grid export equals render/png grid');
  fs.writeFileSync(path.join(__dirname, '../../.output/export-grid.png'), grid);
  assert.ok(directGrid.width > direct.width, `the 12-head grid is wider than one heatmap: ${directGrid.width} vs ${direct.width}`);
  api.setPanelView({ view: 'head' });
  await until('the head view again', () => api.panelView()?.view === 'head');
  await vscode.workspace.fs.delete(target);
});

test('Export Attention writes CSV of the visible head and safetensors of the whole analysis through the backend', async () => {
  await until('the webview to paint', () => api.lastRendered());
  const s = api.session();
  const csv = vscode.Uri.joinPath(ws(), 'export-test.csv');
  assert.equal((await vscode.commands.executeCommand('attentionViz.exportAttention', csv)).toString(), csv.toString());
  const lines = Buffer.from(await vscode.workspace.fs.readFile(csv)).toString('utf8').trim().split('\r\n');
  assert.equal(lines.length, s.tokens + 2, 'two header rows (display text, vocabulary) and one row per query token');
  assert.ok(lines[1].startsWith('vocabulary,'), lines[1]);
  const row = lines[2].split(',').slice(-s.tokens).map(Number);
  assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-4, `a softmax row sums to 1: ${row}`);
  // With special tokens hidden in the panel, the CSV is the panel's view: the special tokens' rows and columns go.
  const specials = lines[0].split(',').filter((c) => c === '[CLS]' || c === '[SEP]').length;
  assert.ok(specials >= 2, `the header names the special tokens: ${lines[0]}`);
  api.setPanelView({ hideSpecial: true });
  await until('the panel to hide special tokens', () => api.panelView()?.hideSpecial === true);
  await vscode.commands.executeCommand('attentionViz.exportAttention', csv);
  const trimmed = Buffer.from(await vscode.workspace.fs.readFile(csv)).toString('utf8').trim().split('\r\n');
  assert.equal(trimmed.length, s.tokens - specials + 2, 'the view without [CLS] and [SEP]');
  assert.ok(!trimmed[0].includes('[CLS]') && !trimmed[0].includes('[SEP]'), `no special columns: ${trimmed[0]}`);
  api.setPanelView({ hideSpecial: false });
  await until('the panel to show special tokens again', () => api.panelView()?.hideSpecial === false);
  const st = vscode.Uri.joinPath(ws(), 'export-test.safetensors');
  await vscode.commands.executeCommand('attentionViz.exportAttention', st);
  const bytes = await vscode.workspace.fs.readFile(st);
  const headerLength = Number(Buffer.from(bytes).readBigUInt64LE(0));
  const header = JSON.parse(Buffer.from(bytes.slice(8, 8 + headerLength)).toString('utf8'));
  assert.deepEqual(header.attentions.shape, [6, 12, s.tokens, s.tokens]);
  await vscode.workspace.fs.delete(csv);
  await vscode.workspace.fs.delete(st);
});

test('a hidden panel still exports, and repaints from getState when shown again', async () => {
  const before = api.lastRendered();
  const other = await vscode.workspace.openTextDocument({ content: 'another editor on top of the panel' });
  const tab = webviewTabs()[0];
  await vscode.window.showTextDocument(other, { viewColumn: tab.group.viewColumn, preview: false });
  await until('the panel to be hidden', () => !webviewTabs()[0].isActive);
  const target = vscode.Uri.joinPath(ws(), 'export-hidden.png');
  await vscode.commands.executeCommand('attentionViz.exportPng', target);
  const bytes = await vscode.workspace.fs.readFile(target);
  assert.deepEqual([...bytes.slice(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
  await vscode.workspace.fs.delete(target);
  await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
  await until('the panel to be shown again', () => webviewTabs()[0]?.isActive);
  const after = await until('a repaint', () => api.lastRendered() !== before && api.lastRendered());
  assert.ok(after.litPixels > 0);
});

test('after the backend is killed, the next command restarts it and works', async () => {
  const pid = api.backendPid();
  assert.ok(pid);
  process.kill(pid, 'SIGKILL');
  await until('the crash to be noticed', () => api.backendPid() !== pid);
  assert.equal(api.session().valid, false, 'the old analysis is gone with its process');
  const editor = await openPrompt();
  const s = await analyzeLine(editor, 0);
  const pid2 = await until('a new backend', () => api.backendPid());
  assert.notEqual(pid2, pid);
  assert.ok(s.tokens > 5);
  await until('the webview to paint again', () => api.lastRendered()?.litPixels > 0);
});

test('"Restart Backend" starts a fresh process', async () => {
  const pid = api.backendPid();
  await vscode.commands.executeCommand('attentionViz.restartBackend');
  const pid2 = await until('a new pid', () => api.backendPid() !== pid && api.backendPid());
  assert.ok(pid2);
  await until('the new backend to be ready', () => api.backendState() === 'ready', 60_000);
  assert.equal(api.backendPid(), pid2, 'the fresh process stays');
});

test('a selection longer than maxTokens is truncated and says where', async () => {
  await vscode.workspace.getConfiguration('attentionViz').update('maxTokens', 8, vscode.ConfigurationTarget.Workspace);
  try {
    const editor = await openPrompt();
    const s = await analyzeLine(editor, 0);
    assert.equal(s.tokens, 8);
    assert.equal(s.truncated, true);
    assert.ok(s.truncatedAt > 0 && s.truncatedAt < editor.document.lineAt(0).text.length);
  } finally {
    await vscode.workspace.getConfiguration('attentionViz').update('maxTokens', undefined, vscode.ConfigurationTarget.Workspace);
  }
});

test('followSelection re-analyzes a changed selection after the debounce', async () => {
  await vscode.workspace.getConfiguration('attentionViz').update('followSelection', true, vscode.ConfigurationTarget.Workspace);
  try {
    const editor = await openPrompt();
    const before = api.session().seq;
    // Three quick selection changes: one analysis (debounced 300 ms), of the last one.
    for (const end of [10, 20, 30]) editor.selection = new vscode.Selection(new vscode.Position(2, 0), new vscode.Position(2, end));
    const s = await until('the follow-up analysis', () => api.session()?.seq !== before && api.session(), 60_000);
    await sleep(800);
    assert.equal(api.session().seq, s.seq, 'only one analysis for the burst');
    const words = editor.document.getText(new vscode.Range(2, 0, 2, 30)).split(/\W+/).filter(Boolean).length;
    assert.ok(s.tokens >= words + 2, `tokens ${s.tokens} for ${words} words`);
  } finally {
    await vscode.workspace.getConfiguration('attentionViz').update('followSelection', undefined, vscode.ConfigurationTarget.Workspace);
  }
});

test('Select Model with a missing or a corrupt attentionViz.modelPath lists every usable model, marks the broken one, offers Browse… and Open Settings', async () => {
  const cfg = () => vscode.workspace.getConfiguration('attentionViz');
  const corrupt = path.join(ws().fsPath, 'corrupt-model');
  fs.mkdirSync(corrupt, { recursive: true });
  fs.writeFileSync(path.join(corrupt, 'config.json'), '{"model_type": "llama", "num_hidden_layers": ');
  fs.writeFileSync(path.join(corrupt, 'model.safetensors'), 'not a safetensors file');
  try {
    for (const [folder, reason] of [[path.join(ws().fsPath, 'no-such-model'), /not found/], [corrupt, /config\.json/]]) {
      await cfg().update('modelPath', folder, vscode.ConfigurationTarget.Workspace);
      const picks = await api.modelPicks();
      log(`  ${path.basename(folder)}: ${picks.map((p) => `${p.kind} ${p.label} | ${p.description ?? ''} | ${p.detail ?? ''}`).join(' // ')}`);
      const broken = picks.filter((p) => p.kind === 'broken');
      assert.equal(broken.length, 1, 'the setting\'s folder, marked');
      assert.equal(broken[0].label, `$(error) ${path.basename(folder)}`);
      assert.match(broken[0].detail, reason);
      assert.match(broken[0].detail, /\(from attentionViz\.modelPath\)$/);
      assert.ok(picks.every((p) => !/0 layers × 0 heads/.test(p.description ?? '')), 'no bogus model');
      // Every usable model is still listed, with family, size, layers × heads, kv heads and window.
      const models = picks.filter((p) => p.kind === 'model');
      assert.equal(models[0].id, 'default');
      assert.equal(models[0].description, 'BERT · embedded · 6 layers × 12 heads · 12 kv heads · window 512');
      const hub = models.find((p) => p.label === 'acme/tiny-llama');
      assert.ok(hub, 'the Hugging Face cache entry');
      assert.match(hub.description, /^Llama · [\d.]+ MB · \d+ layers × \d+ heads · \d+ kv heads · window [\d,]+$/);
      assert.deepEqual(picks.slice(-2).map((p) => p.label), ['$(folder-opened) Browse…', '$(gear) Open Settings']);
      // An analysis with it: the error names the setting it came from (and the toast offers Open Settings).
      const editor = await openPrompt();
      selectLine(editor, 0);
      await vscode.commands.executeCommand('attentionViz.showAttention');
      const status = await until('the panel to show the model error', () => api.panelStatus()?.type === 'error' && api.panelStatus(), 60_000);
      assert.match(status.message, reason);
      assert.match(status.message, /\(from the setting attentionViz\.modelPath\)$/);
      await screenshot(`model-error-${path.basename(folder)}`);
      // The quick pick itself, to look at; closed again without a pick.
      const shown = vscode.commands.executeCommand('attentionViz.selectModel');
      await screenshot(`select-model-${path.basename(folder)}`);
      await vscode.commands.executeCommand('workbench.action.closeQuickOpen');
      await shown;
    }
  } finally {
    await cfg().update('modelPath', undefined, vscode.ConfigurationTarget.Workspace);
    fs.rmSync(corrupt, { recursive: true, force: true });
  }
});

test('a missing backend gives an error state and a message, without hanging; fixing the setting recovers', async () => {
  const cfg = () => vscode.workspace.getConfiguration('attentionViz');
  const good = cfg().get('backendPath');
  await cfg().update('backendPath', '/nonexistent/attentionviz-backend', vscode.ConfigurationTarget.Workspace);
  try {
    await until('the restart to fail', () => api.backendState() === 'error', 30_000);
    const editor = await openPrompt();
    selectLine(editor, 0);
    const t0 = Date.now();
    await vscode.commands.executeCommand('attentionViz.showAttention');
    assert.ok(Date.now() - t0 < 10_000, 'the command returns promptly');
    assert.equal(api.backendState(), 'error');
  } finally {
    await cfg().update('backendPath', good, vscode.ConfigurationTarget.Workspace);
  }
  const editor = await openPrompt();
  const s = await analyzeLine(editor, 0);
  assert.ok(s.tokens > 5);
  assert.equal(api.backendState(), 'ready');
});

// ----- Long inputs (issue #10): 3,000 tokens on a Llama-shaped model (runs last: the final screenshot shows it) -----

/** The `$/progress` values the extension's JSON-RPC client received under `token`, read from its verbose trace in
 * the extension's log file, with where the analyze request was sent and answered in that log. */
function tracedProgress(logText, token) {
  const lines = logText.split('\n');
  const progress = [];
  let sent = -1, answered = -1;
  lines.forEach((l, i) => {
    if (sent < 0 && /\[trace\] Sending request 'attention\/analyze/.test(l)) sent = i;
    if (sent >= 0 && answered < 0 && /\[trace\] Received response 'attention\/analyze/.test(l)) answered = i;
    if (/\[trace\] Received notification '\$\/progress'/.test(l)) {
      // Verbose trace: "Params: {" on the next line, the JSON pretty-printed up to a lone "}".
      if (!lines[i + 1]?.startsWith('Params: ')) return;
      const end = lines.indexOf('}', i + 1);
      const p = JSON.parse([lines[i + 1].slice('Params: '.length), ...lines.slice(i + 2, end + 1)].join('\n'));
      if (p.token === token) progress.push({ line: i, value: p.value });
    }
  });
  return { progress, sent, answered };
}

function decodeMatrix(m) {
  const b = Buffer.from(m.data, 'base64');
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

/** Opens `file` with `model` (a folder of the workspace) selected, the cursor before `word`, and runs Inspect Prompt
 * at Cursor; `check` gets the editor and its text once the new analysis is shown. */
async function inspectPromptIn(file, model, word, check) {
  const cfg = () => vscode.workspace.getConfiguration('attentionViz');
  await cfg().update('modelPath', vscode.Uri.joinPath(ws(), model).fsPath, vscode.ConfigurationTarget.Workspace);
  try {
    const editor = await openPrompt(file);
    const source = editor.document.getText();
    const at = editor.document.positionAt(source.indexOf(word));
    editor.selection = new vscode.Selection(at, at);
    const before = api?.session()?.seq;
    await vscode.commands.executeCommand('attentionViz.inspectPrompt');
    api = api ?? vscode.extensions.getExtension('attentionviz.attentionviz').exports;
    await until('the prompt analysis', () => { const x = api.session(); return x && x.seq !== before && x; }, 180_000);
    // The status bar names the model in use, not the embedded default.
    await until('the status bar naming the model', () => api.statusText().endsWith(`AttentionViz: ${model}`), 10_000);
    await check(editor, source);
  } finally {
    await cfg().update('modelPath', undefined, vscode.ConfigurationTarget.Workspace);
  }
}

test('Inspect Prompt at Cursor in a Python triple-quoted string: the decoded value is analysed; a token holding \\n hovers and tints the two source characters', () => inspectPromptIn('prompt.py', 'llama-test-model', 'helpful', async (editor, source) => {
    assert.equal(api.sessionText().text, 'You are helpful.\nAnswer briefly, in "one" line.', 'the value Python sees');
    const tokens = api.sessionTokens();
    // Llama-2's tokenizer makes the newline its own byte token <0x0A>: it maps to the two characters `\` `n`.
    const nl = tokens.findIndex((t) => t.text.includes('0x0A') || t.text.includes('\n'));
    assert.ok(nl > 0, `a newline token among ${tokens.map((t) => t.text).join(' ')}`);
    assert.equal(source.slice(...tokens[nl].source), '\\n');
    const quote = tokens.findIndex((t) => t.text.includes('"'));
    assert.ok(source.slice(...tokens[quote].source).includes('\\"'), 'the decoded quote maps to its escape');
    const open = source.indexOf('"""') + 3, close = source.lastIndexOf('"""');
    for (const t of tokens) if (t.source) assert.ok(t.source[0] >= open && t.source[1] <= close, 'inside the literal');
    // The hover on the `n` of `\n` is that token's, over exactly those two characters.
    const at = editor.document.positionAt(tokens[nl].source[0] + 1);
    const hover = await until('the hover on \\n', async () => {
      const h = await vscode.commands.executeCommand('vscode.executeHoverProvider', editor.document.uri, at);
      return h.find((x) => x.contents.some((c) => String(c.value ?? c).includes('AttentionViz')));
    }, 30_000);
    assert.deepEqual([editor.document.offsetAt(hover.range.start), editor.document.offsetAt(hover.range.end)], tokens[nl].source);
    editor.selection = new vscode.Selection(at, at);
    const tinted = tokens.filter((t) => t.source).length;
    await until('the tint of the decoded prompt', () => api.decorationCount() === tinted, 30_000);
    log(`  ${tokens.length} tokens; newline token ${nl} <- source ${JSON.stringify(source.slice(...tokens[nl].source))}; ${tinted} tinted`);
}));

test('Inspect Prompt at Cursor in messages.json with a Qwen-tokenizer model: the chat template is rendered, <|im_start|> is one token, one section per message', () => inspectPromptIn('messages.json', 'qwen-test-model', 'terse', async (editor, source) => {
    const { text, sections } = api.sessionText();
    assert.equal(text, '<|im_start|>system\nYou are a terse assistant.\nAnswer in one line.<|im_end|>\n' +
      '<|im_start|>user\nWhat is attention in a transformer?<|im_end|>\n<|im_start|>assistant\n');
    assert.deepEqual(sections.map((x) => x.name), ['system', 'user']);
    // The Sections tab's request: one bar per message, each holding its content's tokens.
    const bars = await api.analysisRpc('attention/sections', { analysisId: api.session().analysisId, sections });
    assert.equal(bars.type, 'rpcResult', bars.message);
    assert.deepEqual(bars.result.sections.map((x) => x.name), ['system', 'user']);
    assert.ok(bars.result.sections.every((x) => x.tokenCount > 0 && x.mass > 0), JSON.stringify(bars.result.sections));
    const tokens = api.sessionTokens();
    const starts = tokens.filter((t) => t.text === '<|im_start|>');
    assert.equal(starts.length, 3, `each <|im_start|> is one token: ${tokens.map((t) => t.text).join(' ')}`);
    assert.ok(starts.every((t) => t.source === null), 'template tokens map nowhere in the file');
    const terse = tokens.find((t) => t.text.includes('terse'));
    assert.equal(source.slice(...terse.source).trim(), 'terse', 'content tokens map into messages.json');
    assert.ok(tokens.some((t) => t.source && source.slice(...t.source).includes('\\n')), 'the newline maps to \\n in the file');
    log(`  ${tokens.length} tokens, sections ${sections.map((x) => `${x.name} [${x.start}, ${x.end})`).join(', ')}`);
}));

test('Sections and Compare with Previous Analysis / Git HEAD: a .prompt file\'s XML sections, hovering one marks its range; after an edit the Diff tab ranks the heads', async () => {
  const editor = await openPrompt('sections.prompt');
  const source = editor.document.getText();
  const at = editor.document.positionAt(source.indexOf('capital'));
  editor.selection = new vscode.Selection(at, at);
  let seq = api?.session()?.seq;
  await vscode.commands.executeCommand('attentionViz.inspectPrompt');
  api = api ?? vscode.extensions.getExtension('attentionviz.attentionviz').exports;
  const first = await until('the prompt analysis', () => { const x = api.session(); return x && x.seq !== seq && x; }, 180_000);
  const { sections } = api.sessionText();
  assert.deepEqual(sections.map((x) => x.name), ['context', 'question']);
  // The panel's request for the bars: masses of the last token's row by section, plus the sink, sum to 1.
  const r = await api.analysisRpc('attention/sections', { analysisId: first.analysisId, sections });
  assert.equal(r.type, 'rpcResult', r.message);
  const total = r.result.sections.reduce((a, x) => a + x.mass, 0) + r.result.sink;
  assert.ok(Math.abs(total - 1) < 1e-4, `masses and sink sum to ${total}`);
  // Hovering the question's bar in the panel marks the question in the editor.
  api.setPanelView({ tab: 'sections' });
  await until('the Sections tab', () => api.panelView()?.tab === 'sections', 30_000);
  await api.panelMessage({ type: 'hoverSection', index: 1 });
  await until('the marked section', () => JSON.stringify(api.markedSection()) === JSON.stringify([source.indexOf('<question>'), source.length]), 10_000);
  await screenshot('vscode-sections');
  await api.panelMessage({ type: 'hoverSection', index: null });
  await until('no marked section', () => api.markedSection() === undefined, 10_000);
  // A one-word edit, then Compare with Previous Analysis: the edited prompt analysed again and compared.
  const paris = source.indexOf('Paris');
  await editor.edit((e) => e.replace(new vscode.Range(editor.document.positionAt(paris), editor.document.positionAt(paris + 5)), 'Lyon'));
  seq = api.session().seq;
  await vscode.commands.executeCommand('attentionViz.compareWithPrevious');
  const diff = await until('the comparison', () => { const d = api.lastDiff(); return api.session().seq !== seq && d?.beforeId === first.analysisId && d; }, 180_000);
  const after = api.session();
  assert.equal(diff.heads.length, 6 * 12, 'a score for every head of MiniLM');
  assert.ok(diff.heads.some((h) => h.score > 0) && diff.heads.every((h) => h.score >= 0 && h.score <= 1));
  assert.ok(diff.aligned > 0 && diff.aligned < after.tokens, `${diff.aligned} of ${after.tokens} tokens aligned`);
  await until('the Diff tab', () => api.panelView()?.tab === 'diff', 30_000);
  await screenshot('vscode-diff');
  // The Diff tab's requests on the earlier analysis are answered (it stays in the backend while compared).
  const before = await api.analysisRpc('attention/view', { analysisId: first.analysisId, layer: 0, head: 0 });
  assert.equal(before.type, 'rpcResult', before.message);
  assert.equal(before.dataBytes, first.tokens * first.tokens * 4);
  const top = [...diff.heads].sort((x, y) => y.score - x.score)[0];
  log(`  sections ${r.result.sections.map((x) => `${x.name} ${(100 * x.mass).toFixed(3)}% (${x.tokenCount} tokens)`).join(', ')}, sink ${(100 * r.result.sink).toFixed(1)}%; ` +
    `diff: ${diff.aligned}/${after.tokens} aligned, top head L${top.layer} H${top.head} ${top.score.toFixed(4)}`);
  // Compare with Git HEAD: the committed version (Paris) against the edited one (Lyon), through the Git extension.
  seq = api.session().seq;
  await vscode.commands.executeCommand('attentionViz.compareWithGitHead');
  const head = await until('the Git HEAD comparison', () => { const d = api.lastDiff(); return d && d.before.includes('Git HEAD') && api.session().seq !== seq && d; }, 180_000);
  assert.equal(head.aligned, diff.aligned, 'HEAD holds the same text as the first analysis');
  for (const [k, h] of head.heads.entries()) assert.ok(Math.abs(h.score - diff.heads[k].score) < 1e-6, `L${h.layer} H${h.head}`);
  await vscode.commands.executeCommand('workbench.action.files.revert');
  api.setPanelView({ tab: 'heatmap' });
  await until('the Heatmap tab again', () => api.panelView()?.tab === 'heatmap', 30_000);
});

test('CodeLens above a prompt file: the last token\'s share per section as attention/sections gives it, cached, and a click inspects the prompt', async () => {
  const cfg = () => vscode.workspace.getConfiguration('attentionViz');
  await cfg().update('codeLens.enabled', true, vscode.ConfigurationTarget.Workspace);
  try {
    const editor = await openPrompt('sections.prompt');
    const uri = editor.document.uri;
    const resolved = async () => {
      const lenses = await vscode.commands.executeCommand('vscode.executeCodeLensProvider', uri, 10);
      return lenses.find((l) => l.command?.title.startsWith('AttentionViz:') && l.command.title.includes('%'));
    };
    const lens = await until('a resolved CodeLens', resolved, 120_000);
    // Room for the lens in the picture: no side bars.
    await vscode.commands.executeCommand('workbench.action.closeSidebar');
    await vscode.commands.executeCommand('workbench.action.closeAuxiliaryBar');
    await screenshot('vscode-codelens');
    const m = /^AttentionViz: (\d+) tokens · context (\d+)% · question (\d+)%$/.exec(lens.command.title);
    assert.ok(m, lens.command.title);
    assert.equal(lens.range.start.line, 0);
    const computed = api.lensesComputed();
    // Asked again (the file unchanged): the cached summary, nothing computed.
    assert.equal((await resolved()).command.title, lens.command.title);
    assert.equal(api.lensesComputed(), computed);
    // The click: Inspect Prompt at Cursor on that prompt; its attention/sections gives the lens's numbers.
    const seq = api.session()?.seq;
    await vscode.commands.executeCommand(lens.command.command, ...lens.command.arguments);
    const s = await until('the inspected prompt', () => { const x = api.session(); return x && x.seq !== seq && x; }, 180_000);
    assert.equal(s.tokens, Number(m[1]));
    const r = await api.analysisRpc('attention/sections', { analysisId: s.analysisId, sections: api.sessionText().sections });
    const onSections = r.result.sections.reduce((a, x) => a + x.mass, 0);
    assert.deepEqual(r.result.sections.map((x) => Math.round((100 * x.mass) / onSections)), [Number(m[2]), Number(m[3])]);
    log(`  ${lens.command.title}`);
  } finally {
    await cfg().update('codeLens.enabled', undefined, vscode.ConfigurationTarget.Workspace);
  }
});

test('a 3,000-token selection on a Llama-shaped model: progress during the analysis, the full heatmap, the editor tint, zoomed windows at full resolution', async () => {
  const cfg = () => vscode.workspace.getConfiguration('attentionViz');
  const modelPath = vscode.Uri.joinPath(ws(), 'llama-test-model').fsPath;
  const expected = JSON.parse(fs.readFileSync(vscode.Uri.joinPath(ws(), 'long-prompt.json').fsPath, 'utf8')).tokens;
  assert.ok(expected >= 3000, `the prompt has ${expected} tokens`);
  await cfg().update('modelPath', modelPath, vscode.ConfigurationTarget.Workspace);
  await cfg().update('maxTokens', 8192, vscode.ConfigurationTarget.Workspace);
  try {
    await longLlamaAnalysis(cfg, modelPath, expected);
  } finally {
    await cfg().update('modelPath', undefined, vscode.ConfigurationTarget.Workspace);
    await cfg().update('maxTokens', undefined, vscode.ConfigurationTarget.Workspace);
  }
});

async function longLlamaAnalysis(cfg, modelPath, expected) {
  const doc = await vscode.workspace.openTextDocument(vscode.Uri.joinPath(ws(), 'long-prompt.md'));
  const editor = await vscode.window.showTextDocument(doc, vscode.ViewColumn.One);
  const all = new vscode.Range(doc.positionAt(0), doc.positionAt(doc.getText().length));
  const text = doc.getText(all);

  // 1. Progress: an analyze with a work-done token over the extension's own client; its verbose trace records the
  // `$/progress` notifications the client received. The long (recomputed) path reports each layer.
  const logFile = process.env.ATTENTIONVIZ_LOG_FILE;
  assert.ok(logFile, 'ATTENTIONVIZ_LOG_FILE is set for the extension host');
  await cfg().update('trace.server', 'verbose', vscode.ConfigurationTarget.Workspace);
  const token = `itest-long-${Date.now()}`;
  let probe;
  const logStart = fs.existsSync(logFile) ? fs.statSync(logFile).size : 0;
  const t0 = Date.now();
  try {
    await sleep(300); // the trace change reaches the running client
    probe = await api.backendRequest('attention/analyze', { text, modelId: modelPath, maxTokens: 8192, workDoneToken: token });
  } finally {
    await cfg().update('trace.server', undefined, vscode.ConfigurationTarget.Workspace);
  }
  const probeMs = Date.now() - t0;
  await sleep(300);
  const fd = fs.openSync(logFile, 'r');
  const buf = Buffer.alloc(fs.statSync(logFile).size - logStart);
  fs.readSync(fd, buf, 0, buf.length, logStart);
  fs.closeSync(fd);
  const { progress, sent, answered } = tracedProgress(buf.toString('utf8'), token);
  const layers = probe.model.layers;
  assert.equal(probe.tokens.length, expected, 'the backend counts the tokens as the independent tokenizer does');
  assert.equal(probe.truncated, false);
  assert.ok(sent >= 0 && answered > sent, `the analyze request and its answer are in the trace (${sent}, ${answered})`);
  const kinds = progress.map((p) => p.value.kind);
  assert.deepEqual(kinds, ['begin', ...Array(layers).fill('report'), 'end'], `progress kinds: ${kinds}`);
  assert.deepEqual(progress.filter((p) => p.value.kind === 'report').map((p) => p.value.message),
    Array.from({ length: layers }, (_, k) => `layer ${k + 1} of ${layers}`));
  const reports = progress.filter((p) => p.value.kind === 'report');
  assert.ok(reports.every((p) => p.line > sent && p.line < answered), 'every report arrived while the analysis ran');
  assert.equal(reports.at(-1).value.percentage, 100);
  log(`  probe analyze: ${probe.tokens.length} tokens in ${probeMs} ms, progress ${progress.map((p) => p.value.message ?? p.value.kind).join(', ')}`);
  await api.backendRequest('attention/release', { analysisId: probe.analysisId });

  // 2. The command on the whole selection: the panel shows all the tokens, not truncated.
  editor.selection = new vscode.Selection(all.start, all.end);
  const before = api.session()?.seq;
  const shownBefore = api.lastRendered();
  const t1 = Date.now();
  await vscode.commands.executeCommand('attentionViz.showAttention');
  const s = await until('the long analysis', () => { const x = api.session(); return x && x.seq !== before && x; }, 180_000);
  log(`  command analysis: ${s.tokens} tokens in ${Date.now() - t1} ms`);
  assert.equal(s.tokens, expected);
  assert.equal(s.truncated, false, 'maxTokens 8192: the whole selection');
  // The command's own analysis reported each layer to the notification and the status bar.
  const commandProgress = api.progressReports();
  assert.deepEqual(commandProgress.filter((m) => m.startsWith('report')).map((m) => m.replace(/^report: /, '')),
    Array.from({ length: layers }, (_, k) => `layer ${k + 1} of ${layers}`), `command progress: ${commandProgress.join(', ')}`);
  assert.equal(webviewTabs().length, 1);
  // A new paint, not the previous analysis' one still on screen.
  const r = await until('the webview to paint the long heatmap',
    () => { const x = api.lastRendered(); return x && x !== shownBefore && x.litPixels > 0 && x; }, 120_000);
  log(`  painted ${r.litPixels} px of L${r.layer} H${r.head} ${Date.now() - t1} ms after the command`);

  // 3. The editor tint: the cursor near the end; every non-special, non-empty token of the selection is tinted.
  const tinted = probe.tokens.filter((t) => !t.special && t.end > t.start).length;
  const last = probe.tokens.at(-1);
  editor.selection = new vscode.Selection(doc.positionAt(last.start), doc.positionAt(last.start));
  editor.revealRange(new vscode.Range(doc.positionAt(last.start), doc.positionAt(last.start)), vscode.TextEditorRevealType.InCenter);
  const n = await until('the tint of the long selection', () => api.decorationCount() === tinted && api.decorationCount(), 60_000);
  assert.equal(n, tinted);
  log(`  tinted ${n} tokens`);

  // 4. Zoom: an overview pooled to 512, and windows at full resolution that agree with it and with softmax rows.
  const id = s.analysisId;
  const layer = layers - 1, head = 1;
  const overview = await api.backendRequest('attention/matrix', { analysisId: id, layer, head, maxSize: 512 });
  const f = overview.poolFactor;
  assert.equal(overview.pooled, true);
  assert.equal(f, Math.ceil(expected / 512));
  assert.equal(overview.rows, Math.ceil(expected / f));
  const ov = decodeMatrix(overview);
  // A window of 64×64 blocks, deep in the lower triangle: 64·f rows and columns, fetched at full resolution.
  const b0 = 300, c0 = 100, blocks = 64;
  const win = await api.backendRequest('attention/matrix', {
    analysisId: id, layer, head, maxSize: blocks * f, rowRange: [b0 * f, (b0 + blocks) * f], colRange: [c0 * f, (c0 + blocks) * f],
  });
  assert.equal(win.pooled, false);
  assert.equal(win.poolFactor, 1);
  assert.deepEqual([win.rows, win.cols], [blocks * f, blocks * f]);
  assert.deepEqual(win.rowRange, [b0 * f, (b0 + blocks) * f]);
  const w = decodeMatrix(win);
  // Each overview cell is the max of its f×f block of the full-resolution window: exactly.
  let checked = 0, distinct = new Set();
  for (let bi = 0; bi < blocks; bi++) for (let bj = 0; bj < blocks; bj++) {
    let m = -Infinity;
    for (let i = 0; i < f; i++) for (let j = 0; j < f; j++) m = Math.max(m, w[(bi * f + i) * win.cols + bj * f + j]);
    assert.equal(m, ov[(b0 + bi) * overview.cols + c0 + bj], `block (${b0 + bi}, ${c0 + bj})`);
    checked++; distinct.add(m);
  }
  assert.ok(distinct.size > blocks, `the window has structure (${distinct.size} distinct block maxima)`);
  // Full rows at full resolution: causal softmax rows over all 3,000 keys sum to 1 and are 0 after the diagonal.
  for (const row of [0, 1500, expected - 1]) {
    const one = await api.backendRequest('attention/matrix', { analysisId: id, layer, head, maxSize: expected, rowRange: [row, row + 1] });
    assert.deepEqual([one.rows, one.cols, one.pooled], [1, expected, false]);
    const v = decodeMatrix(one);
    let sum = 0;
    for (let j = 0; j < expected; j++) { sum += v[j]; if (j > row) assert.equal(v[j], 0, `row ${row}, key ${j} after the diagonal`); }
    assert.ok(Math.abs(sum - 1) < 1e-4, `row ${row} sums to ${sum}`);
    assert.ok(v[row] > 0, `row ${row} attends to itself`);
  }
  log(`  overview ${overview.rows}×${overview.cols} (pool ${f}); ${checked} blocks of a ${win.rows}×${win.cols} window equal it`);
  // Left as is for the final screenshot: the long heatmap beside the tinted editor.
}

exports.run = async function run() {
  let failed = 0, n = 0, ran = 0;
  const grep = process.env.ATTENTIONVIZ_SUITE_GREP ? new RegExp(process.env.ATTENTIONVIZ_SUITE_GREP) : undefined;
  for (const t of tests) {
    n++;
    if (grep && !grep.test(t.name) && n > 1) continue;
    const t0 = Date.now();
    ran++;
    try {
      await t.fn();
      log(`ok ${n} - ${t.name} (${Date.now() - t0} ms)`);
    } catch (e) {
      failed++;
      log(`not ok ${n} - ${t.name}: ${e && e.stack ? e.stack.split('\n').slice(0, 4).join(' / ') : e}`);
    }
  }
  log(`# pass ${ran - failed}`);
  log(`# fail ${failed}`);
  if (failed) throw new Error(`${failed} of ${n} failed`);
};
