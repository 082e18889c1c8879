// Glue between the editor, the backend and the panel: analyze a selection, serve matrices to the
// panel, tint the editor, answer hovers, follow the selection.
import * as vscode from 'vscode';
import { Backend } from './backend';
import { CancelledError, CancellationTokenSource } from './backendProcess';
import { AttentionPanel, type PanelView } from './panel';
import { Decorations } from './decorations';
import { Session } from './session';
import { readConfig } from './config';
import { SetupError } from './locate';
import { Methods, type AnalyzeResult, type MatrixResult, type RowResult, type ModelInfo, type RenderPngParams, type RenderPngResult } from '../shared/protocol';
import { decodeFloat32 } from '../shared/matrix';
import { displayToken, truncationSummary } from '../shared/tokens';
import { parseWebviewMessage, type AnalysisView, type HostToWebview, type WebviewToHost } from '../shared/messages';

const GONE = 'this analysis is gone (the backend restarted or the text changed): run “Show Attention for Selection” again';

export interface TestApi {
  backendPid(): number | undefined;
  backendState(): string;
  session(): { seq: number; analysisId: string; tokens: number; pairTokens: number; valid: boolean; layer: number; head: number; truncated: boolean; truncatedAt?: number } | undefined;
  decorationCount(): number;
  lastRendered(): { layer: number; head: number; litPixels: number } | undefined;
  panelOpen(): boolean;
  focusToken(token: number | null): Promise<void>;
  /** What the panel would get for an 'rpc' message (validated like one): rpcResult with the data's byte length, or rpcError. */
  analysisRpc(method: string, params: Record<string, unknown>): Promise<{ type: string; result?: Record<string, unknown>; dataBytes?: number; message?: string }>;
  /** What the panel last reported showing, and a way to change it as its own controls would. */
  panelView(): PanelView | undefined;
  setPanelView(view: { layer?: number; head?: number; view?: 'head' | 'grid'; hideSpecial?: boolean; wordLevel?: boolean }): void;
  /** render/png straight from the backend, to compare with what Export Heatmap PNG saved. */
  renderPng(params: Omit<RenderPngParams, 'analysisId'> & { analysisId?: string }): Promise<RenderPngResult>;
}

export class Controller implements vscode.Disposable {
  private session: Session | undefined;
  private panel: AttentionPanel | undefined;
  private panelSubs: vscode.Disposable[] = [];
  private analyzeCts: CancellationTokenSource | undefined;
  private focusCts: CancellationTokenSource | undefined;
  /** The panel's analysis requests in flight, by requestId, so a 'cancelRpc' reaches the backend as $/cancelRequest. */
  private readonly rpcCts = new Map<number, CancellationTokenSource>();
  private followTimer: NodeJS.Timeout | undefined;
  private readonly disposables: vscode.Disposable[] = [];
  private readonly decorations = new Decorations();
  private rendered: { layer: number; head: number; litPixels: number } | undefined;
  private selectedModel: string | undefined;
  private sessionSeq = 0;

  constructor(private readonly context: vscode.ExtensionContext, private readonly backend: Backend) {
    this.selectedModel = context.workspaceState.get<string>('attentionViz.model');
    this.disposables.push(
      this.decorations,
      vscode.languages.registerHoverProvider({ scheme: '*' }, { provideHover: (d, p, t) => this.provideHover(d, p, t) }),
      vscode.window.onDidChangeTextEditorSelection((e) => this.onSelection(e)),
      vscode.workspace.onDidChangeTextDocument((e) => this.onEdit(e)),
      vscode.window.onDidChangeVisibleTextEditors(() => void this.refreshDecorations()),
      // A new backend process does not know the old analysis: its overlay and hovers are gone.
      backend.onDidChangeState((s) => { if (s.kind === 'starting' || s.kind === 'error' || s.kind === 'stopped') this.invalidate('The backend restarted: run “Show Attention for Selection” again to refresh.'); }),
      vscode.window.registerWebviewPanelSerializer('attentionViz.panel', {
        deserializeWebviewPanel: async (panel, state: unknown) => this.revive(panel, state),
      }),
    );
  }

  // ---------- commands ----------

  async showAttention(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (!editor) { void vscode.window.showInformationMessage('AttentionViz: open a file and select some text first.'); return; }
    const doc = editor.document;
    // Two selections (multi-cursor): a sentence pair, first text = the earlier selection.
    const nonEmpty = editor.selections.filter((s) => !s.isEmpty).sort((a, b) => a.start.compareTo(b.start));
    if (nonEmpty.length === 2 && !nonEmpty[0]!.intersection(nonEmpty[1]!)) {
      const [a, b] = nonEmpty as [vscode.Selection, vscode.Selection];
      const textA = doc.getText(a), textB = doc.getText(b);
      if (textA.trim() && textB.trim()) { await this.analyze(doc, a, textA, true, { range: b, text: textB }); return; }
    }
    let range: vscode.Range = editor.selection;
    if (editor.selection.isEmpty) range = doc.lineAt(editor.selection.active.line).range; // empty selection → current line
    const text = doc.getText(range);
    if (!text.trim()) { void vscode.window.showInformationMessage('AttentionViz: the selection (or current line) is empty.'); return; }
    await this.analyze(doc, range, text, true);
  }

  private async analyze(doc: vscode.TextDocument, range: vscode.Range, text: string, withProgress: boolean,
    pair?: { range: vscode.Range; text: string }): Promise<void> {
    this.analyzeCts?.cancel(); // a newer request makes the older one stale: $/cancelRequest
    const cts = new CancellationTokenSource();
    this.analyzeCts = cts;
    const cfg = readConfig();
    const modelId = cfg.modelPath.trim() || this.selectedModel;
    const params = { text, maxTokens: cfg.maxTokens, ...(modelId ? { modelId } : {}), ...(pair ? { textPair: pair.text } : {}) };
    const started = Date.now();
    const panel = this.ensurePanel();
    panel.post({ type: 'busy', message: `Analyzing ${text.length} characters…` });
    const run = async (token?: vscode.CancellationToken) => {
      token?.onCancellationRequested(() => cts.cancel());
      return this.backend.request<AnalyzeResult>(Methods.analyze, params, cts.token, 'analyzing');
    };
    let result: AnalyzeResult;
    try {
      result = withProgress
        ? await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'AttentionViz: analyzing selection…', cancellable: true }, (_p, token) => run(token))
        : await run();
    } catch (e) {
      if (e instanceof CancelledError || cts.token.isCancellationRequested) return;
      const message = e instanceof Error ? e.message : String(e);
      this.backend.log(`analyze failed: ${message}`);
      panel.post({ type: 'error', message: e instanceof SetupError ? `${message} ${e.hint}` : message });
      // A setup problem (no backend, no dotnet) was already told once by the Backend.
      if (withProgress && !(e instanceof SetupError)) void vscode.window.showErrorMessage(message.startsWith('AttentionViz') ? message : `AttentionViz: ${message}`);
      return;
    } finally {
      if (this.analyzeCts === cts) this.analyzeCts = undefined;
    }
    if (cts.token.isCancellationRequested) return;
    const keep = this.session && this.session.layer < result.model.layers && this.session.head < result.model.heads;
    const session = new Session(++this.sessionSeq, doc.uri, doc.version, doc.offsetAt(range.start), text, result,
      pair ? { baseOffset: doc.offsetAt(pair.range.start), text: pair.text } : undefined);
    if (keep && this.session) { session.layer = this.session.layer; session.head = this.session.head; }
    this.release(this.session);
    this.session = session;
    this.backend.log(`analyzed ${result.tokens.length} tokens in ${result.elapsedMs} ms (round trip ${Date.now() - started} ms)${result.truncated ? `, truncated at ${result.truncatedAt}` : ''}`);
    const startLine = range.start.line + 1, endLine = range.end.line + 1;
    const pairLine = pair ? ` + ${pair.range.start.line + 1}` : '';
    const source = `${vscode.workspace.asRelativePath(doc.uri)}:${startLine}${endLine !== startLine ? '–' + endLine : ''}${pairLine}`;
    const view: AnalysisView = {
      analysisId: result.analysisId, model: result.model, tokens: result.tokens, text, truncated: result.truncated,
      ...(result.truncatedAt !== undefined ? { truncatedAt: result.truncatedAt } : {}), elapsedMs: result.elapsedMs, source,
    };
    panel.setTitle(`Attention: ${source}`);
    panel.post({ type: 'analysis', analysis: view, state: { layer: session.layer, head: session.head } });
    if (result.truncated) {
      void vscode.window.showWarningMessage(`AttentionViz: ${truncationSummary(result.tokens, text, result.truncatedAt)}`);
    }
    await this.refreshDecorations();
  }

  async restartBackend(): Promise<void> {
    try {
      await this.backend.restart();
      void vscode.window.setStatusBarMessage('AttentionViz: backend restarted', 3000);
    } catch (e) {
      if (!(e instanceof SetupError)) void vscode.window.showErrorMessage(e instanceof Error ? e.message : String(e));
    }
  }

  async selectModel(): Promise<void> {
    let models: ModelInfo[];
    try {
      const modelPath = readConfig().modelPath.trim();
      models = await this.backend.request<ModelInfo[]>(Methods.modelsList, modelPath ? { paths: [modelPath] } : {});
    } catch (e) {
      void vscode.window.showErrorMessage(e instanceof Error ? e.message : String(e));
      return;
    }
    const pick = await vscode.window.showQuickPick(models.map((m) => ({
      label: m.name, description: `${m.architecture} · ${m.layers} layers × ${m.heads} heads`, detail: m.source, id: m.id,
      picked: m.id === (this.selectedModel ?? 'default'),
    })), { title: 'AttentionViz: model', placeHolder: 'Model used for the next analysis' });
    if (!pick) return;
    this.selectedModel = pick.id;
    await this.context.workspaceState.update('attentionViz.model', pick.id);
    if (readConfig().modelPath.trim()) void vscode.window.showInformationMessage('AttentionViz: attentionViz.modelPath is set and takes precedence over the selected model.');
  }

  /**
   * Draws what the panel shows (one layer/head, or the all-heads grid, with its view options) with the backend's
   * SkiaSharp renderer, so the image has labels and a colour bar whatever the panel's size, and saves it where the user
   * picks; the dialog starts next to the analysed file.
   */
  async exportPng(target?: vscode.Uri): Promise<vscode.Uri | undefined> {
    const panel = AttentionPanel.instance;
    const session = this.session;
    if (!panel || !session) { void vscode.window.showInformationMessage('AttentionViz: show attention for a selection first.'); return; }
    if (!session.valid) { void vscode.window.showInformationMessage(`AttentionViz: ${GONE}`); return; }
    const { layer, head, view, hideSpecial, wordLevel } = panel.viewState;
    const grid = view === 'grid';
    const stem = session.uri.path.slice(session.uri.path.lastIndexOf('/') + 1).replace(/\.[^.]*$/, '') || 'selection';
    const name = `${stem}-attention-${grid ? 'grid' : `L${layer < 0 ? 'mean' : layer}-H${head < 0 ? 'mean' : head}`}.png`;
    const folder = session.uri.scheme === 'untitled' ? vscode.workspace.workspaceFolders?.[0]?.uri : vscode.Uri.joinPath(session.uri, '..');
    const uri = target ?? await vscode.window.showSaveDialog({
      title: 'AttentionViz: export heatmap PNG', filters: { PNG: ['png'] }, ...(folder ? { defaultUri: vscode.Uri.joinPath(folder, name) } : {}),
    });
    if (!uri) return;
    const kind = vscode.window.activeColorTheme.kind;
    const params: RenderPngParams = {
      analysisId: session.analysisId, ...(grid ? { grid: true } : { layer, head }), hideSpecial, wordLevel,
      theme: kind === vscode.ColorThemeKind.Dark || kind === vscode.ColorThemeKind.HighContrast ? 'dark' : 'light',
    };
    try {
      const image = await this.backend.request<RenderPngResult>(Methods.renderPng, params);
      if (!image.png) throw new Error('the backend sent no image');
      await vscode.workspace.fs.writeFile(uri, Buffer.from(image.png, 'base64'));
      void vscode.window.setStatusBarMessage(`AttentionViz: saved ${vscode.workspace.asRelativePath(uri)} (${image.width}×${image.height})`, 4000);
      return uri;
    } catch (e) {
      void vscode.window.showErrorMessage(`AttentionViz: PNG export failed: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
  }

  /**
   * Writes the analysis through the backend's attention/export: the visible layer/head as CSV or JSON, or the whole
   * analysis (every layer and head, ids, offsets, hidden states) as safetensors. The format follows the file's extension.
   */
  async exportAttention(target?: vscode.Uri): Promise<vscode.Uri | undefined> {
    const panel = AttentionPanel.instance;
    if (!panel || !this.session) { void vscode.window.showInformationMessage('AttentionViz: show attention for a selection first.'); return; }
    if (!this.session.valid) { void vscode.window.showInformationMessage(`AttentionViz: ${GONE}`); return; }
    const { layer, head } = panel.viewState;
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
    const name = `attention-L${layer < 0 ? 'mean' : layer}-H${head < 0 ? 'mean' : head}.csv`;
    const uri = target ?? await vscode.window.showSaveDialog({
      title: 'AttentionViz: export attention',
      filters: { 'CSV (this layer/head)': ['csv'], 'JSON (this layer/head)': ['json'], 'safetensors (whole analysis)': ['safetensors'] },
      ...(folder ? { defaultUri: vscode.Uri.joinPath(folder, name) } : {}),
    });
    if (!uri) return;
    const format = uri.path.slice(uri.path.lastIndexOf('.') + 1).toLowerCase();
    if (!['csv', 'json', 'safetensors'].includes(format)) {
      void vscode.window.showErrorMessage('AttentionViz: export to a .csv, .json or .safetensors file.');
      return;
    }
    const params = { analysisId: this.session.analysisId, format, path: uri.fsPath, ...(format === 'safetensors' ? {} : { layer, head }) };
    try {
      const result = await this.backend.request<{ path: string; bytes: number }>(Methods.exportAttention, params);
      void vscode.window.setStatusBarMessage(`AttentionViz: saved ${vscode.workspace.asRelativePath(uri)} (${result.bytes} bytes)`, 4000);
      return uri;
    } catch (e) {
      void vscode.window.showErrorMessage(`AttentionViz: export failed: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
  }

  // ---------- panel ----------

  private ensurePanel(): AttentionPanel {
    if (this.panel && AttentionPanel.instance === this.panel) { this.panel.panel.reveal(vscode.ViewColumn.Beside, true); return this.panel; }
    return this.attach(AttentionPanel.createOrShow(this.context.extensionUri));
  }

  private attach(panel: AttentionPanel): AttentionPanel {
    for (const d of this.panelSubs.splice(0)) d.dispose();
    this.panel = panel;
    this.panelSubs.push(
      panel.onMessage((m) => void this.onPanelMessage(m)),
      panel.onDidHide(() => this.cancelPanelRequests()),
      panel.onDidDispose(() => {
        this.cancelPanelRequests();
        this.panel = undefined;
        this.release(this.session);
        this.session = undefined;
        this.decorations.clear();
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
    panel.post({ type: 'busy', message: `Select text and run “AttentionViz: Show Attention for Selection” to refresh${s?.analysis?.source ? ` (was ${s.analysis.source})` : ''}.` });
  }

  private async onPanelMessage(m: WebviewToHost): Promise<void> {
    // Only the webview that asked gets the answer: not a later panel, nor the same panel's next webview (both
    // number their requests from 1 again).
    const panel = this.panel, generation = panel?.generation;
    const answer = (reply: HostToWebview) => { if (panel && this.panel === panel && panel.generation === generation) panel.post(reply); };
    switch (m.type) {
      case 'requestMatrix': {
        const session = this.session;
        if (!session || m.analysisId !== session.analysisId || !session.valid) {
          answer({ type: 'matrixError', requestId: m.requestId, message: GONE });
          return;
        }
        try {
          const r = await this.backend.request<MatrixResult>(Methods.matrix, {
            analysisId: m.analysisId, layer: m.layer, head: m.head, ...(m.maxSize ? { maxSize: m.maxSize } : {}),
          });
          const data = decodeFloat32(r.data, r.rows * r.cols);
          const buffer = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data.buffer as ArrayBuffer : data.slice().buffer as ArrayBuffer;
          answer({ type: 'matrix', requestId: m.requestId, rows: r.rows, cols: r.cols, layer: r.layer, head: r.head, pooled: !!r.pooled, poolFactor: r.poolFactor ?? 1, data: buffer });
        } catch (e) {
          answer({ type: 'matrixError', requestId: m.requestId, message: e instanceof Error ? e.message : String(e) });
        }
        return;
      }
      case 'rpc':
        answer(await this.answerRpc(m));
        return;
      case 'cancelRpc':
        this.rpcCts.get(m.requestId)?.cancel();
        return;
      case 'viewChanged':
        if (this.session) { this.session.layer = m.layer; this.session.head = m.head; }
        await this.refreshDecorations();
        return;
      case 'hoverToken':
        await this.refreshDecorations(m.token ?? undefined);
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

  /** An analysis method for the panel: only on the shown, still valid analysis; matrices decoded to an ArrayBuffer. */
  private async answerRpc(m: Extract<WebviewToHost, { type: 'rpc' }>): Promise<HostToWebview> {
    const session = this.session;
    if (!session || m.params.analysisId !== session.analysisId || !session.valid) {
      return { type: 'rpcError', requestId: m.requestId, message: GONE };
    }
    const cts = new CancellationTokenSource();
    this.rpcCts.set(m.requestId, cts);
    try {
      const r = await this.backend.request<Record<string, unknown>>(m.method, m.params, cts.token);
      if (typeof r.data === 'string' && typeof r.rows === 'number' && typeof r.cols === 'number') {
        // Matrices (view, rollout) travel as an ArrayBuffer, not as base64 or JSON numbers.
        const data = decodeFloat32(r.data, r.rows * r.cols);
        const buffer = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data.buffer as ArrayBuffer : data.slice().buffer as ArrayBuffer;
        const { data: _omit, ...rest } = r;
        return { type: 'rpcResult', requestId: m.requestId, result: rest, data: buffer };
      }
      return { type: 'rpcResult', requestId: m.requestId, result: r };
    } catch (e) {
      return { type: 'rpcError', requestId: m.requestId, message: e instanceof Error ? e.message : String(e) };
    } finally {
      if (this.rpcCts.get(m.requestId) === cts) this.rpcCts.delete(m.requestId);
    }
  }

  // ---------- editor ----------

  /** Re-tints the analyzed range for the token under the cursor (or `focus`, a token hovered in the panel). */
  private async refreshDecorations(focus?: number): Promise<void> {
    const session = this.session;
    if (!session || !session.valid) { this.decorations.clear(); return; }
    const editor = vscode.window.visibleTextEditors.find((e) => e.document.uri.toString() === session.uri.toString());
    if (!editor) return;
    let token = focus ?? session.tokenAt(editor.document, editor.selection.active);
    if (token < 0) token = session.result.tokens.findIndex((t) => !t.special);
    if (token < 0) return;
    this.focusCts?.cancel();
    const cts = new CancellationTokenSource();
    this.focusCts = cts;
    try {
      const row = await this.backend.request<RowResult>(Methods.row, {
        analysisId: session.analysisId, layer: session.layer, head: session.head, token, direction: 'from',
      }, cts.token);
      if (cts.token.isCancellationRequested || this.session !== session || !session.valid) return;
      this.decorations.apply(session, token, row.scores);
      this.panel?.post({ type: 'highlightToken', token });
    } catch (e) {
      if (!(e instanceof CancelledError)) this.backend.log(`decorations: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private onSelection(e: vscode.TextEditorSelectionChangeEvent): void {
    const session = this.session;
    if (!this.panel) return;
    const sameDoc = session && e.textEditor.document.uri.toString() === session.uri.toString();
    const cfg = readConfig();
    if (cfg.followSelection && !e.selections[0]!.isEmpty) {
      if (this.followTimer) clearTimeout(this.followTimer);
      this.analyzeCts?.cancel(); // the pending analysis is stale now
      const editor = e.textEditor;
      this.followTimer = setTimeout(() => {
        this.followTimer = undefined;
        const sel = editor.selection;
        const text = editor.document.getText(sel);
        if (text.trim()) void this.analyze(editor.document, sel, text, false);
      }, 300);
      return;
    }
    if (sameDoc && session!.valid) void this.refreshDecorations();
  }

  private onEdit(e: vscode.TextDocumentChangeEvent): void {
    const session = this.session;
    if (!session || !session.valid || e.document.uri.toString() !== session.uri.toString() || e.contentChanges.length === 0) return;
    // Any change at or before the analyzed range shifts or changes its tokens: the overlay would be stale.
    const end = session.endOffset;
    if (e.contentChanges.some((c) => c.rangeOffset <= end)) this.invalidate('The text changed: run “Show Attention for Selection” again to refresh.');
  }

  private invalidate(message: string): void {
    const session = this.session;
    if (!session || !session.valid) return;
    session.valid = false;
    this.focusCts?.cancel();
    this.decorations.clear();
    this.panel?.post({ type: 'busy', message });
  }

  private async provideHover(doc: vscode.TextDocument, pos: vscode.Position, token: vscode.CancellationToken): Promise<vscode.Hover | undefined> {
    const session = this.session;
    if (!session || !session.valid || doc.version !== session.version && !this.unchangedSince(session, doc)) return undefined;
    const index = session.tokenAt(doc, pos);
    if (index < 0) return undefined;
    const cts = new CancellationTokenSource();
    token.onCancellationRequested(() => cts.cancel());
    let row: RowResult;
    try {
      row = await this.backend.request<RowResult>(Methods.row, {
        analysisId: session.analysisId, layer: session.layer, head: session.head, token: index, direction: 'from', topK: 5,
      }, cts.token);
    } catch {
      return undefined;
    }
    const tokens = session.result.tokens;
    const label = (i: number) => {
      const t = tokens[i];
      return t ? displayToken(t.text).label : `#${i}`;
    };
    const where = `${session.layer < 0 ? 'mean of layers' : `layer ${session.layer}`}, ${session.head < 0 ? 'mean of heads' : `head ${session.head}`}`;
    const md = new vscode.MarkdownString();
    md.appendMarkdown('**AttentionViz** · ');
    md.appendText(`${where}: “${label(index)}” attends to`);
    md.appendMarkdown('\n\n');
    row.top.slice(0, 5).forEach((t, k) => {
      md.appendMarkdown(`${k + 1}. `);
      md.appendText(`“${label(t.token)}” `); // token text escaped, never markup
      md.appendMarkdown(`\`${t.score.toFixed(4)}\`\n`);
    });
    return new vscode.Hover(md, session.tokenRange(doc, index));
  }

  private cancelPanelRequests(): void {
    for (const cts of this.rpcCts.values()) cts.cancel();
    this.rpcCts.clear();
  }

  /** Lets the backend reuse a replaced analysis's memory (nothing asks for it again: requests carry the current id). */
  private release(session: Session | undefined): void {
    const kind = this.backend.state.kind;
    if (!session || !session.valid || (kind !== 'ready' && kind !== 'busy')) return;
    this.backend.request(Methods.release, { analysisId: session.analysisId })
      .catch((e: unknown) => this.backend.log(`release ${session.analysisId}: ${e instanceof Error ? e.message : String(e)}`));
  }

  private unchangedSince(session: Session, doc: vscode.TextDocument): boolean {
    // Versions also change on edits after the range, which do not invalidate the session (onEdit decides).
    return session.valid && doc.uri.toString() === session.uri.toString();
  }

  testApi(): TestApi {
    return {
      backendPid: () => this.backend.pid,
      backendState: () => this.backend.state.kind,
      session: () => this.session && {
        seq: this.session.seq, analysisId: this.session.analysisId, tokens: this.session.result.tokens.length,
        pairTokens: this.session.result.tokens.filter((t) => t.typeId === 1 && !t.special).length, valid: this.session.valid, layer: this.session.layer, head: this.session.head,
        truncated: this.session.result.truncated, ...(this.session.result.truncatedAt !== undefined ? { truncatedAt: this.session.result.truncatedAt } : {}),
      },
      decorationCount: () => this.decorations.count,
      lastRendered: () => this.rendered,
      panelOpen: () => !!this.panel,
      focusToken: (t) => this.refreshDecorations(t ?? undefined),
      analysisRpc: async (method, params) => {
        const m = parseWebviewMessage({ type: 'rpc', requestId: 0, method, params });
        if (!m || m.type !== 'rpc') return { type: 'rejected' };
        const a = await this.answerRpc(m);
        if (a.type === 'rpcResult') return { type: a.type, result: a.result, ...(a.data ? { dataBytes: a.data.byteLength } : {}) };
        return a.type === 'rpcError' ? { type: a.type, message: a.message } : { type: a.type };
      },
      panelView: () => this.panel?.viewState,
      setPanelView: (view) => this.panel?.post({ type: 'setView', ...view }),
      renderPng: (params) => this.backend.request<RenderPngResult>(Methods.renderPng, { analysisId: this.session?.analysisId, ...params }),
    };
  }

  dispose(): void {
    this.analyzeCts?.cancel();
    this.focusCts?.cancel();
    if (this.followTimer) clearTimeout(this.followTimer);
    this.panel?.dispose();
    for (const d of this.disposables.splice(0)) d.dispose();
  }
}
