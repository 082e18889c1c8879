// The attention panel: one webview panel beside the editor (createOrShow / revive / dispose).
import * as vscode from 'vscode';
import { makeNonce, panelHtml } from './html';
import { parseWebviewMessage, type HostToWebview, type WebviewToHost } from '../shared/messages';

export const PANEL_VIEW_TYPE = 'attentionViz.panel';

export class AttentionPanel implements vscode.Disposable {
  private static current: AttentionPanel | undefined;
  private readonly disposables: vscode.Disposable[] = [];
  private readonly messageEmitter = new vscode.EventEmitter<WebviewToHost>();
  readonly onMessage = this.messageEmitter.event;
  private readonly disposeEmitter = new vscode.EventEmitter<void>();
  readonly onDidDispose = this.disposeEmitter.event;
  private readonly hideEmitter = new vscode.EventEmitter<void>();
  /** The webview was torn down (hidden): its requests in flight are moot. */
  readonly onDidHide = this.hideEmitter.event;
  /** Counts webview instances: an answer is for the instance that asked (see onDidHide). */
  generation = 0;
  private ready = false;
  private queue: HostToWebview[] = [];

  static get instance(): AttentionPanel | undefined {
    return AttentionPanel.current;
  }

  static createOrShow(extensionUri: vscode.Uri): AttentionPanel {
    if (AttentionPanel.current) {
      AttentionPanel.current.panel.reveal(vscode.ViewColumn.Beside, true);
      return AttentionPanel.current;
    }
    const panel = vscode.window.createWebviewPanel(
      PANEL_VIEW_TYPE,
      'Attention',
      { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
      AttentionPanel.options(extensionUri),
    );
    return (AttentionPanel.current = new AttentionPanel(panel, extensionUri));
  }

  static revive(panel: vscode.WebviewPanel, extensionUri: vscode.Uri): AttentionPanel {
    AttentionPanel.current?.dispose();
    panel.webview.options = AttentionPanel.options(extensionUri);
    return (AttentionPanel.current = new AttentionPanel(panel, extensionUri));
  }

  static options(extensionUri: vscode.Uri): vscode.WebviewPanelOptions & vscode.WebviewOptions {
    // Only the built media folder is reachable; state survives hiding through setState, so no retainContextWhenHidden.
    return { enableScripts: true, localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'media')] };
  }

  private constructor(
    readonly panel: vscode.WebviewPanel,
    extensionUri: vscode.Uri,
  ) {
    const webview = panel.webview;
    const media = vscode.Uri.joinPath(extensionUri, 'media');
    panel.iconPath = vscode.Uri.joinPath(media, 'icon.svg');
    webview.html = panelHtml({
      cspSource: webview.cspSource,
      scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(media, 'webview.js')).toString(),
      styleUri: webview.asWebviewUri(vscode.Uri.joinPath(media, 'panel.css')).toString(),
      nonce: makeNonce(),
    });
    this.disposables.push(
      panel.onDidDispose(() => this.dispose()),
      // A hidden webview is torn down (its state lives in getState/setState); messages wait for its next 'ready'.
      panel.onDidChangeViewState((e) => {
        if (e.webviewPanel.visible || !this.ready) return;
        // The hidden webview is gone: answers to its requests would reach the next one under reused request ids.
        this.ready = false;
        this.generation++;
        this.queue = this.queue.filter((q) => !('requestId' in q));
        this.hideEmitter.fire();
      }),
      webview.onDidReceiveMessage((raw) => {
        const m = parseWebviewMessage(raw);
        if (!m) return;
        if (m.type === 'ready') {
          this.ready = true;
          for (const q of this.queue.splice(0)) void webview.postMessage(q);
        }
        this.messageEmitter.fire(m);
      }),
    );
    void vscode.commands.executeCommand('setContext', 'attentionViz.panelOpen', true);
  }

  get visible(): boolean {
    return this.panel.visible;
  }

  /** The last busy, idle or error line sent (what the panel's status says), for the integration tests. */
  lastStatus: { type: string; message: string } | undefined;

  post(message: HostToWebview): void {
    if (message.type === 'error' || message.type === 'busy' || message.type === 'idle')
      this.lastStatus = { type: message.type, message: message.message };
    // Messages sent before the webview's script runs would be lost: queue them until 'ready'.
    if (!this.ready) {
      if (message.type === 'analysis')
        this.queue = this.queue.filter((q) => q.type !== 'analysis' && q.type !== 'rpcResult');
      this.queue.push(message);
      return;
    }
    void this.panel.webview.postMessage(message);
  }

  setTitle(title: string): void {
    this.panel.title = title;
  }

  private disposed = false;

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (AttentionPanel.current === this) {
      AttentionPanel.current = undefined;
      void vscode.commands.executeCommand('setContext', 'attentionViz.panelOpen', false);
    }
    this.disposeEmitter.fire();
    for (const d of this.disposables.splice(0)) d.dispose();
    this.panel.dispose();
    this.messageEmitter.dispose();
    this.disposeEmitter.dispose();
    this.hideEmitter.dispose();
  }
}
