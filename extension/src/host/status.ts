import * as vscode from 'vscode';
import type { Backend, BackendState } from './backend';

/** Status bar item: model and backend state; click opens the log. */
export class StatusItem implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem(
    'attentionViz.status',
    vscode.StatusBarAlignment.Right,
    100,
  );
  private ticker: NodeJS.Timeout | undefined;
  private readonly sub: vscode.Disposable;

  constructor(backend: Backend) {
    this.item.name = 'AttentionViz';
    this.item.command = 'attentionViz.showLog';
    this.sub = backend.onDidChangeState((s) => this.render(s));
    this.render(backend.state);
  }

  private render(s: BackendState): void {
    if (this.ticker) {
      clearInterval(this.ticker);
      this.ticker = undefined;
    }
    this.item.backgroundColor = undefined;
    switch (s.kind) {
      case 'stopped':
        this.item.hide();
        return;
      case 'starting':
        this.item.text = '$(loading~spin) AttentionViz: starting';
        break;
      case 'ready':
        this.item.text = `$(eye) AttentionViz: ${s.model}`;
        break;
      case 'busy': {
        const tick = () =>
          (this.item.text = `$(loading~spin) AttentionViz: ${s.what} ${((Date.now() - s.since) / 1000).toFixed(1)} s`);
        tick();
        this.ticker = setInterval(tick, 100);
        break;
      }
      case 'error':
        this.item.text = '$(error) AttentionViz: error';
        this.item.backgroundColor = new vscode.ThemeColor('statusBarItem.errorBackground');
        break;
    }
    this.item.tooltip =
      s.kind === 'error' ? `${s.message}\nClick for the log.` : 'AttentionViz backend: click for the log';
    this.item.show();
  }

  dispose(): void {
    if (this.ticker) clearInterval(this.ticker);
    this.sub.dispose();
    this.item.dispose();
  }
}
