// The editor's side of the shown analysis: the tint (by the token under the cursor, or hovered in
// the panel), hovers with the top scores, follow-selection, and invalidation on edits.
import * as vscode from 'vscode';
import type { Backend } from './backend';
import { CancelledError, CancellationTokenSource } from './backendProcess';
import { Decorations } from './decorations';
import type { PanelRouter } from './panelRouter';
import type { Session, ShownAnalysis } from './session';
import { readConfig } from './config';
import { Methods, type RowParams, type RowResult } from '../shared/protocol';
import { tokenLabel } from '../shared/tokens';

/** Analyzes a selection without a progress notification (follow-selection), and cancels a pending one. */
export interface SelectionAnalyzer {
  analyzeQuietly(doc: vscode.TextDocument, range: vscode.Range, text: string): Promise<void>;
  cancel(): void;
}

export class EditorOverlay implements vscode.Disposable {
  private readonly decorations = new Decorations();
  private focusCts: CancellationTokenSource | undefined;
  private followTimer: NodeJS.Timeout | undefined;
  /** The cursor's token last told to the panel, so it is told again only when it changes. */
  private toldFocus: { session: Session; token: number } | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly backend: Backend,
    private readonly shown: ShownAnalysis,
    private readonly router: PanelRouter,
    private readonly analyzer: SelectionAnalyzer,
  ) {
    this.disposables.push(
      this.decorations,
      vscode.languages.registerHoverProvider(
        { scheme: '*' },
        {
          provideHover: (d, p, t) => this.provideHover(d, p, t),
        },
      ),
      vscode.window.onDidChangeTextEditorSelection((e) => this.onSelection(e)),
      vscode.workspace.onDidChangeTextDocument((e) => this.onEdit(e)),
      vscode.window.onDidChangeVisibleTextEditors(() => void this.refresh()),
      shown.onDidChange(() => {
        if (shown.session?.valid) {
          void this.refresh();
          return;
        }
        this.focusCts?.cancel();
        this.decorations.clear();
      }),
      router.onDidChangeLayerHead(() => void this.refresh()),
      router.onDidHoverToken((token) => void this.refresh(token ?? undefined)),
      router.onDidHoverSection((index) => this.markSection(index)),
      // A new webview (shown again after hiding) has no highlight yet.
      router.onDidOpenWebview(() => {
        this.toldFocus = undefined;
        void this.refresh();
      }),
    );
  }

  /** The document range of a section hovered in the panel (read by the integration tests). */
  get markedSection(): vscode.Range | undefined {
    return this.decorations.section;
  }

  private markSection(index: number | null): void {
    const session = this.shown.session;
    if (!session?.valid) return;
    const s = index === null ? undefined : session.sections?.[index];
    this.decorations.markSection(session, s && session.map.sourceRange(s.start, s.end));
  }

  /** The token the tint is by now (read by the integration tests); -1: none. */
  get tintFocus(): number {
    return this.decorations.focus;
  }

  /** Number of ranges tinted now (read by the integration tests). */
  get decorationCount(): number {
    return this.decorations.count;
  }

  /** Re-tints the analyzed range for the token under the cursor (or `focus`, a token hovered in the panel). */
  async refresh(focus?: number): Promise<void> {
    const session = this.shown.session;
    if (!session || !session.valid) {
      this.decorations.clear();
      return;
    }
    const editor = vscode.window.visibleTextEditors.find((e) => e.document.uri.toString() === session.uri.toString());
    if (!editor) return;
    let token = focus ?? session.tokenAt(editor.document, editor.selection.active, true);
    if (token < 0) token = session.result.tokens.findIndex((t) => !t.special);
    if (token < 0) return;
    this.focusCts?.cancel();
    const cts = new CancellationTokenSource();
    this.focusCts = cts;
    try {
      const row = await this.backend.request(Methods.row, this.rowParams(session, token), cts.token);
      if (cts.token.isCancellationRequested || this.shown.session !== session || !session.valid) return;
      this.decorations.apply(session, token, row.scores);
      // The panel highlights the cursor's token; a token it hovered itself it knows already.
      if (focus === undefined) this.tellFocus(session, token);
    } catch (e) {
      if (e instanceof CancelledError) return;
      this.backend.log(`decorations: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private rowParams(session: Session, token: number, topK?: number): RowParams {
    const { layer, head } = this.router.view;
    return { analysisId: session.analysisId, layer, head, token, direction: 'from', ...(topK ? { topK } : {}) };
  }

  private tellFocus(session: Session, token: number): void {
    if (this.toldFocus?.session === session && this.toldFocus.token === token) return;
    this.toldFocus = { session, token };
    this.router.post({ type: 'highlightToken', token });
  }

  private onSelection(e: vscode.TextEditorSelectionChangeEvent): void {
    const session = this.shown.session;
    if (!this.router.panel) return;
    const sameDoc = session && e.textEditor.document.uri.toString() === session.uri.toString();
    if (readConfig().followSelection && !e.selections[0]!.isEmpty) {
      if (this.followTimer) clearTimeout(this.followTimer);
      this.analyzer.cancel(); // the pending analysis is stale now
      const editor = e.textEditor;
      this.followTimer = setTimeout(() => {
        this.followTimer = undefined;
        const sel = editor.selection;
        const text = editor.document.getText(sel);
        if (text.trim()) void this.analyzer.analyzeQuietly(editor.document, sel, text);
      }, 300);
      return;
    }
    if (sameDoc && session!.valid) void this.refresh();
  }

  private onEdit(e: vscode.TextDocumentChangeEvent): void {
    const session = this.shown.session;
    if (!session || !session.valid || e.document.uri.toString() !== session.uri.toString()) return;
    if (e.contentChanges.length === 0) return;
    // Any change at or before the analyzed range shifts or changes its tokens: the overlay would be stale.
    const end = session.endOffset;
    if (e.contentChanges.some((c) => c.rangeOffset <= end)) {
      this.shown.invalidate('The text changed: run “Show Attention for Selection” again to refresh.');
    }
  }

  private async provideHover(
    doc: vscode.TextDocument,
    pos: vscode.Position,
    token: vscode.CancellationToken,
  ): Promise<vscode.Hover | undefined> {
    const session = this.shown.session;
    if (!session || !session.valid) return undefined;
    if (doc.version !== session.version && !this.unchangedSince(session, doc)) return undefined;
    const index = session.tokenAt(doc, pos);
    if (index < 0) return undefined;
    const cts = new CancellationTokenSource();
    token.onCancellationRequested(() => cts.cancel());
    let row: RowResult;
    try {
      row = await this.backend.request(Methods.row, this.rowParams(session, index, 5), cts.token);
    } catch {
      return undefined;
    }
    const tokens = session.result.tokens;
    const label = (i: number) => {
      const t = tokens[i];
      return t ? tokenLabel(t) : `#${i}`;
    };
    const { layer, head } = this.router.view;
    const where = `${layer < 0 ? 'mean of layers' : `layer ${layer}`}, ${head < 0 ? 'mean of heads' : `head ${head}`}`;
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

  private unchangedSince(session: Session, doc: vscode.TextDocument): boolean {
    // Versions also change on edits after the range, which do not invalidate the session (onEdit decides).
    return session.valid && doc.uri.toString() === session.uri.toString();
  }

  dispose(): void {
    this.focusCts?.cancel();
    if (this.followTimer) clearTimeout(this.followTimer);
    for (const d of this.disposables.splice(0)) d.dispose();
  }
}
