// Show Attention for Selection: analyze the selection (or a sentence pair, or the current line)
// and show it in the panel; a newer analysis cancels the older one.
import * as vscode from 'vscode';
import type { Backend } from '../backend';
import { BackendStoppedError, CancelledError, CancellationTokenSource, ResponseError } from '../backendProcess';
import type { PanelRouter } from '../panelRouter';
import { Session, type ShownAnalysis } from '../session';
import type { SelectionAnalyzer } from '../editorOverlay';
import { readConfig } from '../config';
import { SetupError } from '../locate';
import { ErrorCodes, Methods, type AnalyzeParams, type AnalyzeResult } from '../../shared/protocol';
import { truncationCause, truncationSummary } from '../../shared/tokens';
import type { AnalysisView } from '../../shared/messages';
import { TextMap } from '../../shared/textMap';
import type { TextSection } from '../../shared/protocol';
import { findSections } from '../../shared/sections';
import { MODEL_PATH_SETTING, modelErrorMessage } from '../modelPicks';

/** The workspace state key of the model picked with Select Model. */
export const SELECTED_MODEL_KEY = 'attentionViz.model';
/** The button of the memory-budget error (-32004). */
export const OPEN_SETTING = 'Open Setting';

interface Pair {
  range: vscode.Range;
  text: string;
}

/** What to analyse: the text the model receives and where each of its characters came from in the document. */
export interface AnalysisInput {
  text: string;
  map: TextMap;
  pair?: Pair;
  /** false: the text holds its special tokens already (a rendered chat that starts with BOS). */
  addSpecialTokens?: boolean;
  /** Named ranges of the text (a chat's messages): the Sections tab's default. */
  sections?: TextSection[];
  /** What the text is, for the panel's title ("Python string"); absent: the selection. */
  what?: string;
}

export class Analyzer implements SelectionAnalyzer, vscode.Disposable {
  private cts: CancellationTokenSource | undefined;
  private toldBadPattern: string | undefined;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly backend: Backend,
    private readonly shown: ShownAnalysis,
    private readonly router: PanelRouter,
  ) {}

  async showAttention(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (!editor) {
      void vscode.window.showInformationMessage('AttentionViz: open a file and select some text first.');
      return;
    }
    const doc = editor.document;
    // Two selections (multi-cursor): a sentence pair, first text = the earlier selection.
    const nonEmpty = editor.selections.filter((s) => !s.isEmpty).sort((a, b) => a.start.compareTo(b.start));
    if (nonEmpty.length === 2 && !nonEmpty[0]!.intersection(nonEmpty[1]!)) {
      const [a, b] = nonEmpty as [vscode.Selection, vscode.Selection];
      const textA = doc.getText(a),
        textB = doc.getText(b);
      if (textA.trim() && textB.trim()) {
        await this.analyze(doc, selectionInput(doc, a, textA, { range: b, text: textB }), true);
        return;
      }
    }
    let range: vscode.Range = editor.selection;
    // An empty selection: the current line.
    if (editor.selection.isEmpty) range = doc.lineAt(editor.selection.active.line).range;
    const text = doc.getText(range);
    if (!text.trim()) {
      void vscode.window.showInformationMessage('AttentionViz: the selection (or current line) is empty.');
      return;
    }
    await this.analyze(doc, selectionInput(doc, range, text), true);
  }

  analyzeQuietly(doc: vscode.TextDocument, range: vscode.Range, text: string): Promise<void> {
    return this.analyze(doc, selectionInput(doc, range, text), false);
  }

  /** Analyses a prompt found in the document (a decoded literal, a rendered chat), with the notification. */
  analyzeInput(doc: vscode.TextDocument, input: AnalysisInput): Promise<void> {
    return this.analyze(doc, input, true);
  }

  /** The model in use: attentionViz.modelPath, else the one picked with Select Model, else the embedded one. */
  modelId(): string | undefined {
    return readConfig().modelPath.trim() || this.context.workspaceState.get<string>(SELECTED_MODEL_KEY);
  }

  /** attention/analyze's params for `input`; `maxTokens` 0: none sent (the model's window, capped at 32,768). */
  private paramsFor(input: AnalysisInput, maxTokens: number): AnalyzeParams {
    const modelId = this.modelId();
    return {
      text: input.text,
      ...(maxTokens > 0 ? { maxTokens } : {}),
      ...(modelId ? { modelId } : {}),
      ...(input.pair ? { textPair: input.pair.text } : {}),
      ...(input.addSpecialTokens === false ? { addSpecialTokens: false } : {}),
    };
  }

  /**
   * Analyses `input` for a summary (the CodeLens): no panel, no notification, at most `maxTokens` tokens. The caller
   * releases the analysis. Its sections: the input's, else found as for the panel.
   */
  async analyzeForSummary(
    input: AnalysisInput,
    maxTokens: number,
    token: vscode.CancellationToken,
  ): Promise<{ result: AnalyzeResult; sections: TextSection[] | undefined }> {
    const result = await this.backend.request(Methods.analyze, this.paramsFor(input, maxTokens), token);
    const sections = input.sections ?? this.sectionsOf(input.text, readConfig().sectionPattern);
    return { result, sections };
  }

  /** A newer request makes the older one stale: $/cancelRequest. */
  cancel(): void {
    this.cts?.cancel();
  }

  private async analyze(doc: vscode.TextDocument, input: AnalysisInput, withProgress: boolean): Promise<void> {
    const { text, pair } = input;
    this.cancel();
    const cts = new CancellationTokenSource();
    this.cts = cts;
    const cfg = readConfig();
    const params = this.paramsFor(input, cfg.maxTokens);
    const started = Date.now();
    const panel = this.router.ensurePanel();
    panel.post({ type: 'busy', message: `Analyzing ${text.length} characters…` });
    type Report = (v: { message?: string; increment?: number }) => void;
    const run = async (token?: vscode.CancellationToken, report?: Report) => {
      // Cancel (the notification's button, or a newer analysis) sends $/cancelRequest; the backend stops within a
      // query block and answers -32800.
      token?.onCancellationRequested(() => cts.cancel());
      let last = 0;
      return this.backend.requestWithProgress(
        Methods.analyze,
        params,
        (v) => {
          if (v.kind !== 'report' && v.kind !== 'begin') return;
          const pct = v.percentage ?? last;
          report?.({ ...(v.message ? { message: v.message } : {}), increment: Math.max(0, pct - last) });
          last = Math.max(last, pct);
          if (v.message) panel.post({ type: 'busy', message: `Analyzing ${text.length} characters: ${v.message}…` });
        },
        cts.token,
        'analyzing',
      );
    };
    let result: AnalyzeResult;
    try {
      result = withProgress
        ? await vscode.window.withProgress(
            {
              location: vscode.ProgressLocation.Notification,
              title: 'AttentionViz: analyzing selection…',
              cancellable: true,
            },
            (p, token) => run(token, (v) => p.report(v)),
          )
        : await run();
    } catch (e) {
      if (e instanceof CancelledError || cts.token.isCancellationRequested) {
        // Cancelled by the user (not replaced by a newer analysis): the panel says so and shows what it showed.
        if (this.cts === cts) {
          const before = this.shown.session;
          panel.post({
            type: 'idle',
            message: before
              ? `Cancelled: showing the previous analysis (${before.source}).`
              : 'The analysis was cancelled.',
          });
        }
        return;
      }
      const message = e instanceof Error ? e.message : String(e);
      this.backend.log(`analyze failed: ${message}`);
      if (
        e instanceof ResponseError &&
        (e.code === ErrorCodes.ModelLoadFailed || e.code === ErrorCodes.ModelFileInvalid)
      ) {
        // The model's folder is at fault: say which setting named it, with the button that changes it.
        const selected = this.context.workspaceState.get<string>(SELECTED_MODEL_KEY);
        const told = modelErrorMessage(message, { modelPath: cfg.modelPath.trim(), selected });
        panel.post({ type: 'error', message: told.text.replace(/^AttentionViz: /, '') });
        if (withProgress) {
          const buttons = told.button ? [told.button] : [];
          void vscode.window.showErrorMessage(told.text, ...buttons).then((c) => {
            if (c === 'Open Settings')
              void vscode.commands.executeCommand('workbench.action.openSettings', MODEL_PATH_SETTING);
            else if (c === 'Select Model') void vscode.commands.executeCommand('attentionViz.selectModel');
          });
        }
        return;
      }
      panel.post({ type: 'error', message: e instanceof SetupError ? `${message} ${e.hint}` : message });
      // The Backend told the user about the crash once, with Show Log; the panel says what it means for this analysis.
      if (e instanceof BackendStoppedError) return;
      // A setup problem (no backend, no dotnet) was already told once by the Backend.
      if (withProgress && e instanceof ResponseError && e.code === ErrorCodes.MemoryBudgetExceeded) {
        // The backend's message has both sizes and the most tokens that fit; the button opens the setting it names.
        void vscode.window.showErrorMessage(`AttentionViz: ${message}`, OPEN_SETTING).then((c) => {
          if (c === OPEN_SETTING)
            void vscode.commands.executeCommand('workbench.action.openSettings', 'attentionViz.memoryBudgetMB');
        });
      } else if (withProgress && !(e instanceof SetupError)) {
        void vscode.window.showErrorMessage(message.startsWith('AttentionViz') ? message : `AttentionViz: ${message}`);
      }
      return;
    } finally {
      if (this.cts === cts) this.cts = undefined;
    }
    if (cts.token.isCancellationRequested) return;
    const sections = input.sections ?? (pair ? undefined : this.sectionsOf(text, cfg.sectionPattern));
    const span = input.map.span() ?? [0, 0];
    const session = new Session(
      this.shown.nextSeq(),
      doc.uri,
      doc.version,
      span[0],
      text,
      result,
      input.map,
      pair ? { baseOffset: doc.offsetAt(pair.range.start), text: pair.text } : undefined,
      sections,
      input.what !== undefined,
    );
    const truncatedNote = result.truncated ? `, truncated at ${result.truncatedAt}` : '';
    this.backend.log(
      `analyzed ${result.tokens.length} tokens in ${result.elapsedMs} ms ` +
        `(round trip ${Date.now() - started} ms)${truncatedNote}`,
    );
    const range = new vscode.Range(doc.positionAt(span[0]), doc.positionAt(span[1]));
    const source = sourceLabel(doc, range, pair) + (input.what ? ` (${input.what})` : '');
    session.source = source;
    // Tokens no document character produced: a chat template's own text, shown apart from the messages.
    const templateTokens = result.tokens.flatMap((t, i) =>
      !t.special && t.end > t.start && !input.map.sourceRange(t.start, t.end) ? [i] : [],
    );
    const truncation = result.truncated ? truncationCause(cfg.maxTokens, result.window) : undefined;
    const view: AnalysisView = {
      analysisId: result.analysisId,
      model: result.model,
      tokens: result.tokens,
      text,
      truncated: result.truncated,
      ...(result.truncatedAt !== undefined ? { truncatedAt: result.truncatedAt } : {}),
      ...(truncation ? { truncation } : {}),
      elapsedMs: result.elapsedMs,
      source,
      ...(templateTokens.length > 0 ? { templateTokens } : {}),
      ...(sections ? { sections } : {}),
    };
    panel.setTitle(`Attention: ${source}`);
    this.router.showAnalysis(panel, view, this.shown.session !== undefined);
    this.shown.show(session); // releases the replaced analysis; the editor tint follows
    if (result.truncated && truncation) {
      const summary = truncationSummary(result.tokens, text, result.truncatedAt, truncation);
      // The setting can lift its own limit; the window and the backend's maximum it cannot, so no button there.
      const buttons = truncation.kind === 'setting' ? [OPEN_SETTING] : [];
      void vscode.window.showWarningMessage(`AttentionViz: ${summary}`, ...buttons).then((c) => {
        if (c === OPEN_SETTING)
          void vscode.commands.executeCommand('workbench.action.openSettings', 'attentionViz.maxTokens');
      });
    }
  }

  /** The text's sections by attentionViz.sectionPattern or the built-in rules; a bad pattern is told once. */
  private sectionsOf(text: string, pattern: string): TextSection[] | undefined {
    try {
      return findSections(text, pattern)?.sections;
    } catch (e) {
      if (pattern !== this.toldBadPattern) {
        this.toldBadPattern = pattern;
        const why = e instanceof Error ? e.message : String(e);
        void vscode.window
          .showWarningMessage(
            `AttentionViz: attentionViz.sectionPattern is not a regular expression (${why}).`,
            OPEN_SETTING,
          )
          .then((c) => {
            if (c === OPEN_SETTING)
              void vscode.commands.executeCommand('workbench.action.openSettings', 'attentionViz.sectionPattern');
          });
      }
      return findSections(text)?.sections;
    }
  }

  dispose(): void {
    this.cancel();
  }
}

function selectionInput(doc: vscode.TextDocument, range: vscode.Range, text: string, pair?: Pair): AnalysisInput {
  return { text, map: TextMap.identity(doc.offsetAt(range.start), text.length), ...(pair ? { pair } : {}) };
}

/** Where the text came from, e.g. "prompt.md:3–5" (+ the pair's line). */
function sourceLabel(doc: vscode.TextDocument, range: vscode.Range, pair: Pair | undefined): string {
  const startLine = range.start.line + 1,
    endLine = range.end.line + 1;
  const pairLine = pair ? ` + ${pair.range.start.line + 1}` : '';
  const lines = `${startLine}${endLine !== startLine ? '–' + endLine : ''}${pairLine}`;
  // Another version of a file (git: Git HEAD) is named by the file's own path.
  const uri = doc.uri.scheme === 'file' ? doc.uri : vscode.Uri.file(doc.uri.fsPath);
  return `${vscode.workspace.asRelativePath(uri)}:${lines}`;
}
