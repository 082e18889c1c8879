// Entry point: only wiring. Commands are registered from one table.
import * as vscode from 'vscode';
import { Backend } from './backend';
import { Controller, type TestApi } from './controller';
import { StatusItem } from './status';
import { readConfig, RESTART_SETTINGS } from './config';

export function activate(context: vscode.ExtensionContext): TestApi {
  const output = vscode.window.createOutputChannel('AttentionViz');
  const version = String((context.extension.packageJSON as { version?: string }).version ?? '0.0.0');
  const backend = new Backend(context.extensionPath, version, output, readConfig);
  const controller = new Controller(context, backend);
  const commands: Record<string, (...args: never[]) => unknown> = {
    'attentionViz.showAttention': () => controller.showAttention(),
    'attentionViz.restartBackend': () => controller.restartBackend(),
    'attentionViz.selectModel': () => controller.selectModel(),
    'attentionViz.exportPng': (target?: vscode.Uri) => controller.exportPng(target),
    'attentionViz.exportAttention': (target?: vscode.Uri) => controller.exportAttention(target),
    'attentionViz.showLog': () => output.show(true),
  };
  context.subscriptions.push(
    output, backend, controller, new StatusItem(backend),
    ...Object.entries(commands).map(([id, fn]) => vscode.commands.registerCommand(id, fn)),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('attentionViz.trace.server')) void backend.setTrace(readConfig().trace);
      if (RESTART_SETTINGS.some((s) => e.affectsConfiguration(s)) && backend.pid) void controller.restartBackend();
    }),
  );
  return controller.testApi();
}

export function deactivate(): void {
  // Disposables in context.subscriptions stop the backend (shutdown + exit, then kill).
}
