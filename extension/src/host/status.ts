import * as vscode from 'vscode';
import type { Backend, BackendState } from './backend';
import { modelDisplayName } from '../shared/modelName';

/** Status bar item: model and backend state; click opens the log. */
export class StatusItem implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem(
    'attentionViz.status',
    vscode.StatusBarAlignment.Right,
    100,
  );
  private ticker: NodeJS.Timeout | undefined;
  private readonly sub: vscode.Disposable;

  /** `modelId`: the model the next analysis uses (attentionViz.modelPath, else the one picked with Select Model). */
  constructor(
    private readonly backend: Backend,
    private readonly modelId: () => string | undefined,
  ) {
    this.item.name = 'AttentionViz';
    this.item.command = 'attentionViz.showLog';
    this.sub = backend.onDidChangeState((s) => this.render(s));
    this.render(backend.state);
  }

  /** The model in use changed (a setting, Select Model). */
  refresh(): void {
    this.render(this.backend.state);
  }

  /** What the item says now (read by the integration tests). */
  get text(): string {
    return this.item.text;
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
        this.item.text = `$(eye) AttentionViz: ${modelDisplayName(this.modelId())}`;
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
    const id = this.modelId();
    this.item.tooltip =
      s.kind === 'error'
        ? `${s.message}\nClick for the log.`
        : `AttentionViz backend, model ${id && id !== 'default' ? id : modelDisplayName(id)}: click for the log`;
    this.item.show();
  }

  dispose(): void {
    if (this.ticker) clearInterval(this.ticker);
    this.sub.dispose();
    this.item.dispose();
  }
}
