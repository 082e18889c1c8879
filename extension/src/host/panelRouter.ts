// The panel's side of the host: opens and revives the panel, relays its analysis requests to the
// backend and answers only the webview instance that asked, and keeps what the panel reports
// showing (the editor tint's layer/head, and what the exports draw).
import * as vscode from 'vscode';
import type { Backend } from './backend';
import { CancellationTokenSource } from './backendProcess';
import { AttentionPanel, PANEL_VIEW_TYPE } from './panel';
import type { Session, ShownAnalysis } from './session';
import { decodeFloat32 } from '../shared/matrix';
import type { AnalyzedModel } from '../shared/protocol';
import type { AnalysisView, DiffView, HostToWebview, RpcRequest, ShownView, WebviewToHost } from '../shared/messages';

export const GONE =
  'this analysis is gone (the backend restarted or the text changed): run “Show Attention for Selection” again';

type RpcAnswer = Extract<HostToWebview, { type: 'rpcResult' | 'rpcError' }>;

const INITIAL_VIEW: ShownView = { layer: 0, head: 0, view: 'head', hideSpecial: false, wordLevel: false };

export class PanelRouter implements vscode.Disposable {
  private current: AttentionPanel | undefined;
  private panelSubs: vscode.Disposable[] = [];
  /** The panel's analysis requests in flight, by requestId, so a 'cancelRpc' reaches the backend as $/cancelRequest. */
  private readonly rpcCts = new Map<number, CancellationTokenSource>();
  private readonly disposables: vscode.Disposable[] = [];
  private shownView: ShownView = INITIAL_VIEW;
  /** The analysis the shown one is compared with (Compare with …), while the Diff tab shows that comparison. */
  comparedWith: Session | undefined;
  /** The comparison last sent to the panel (read by the integration tests). */
  lastDiff: DiffView | undefined;
  /** What the webview last painted (read by the integration tests). */
  rendered: { layer: number; head: number; litPixels: number } | undefined;
  private readonly layerHeadEmitter = new vscode.EventEmitter<void>();
  /** The panel now shows another layer or head: the editor tint follows. */
  readonly onDidChangeLayerHead = this.layerHeadEmitter.event;
  private readonly hoverEmitter = new vscode.EventEmitter<number | null>();
  /** A token hovered in the panel (null: none): the editor tints by it. */
  readonly onDidHoverToken = this.hoverEmitter.event;
  private readonly sectionEmitter = new vscode.EventEmitter<number | null>();
  /** A section hovered in the Sections tab (its index; null: none): the editor marks its range. */
  readonly onDidHoverSection = this.sectionEmitter.event;
  private readonly openEmitter = new vscode.EventEmitter<void>();
  /** A webview instance started (the panel opened, or was shown again after hiding). */
  readonly onDidOpenWebview = this.openEmitter.event;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly backend: Backend,
    private readonly shown: ShownAnalysis,
  ) {
    this.disposables.push(
      this.layerHeadEmitter,
      this.hoverEmitter,
      this.sectionEmitter,
      this.openEmitter,
      shown.onDidInvalidate((message) => this.current?.post({ type: 'busy', message })),
      vscode.window.registerWebviewPanelSerializer(PANEL_VIEW_TYPE, {
        deserializeWebviewPanel: async (panel, state: unknown) => this.revive(panel, state),
      }),
    );
  }

  get panel(): AttentionPanel | undefined {
    return this.current;
  }

  /** What the panel reports showing (its last 'viewChanged'). */
  get view(): ShownView {
    return this.shownView;
  }

  /** The panel, opened beside the editor if it is not. */
  ensurePanel(): AttentionPanel {
    if (this.current && AttentionPanel.instance === this.current) {
      this.current.panel.reveal(vscode.ViewColumn.Beside, true);
      return this.current;
    }
    return this.attach(AttentionPanel.createOrShow(this.context.extensionUri));
  }

  post(message: HostToWebview): void {
    if (message.type === 'diff') this.lastDiff = message.diff;
    this.current?.post(message);
  }

  /** Sends a new analysis; the panel keeps its layer/head when the new model has them (else layer 0, head 0). */
  showAnalysis(panel: AttentionPanel, analysis: AnalysisView, hadAnalysis: boolean): void {
    const { layer, head } = this.shownView;
    this.comparedWith = undefined; // a comparison, if one follows, is sent after the analysis
    if (!hadAnalysis || !fits(analysis.model, layer, head)) this.shownView = { ...this.shownView, layer: 0, head: 0 };
    panel.post({ type: 'analysis', analysis, state: { layer: this.shownView.layer, head: this.shownView.head } });
  }

  private attach(panel: AttentionPanel): AttentionPanel {
    for (const d of this.panelSubs.splice(0)) d.dispose();
    this.current = panel;
    this.panelSubs.push(
      panel.onMessage((m) => void this.onMessage(m)),
      panel.onDidHide(() => this.cancelRequests()),
      panel.onDidDispose(() => {
        this.cancelRequests();
        this.current = undefined;
        this.shownView = INITIAL_VIEW;
        this.shown.clear();
        for (const d of this.panelSubs.splice(0)) d.dispose();
      }),
    );
    return panel;
  }

  private async revive(webviewPanel: vscode.WebviewPanel, state: unknown): Promise<void> {
    const panel = this.attach(AttentionPanel.revive(webviewPanel, this.context.extensionUri));
    // The webview restores its view from getState(); the analysis itself lives in the backend process,
    // which did not survive the reload: ask for a new one.
    const s = state as { analysis?: { source?: string } } | undefined;
    const was = s?.analysis?.source ? ` (was ${s.analysis.source})` : '';
    const message = `Select text and run “AttentionViz: Show Attention for Selection” to refresh${was}.`;
    panel.post({ type: 'busy', message });
  }

  /** A message as if the panel sent it (the integration tests hover a section this way). */
  receive(m: WebviewToHost): Promise<void> {
    return this.onMessage(m);
  }

  private async onMessage(m: WebviewToHost): Promise<void> {
    // Only the webview that asked gets the answer: not a later panel, nor the same panel's next webview (both
    // number their requests from 1 again).
    const panel = this.current,
      generation = panel?.generation;
    switch (m.type) {
      case 'rpc': {
        const reply = await this.answerRpc(m);
        if (panel && this.current === panel && panel.generation === generation) panel.post(reply);
        return;
      }
      case 'ready':
        this.openEmitter.fire();
        return;
      case 'cancelRpc':
        this.rpcCts.get(m.requestId)?.cancel();
        return;
      case 'viewChanged': {
        const { type: _type, ...view } = m;
        const layerHeadChanged = view.layer !== this.shownView.layer || view.head !== this.shownView.head;
        this.shownView = view;
        if (layerHeadChanged) this.layerHeadEmitter.fire();
        return;
      }
      case 'hoverToken':
        this.hoverEmitter.fire(m.token);
        return;
      case 'hoverSection':
        this.sectionEmitter.fire(m.index);
        return;
      case 'rendered':
        this.rendered = { layer: m.layer, head: m.head, litPixels: m.litPixels };
        return;
      case 'log':
        this.backend.log(`[webview] ${m.message}`);
        return;
      default:
        return;
    }
  }

  /**
   * An analysis method for the panel: only on the shown, still valid analysis, or the one it is compared with (the
   * Diff tab's "before"); matrices decoded to an ArrayBuffer.
   */
  async answerRpc(m: RpcRequest): Promise<RpcAnswer> {
    const session = this.shown.session;
    const id = m.params.analysisId;
    const isShown = session?.valid && id === session.analysisId;
    const isBefore = session?.valid && this.comparedWith?.alive && id === this.comparedWith.analysisId;
    if (!isShown && !isBefore) {
      return { type: 'rpcError', requestId: m.requestId, message: GONE };
    }
    const cts = new CancellationTokenSource();
    this.rpcCts.set(m.requestId, cts);
    try {
      // The webview's params were checked for shape at its boundary; the backend checks their values.
      const r = await this.backend.request(m.method, m.params, cts.token);
      if ('data' in r) {
        // Matrices (view, rollout) travel as an ArrayBuffer, not as base64 or JSON numbers.
        const { data, ...rest } = r;
        const values = decodeFloat32(data, r.rows * r.cols);
        return { type: 'rpcResult', requestId: m.requestId, result: rest, data: toArrayBuffer(values) };
      }
      return { type: 'rpcResult', requestId: m.requestId, result: r };
    } catch (e) {
      return { type: 'rpcError', requestId: m.requestId, message: e instanceof Error ? e.message : String(e) };
    } finally {
      if (this.rpcCts.get(m.requestId) === cts) this.rpcCts.delete(m.requestId);
    }
  }

  private cancelRequests(): void {
    for (const cts of this.rpcCts.values()) cts.cancel();
    this.rpcCts.clear();
  }

  dispose(): void {
    this.cancelRequests();
    this.current?.dispose();
    for (const d of this.disposables.splice(0)) d.dispose();
  }
}

function fits(model: AnalyzedModel, layer: number, head: number): boolean {
  return layer < model.layers && head < model.heads;
}

/** The values' own buffer when they fill it, else a copy (structured clone sends whole buffers). */
function toArrayBuffer(values: Float32Array): ArrayBuffer {
  const whole = values.byteOffset === 0 && values.byteLength === values.buffer.byteLength;
  return (whole ? values.buffer : values.slice().buffer) as ArrayBuffer;
}
