// Entry point: only wiring. Commands are registered from one table.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { Backend } from './backend';
import { ShownAnalysis } from './session';
import { PanelRouter } from './panelRouter';
import { EditorOverlay } from './editorOverlay';
import { Analyzer } from './commands/analyze';
import { Exports } from './commands/export';
import { PromptInspector } from './commands/inspectPrompt';
import { Comparer } from './commands/compare';
import { INSPECT_AT, PromptLenses } from './promptLens';
import { Parsers } from './prompt/parsers';
import { modelPicks, restartBackend, selectModel } from './commands/backendCommands';
import { createTestApi, type TestApi } from './testApi';
import { StatusItem } from './status';
import { readConfig, RESTART_SETTINGS } from './config';

export function activate(context: vscode.ExtensionContext): TestApi {
  const output = vscode.window.createOutputChannel('AttentionViz');
  const version = String((context.extension.packageJSON as { version?: string }).version ?? '0.0.0');
  const backend = new Backend(context.extensionPath, version, output, readConfig);
  const shown = new ShownAnalysis(backend);
  const router = new PanelRouter(context, backend, shown);
  const analyzer = new Analyzer(context, backend, shown, router);
  const overlay = new EditorOverlay(backend, shown, router, analyzer);
  const exports = new Exports(backend, shown, router);
  const parsers = new Parsers(path.join(context.extensionPath, 'media', 'grammars'));
  const inspector = new PromptInspector(context, backend, analyzer, parsers);
  const comparer = new Comparer(backend, shown, router, analyzer, inspector);
  const lenses = new PromptLenses(backend, analyzer, inspector, parsers);
  const status = new StatusItem(backend, () => analyzer.modelId());
  const commands: Record<string, (...args: never[]) => unknown> = {
    'attentionViz.showAttention': () => analyzer.showAttention(),
    'attentionViz.inspectPrompt': () => inspector.inspect(),
    'attentionViz.compareWithPrevious': () => comparer.compareWithPrevious(),
    'attentionViz.compareWithGitHead': () => comparer.compareWithGitHead(),
    'attentionViz.restartBackend': () => restartBackend(backend),
    'attentionViz.selectModel': async () => {
      await selectModel(context, backend);
      lenses.refresh(); // the summaries are the selected model's
      status.refresh();
    },
    // A CodeLens's click: Inspect Prompt at Cursor with the cursor in that prompt.
    [INSPECT_AT]: async (uri?: unknown, offset?: unknown) => {
      // Run from elsewhere (the palette, another extension) without a lens's arguments: the cursor's prompt.
      if (!(uri instanceof vscode.Uri) || typeof offset !== 'number' || !Number.isInteger(offset) || offset < 0)
        return inspector.inspect();
      const editor = await vscode.window.showTextDocument(uri, { viewColumn: vscode.ViewColumn.One });
      const at = editor.document.positionAt(offset);
      editor.selection = new vscode.Selection(at, at);
      return inspector.inspect();
    },
    'attentionViz.exportPng': (target?: vscode.Uri) => exports.exportPng(target),
    'attentionViz.exportAttention': (target?: vscode.Uri) => exports.exportAttention(target),
    'attentionViz.showLog': () => output.show(true),
  };
  context.subscriptions.push(
    output,
    backend,
    shown,
    router,
    analyzer,
    overlay,
    lenses,
    status,
    ...Object.entries(commands).map(([id, fn]) => vscode.commands.registerCommand(id, fn)),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('attentionViz.trace.server')) void backend.setTrace(readConfig().trace);
      if (e.affectsConfiguration('attentionViz.modelPath')) status.refresh();
      if (RESTART_SETTINGS.some((s) => e.affectsConfiguration(s)) && backend.pid) void restartBackend(backend);
    }),
  );
  return createTestApi(() => modelPicks(context, backend), backend, shown, router, overlay, lenses, status);
}

export function deactivate(): void {
  // Disposables in context.subscriptions stop the backend (shutdown + exit, then kill).
}
