// package.json contributes exactly what issue 3 lists.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const pkg = require(path.join(__dirname, '../../../extension/package.json'));

const COMMANDS = ['attentionViz.showAttention', 'attentionViz.inspectPrompt', 'attentionViz.compareWithPrevious',
  'attentionViz.compareWithGitHead', 'attentionViz.restartBackend', 'attentionViz.selectModel', 'attentionViz.exportPng', 'attentionViz.exportAttention', 'attentionViz.showLog'];

test('commands, titles and activation on those commands only (plus panel revival)', () => {
  // VS Code (≥ 1.74) activates on every contributed command by itself: only the panel's revival is listed.
  assert.match(pkg.engines.vscode, /^\^1\.(7[4-9]|[89]\d|\d{3})\./);
  const c = pkg.contributes;
  assert.deepEqual(c.commands.map((x) => x.command), COMMANDS);
  assert.equal(c.commands[0].title, 'Show Attention for Selection');
  assert.ok(c.commands.every((x) => x.category === 'AttentionViz'));
  assert.deepEqual(pkg.activationEvents, ['onWebviewPanel:attentionViz.panel']);
  assert.equal(pkg.main, './out/host/extension.js');
});

test('menus, keybinding, configuration', () => {
  const c = pkg.contributes;
  assert.deepEqual(c.menus['editor/context'], [
    { command: 'attentionViz.showAttention', when: 'editorHasSelection', group: 'navigation@90' },
    { command: 'attentionViz.inspectPrompt', when: 'editorTextFocus', group: 'navigation@91' },
  ]);
  assert.equal(c.commands[1].title, 'Inspect Prompt at Cursor');
  assert.deepEqual(c.commands.slice(2, 4).map((x) => x.title), ['Compare with Previous Analysis', 'Compare with Git HEAD']);
  assert.deepEqual(c.menus.commandPalette.map((x) => x.command), COMMANDS);
  assert.deepEqual(c.keybindings.map((k) => [k.command, k.key, k.mac]), [
    ['attentionViz.showAttention', 'ctrl+alt+a', 'cmd+alt+a'],
    ['attentionViz.inspectPrompt', 'ctrl+alt+p', 'cmd+alt+p'],
  ]);
  assert.deepEqual(Object.keys(c.configuration.properties),
    ['attentionViz.modelPath', 'attentionViz.maxTokens', 'attentionViz.memoryBudgetMB', 'attentionViz.followSelection',
      'attentionViz.chatTemplate.addGenerationPrompt', 'attentionViz.sectionPattern', 'attentionViz.codeLens.enabled',
      'attentionViz.backendPath', 'attentionViz.allowPickle', 'attentionViz.trace.server']);
  // Long inputs: 0 = the model's window (the backend's own default, capped at 32,768); the budget as the backend's.
  const p = c.configuration.properties;
  assert.deepEqual([p['attentionViz.maxTokens'].default, p['attentionViz.maxTokens'].minimum], [0, 0]);
  assert.match(p['attentionViz.maxTokens'].markdownDescription, /window.*32,768/);
  assert.equal(p['attentionViz.chatTemplate.addGenerationPrompt'].default, true);
  // What an empty modelPath means, as it behaves: the model picked with Select Model applies, else the embedded one.
  assert.match(p['attentionViz.modelPath'].markdownDescription, /Empty: the model picked with \*\*Select Model\*\*.*else the embedded/);
  assert.deepEqual([p['attentionViz.memoryBudgetMB'].type, p['attentionViz.memoryBudgetMB'].default, p['attentionViz.memoryBudgetMB'].minimum], ['integer', 4096, 256]);
  // Workspace trust: in an untrusted workspace these settings come from the user's settings only.
  assert.equal(pkg.capabilities.untrustedWorkspaces.supported, 'limited');
  assert.deepEqual(pkg.capabilities.untrustedWorkspaces.restrictedConfigurations.sort(),
    ['attentionViz.allowPickle', 'attentionViz.backendPath', 'attentionViz.modelPath']);
  assert.deepEqual(c.configuration.properties['attentionViz.trace.server'].enum, ['off', 'messages', 'verbose']);
  for (const [name, version] of Object.entries(pkg.devDependencies)) assert.match(version, /^\d+\.\d+\.\d+$/, `${name} pinned`);
  assert.equal(pkg.dependencies, undefined, 'everything is bundled');
});

test('./run.sh keeps its sample workspace outside the clone (no "git repository in the parent folders" prompt)', () => {
  const fs = require('node:fs');
  const run = fs.readFileSync(path.join(__dirname, '../../../run.sh'), 'utf8');
  const line = run.split('\n').find((l) => l.startsWith('workspace='));
  assert.ok(line, 'run.sh sets the workspace');
  assert.doesNotMatch(line, /\$PWD|\$\(pwd\)|\.run\//, line);
  assert.match(line, /\$HOME\/\.cache|XDG_CACHE_HOME/);
});
