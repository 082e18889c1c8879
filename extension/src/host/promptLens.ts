// The CodeLens above each prompt of a file: how the prompt's last token spreads its attention over the prompt's
// sections (mean over layers and heads), e.g. "AttentionViz: 412 tokens · system 38% · context 41% · question 21%".
// Computed only for lenses VS Code resolves (visible ones), after the file has been idle, one at a time, with
// the selected model; cached by model and text; work for an outdated text is cancelled. A click inspects the prompt.
import * as vscode from 'vscode';
import type { Backend } from './backend';
import { CancellationTokenSource } from './backendProcess';
import { readConfig } from './config';
import type { Analyzer } from './commands/analyze';
import type { PromptInspector } from './commands/inspectPrompt';
import { promptOffsets } from './prompt/findPrompt';
import type { Parsers } from './prompt/parsers';
import { Methods } from '../shared/protocol';
import { describeSections } from '../shared/sections';

/** The command a lens runs: Inspect Prompt at Cursor at the lens's prompt. */
export const INSPECT_AT = 'attentionViz.inspectPromptAt';
/** A file counts as idle this long after its last edit. */
const IDLE_MS = 1500;
/** Lenses summarise prompts up to this many tokens (a longer one says so and opens on click). */
const LENS_MAX_TOKENS = 4096;
const CACHE_SIZE = 200;

export const LENS_SELECTOR: vscode.DocumentSelector = [
  'python',
  'javascript',
  'javascriptreact',
  'typescript',
  'typescriptreact',
  'csharp',
  'json',
  'jsonc',
  'yaml',
  { pattern: '**/*.{prompt,prompty,jinja,jinja2,j2}' },
];

class PromptLens extends vscode.CodeLens {
  constructor(
    range: vscode.Range,
    readonly doc: vscode.TextDocument,
    readonly version: number,
    readonly offset: number,
  ) {
    super(range);
  }
}

export class PromptLenses implements vscode.CodeLensProvider<PromptLens>, vscode.Disposable {
  private readonly changeEmitter = new vscode.EventEmitter<void>();
  readonly onDidChangeCodeLenses = this.changeEmitter.event;
  private readonly lastEdit = new Map<string, number>();
  /** Titles by model and prompt text (and the section rule), most recent last. */
  private readonly cache = new Map<string, { title: string; tooltip: string }>();
  /** One summary at a time: the backend has one model thread, and the user's own analyses come first. */
  private queue: Promise<unknown> = Promise.resolve();
  private readonly disposables: vscode.Disposable[] = [];
  /** Summaries computed (read by the integration tests). */
  computed = 0;

  constructor(
    private readonly backend: Backend,
    private readonly analyzer: Analyzer,
    private readonly inspector: PromptInspector,
    private readonly parsers: Parsers,
  ) {
    this.disposables.push(
      this.changeEmitter,
      vscode.languages.registerCodeLensProvider(LENS_SELECTOR, this),
      vscode.workspace.onDidChangeTextDocument((e) => {
        if (e.contentChanges.length) this.lastEdit.set(e.document.uri.toString(), Date.now());
      }),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (
          ['attentionViz.codeLens.enabled', 'attentionViz.modelPath', 'attentionViz.sectionPattern'].some((k) =>
            e.affectsConfiguration(k),
          )
        )
          this.changeEmitter.fire();
      }),
    );
  }

  /** Select Model changed the model: the lenses are computed again. */
  refresh(): void {
    this.changeEmitter.fire();
  }

  async provideCodeLenses(doc: vscode.TextDocument): Promise<PromptLens[]> {
    if (!readConfig().codeLens) return [];
    const q = { source: doc.getText(), languageId: doc.languageId, fileName: doc.fileName };
    const offsets = await promptOffsets(q, this.parsers).catch(() => []);
    return offsets.map((o) => {
      const line = doc.positionAt(o).line;
      return new PromptLens(new vscode.Range(line, 0, line, 0), doc, doc.version, o);
    });
  }

  async resolveCodeLens(lens: PromptLens, token: vscode.CancellationToken): Promise<PromptLens> {
    const open = { command: INSPECT_AT, arguments: [lens.doc.uri, lens.offset] };
    try {
      const s = await this.summary(lens, token);
      lens.command = { ...open, title: s.title, tooltip: s.tooltip };
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      if (!token.isCancellationRequested) this.backend.log(`code lens: ${why}`);
      lens.command = { ...open, title: 'AttentionViz: inspect this prompt', tooltip: why };
    }
    return lens;
  }

  private async summary(
    lens: PromptLens,
    token: vscode.CancellationToken,
  ): Promise<{ title: string; tooltip: string }> {
    await this.idle(lens.doc, token);
    const stale = () => token.isCancellationRequested || lens.doc.version !== lens.version;
    if (stale()) throw new Error('the text changed');
    const input = await this.inspector.quietInput(lens.doc, lens.offset);
    if (!input) throw new Error('no prompt here any more');
    const cfg = readConfig();
    const key = JSON.stringify([
      this.analyzer.modelId() ?? '',
      cfg.sectionPattern,
      cfg.addGenerationPrompt,
      input.text,
    ]);
    const hit = this.cache.get(key);
    if (hit) return hit;
    const run = this.queue.then(async () => {
      if (stale()) throw new Error('the text changed');
      const cts = new CancellationTokenSource();
      const sub = token.onCancellationRequested(() => cts.cancel());
      try {
        const most = cfg.maxTokens > 0 ? Math.min(cfg.maxTokens, LENS_MAX_TOKENS) : LENS_MAX_TOKENS;
        const { result, sections } = await this.analyzer.analyzeForSummary(input, most, cts.token);
        try {
          const n = result.tokens.length;
          if (result.truncated)
            return {
              title: `AttentionViz: over ${n} tokens · inspect`,
              tooltip: 'A long prompt: open it in the panel.',
            };
          const masses = sections?.length
            ? await this.backend.request(Methods.sections, { analysisId: result.analysisId, sections }, cts.token)
            : undefined;
          this.computed++;
          return describeSections(n, masses);
        } finally {
          this.backend.request(Methods.release, { analysisId: result.analysisId }).catch(() => undefined);
        }
      } finally {
        sub.dispose();
      }
    });
    this.queue = run.catch(() => undefined);
    const s = await run;
    this.cache.delete(key);
    this.cache.set(key, s);
    if (this.cache.size > CACHE_SIZE) this.cache.delete(this.cache.keys().next().value!);
    return s;
  }

  /** Waits until the document has had no edit for IDLE_MS. */
  private async idle(doc: vscode.TextDocument, token: vscode.CancellationToken): Promise<void> {
    for (;;) {
      const wait = (this.lastEdit.get(doc.uri.toString()) ?? 0) + IDLE_MS - Date.now();
      if (wait <= 0 || token.isCancellationRequested) return;
      await new Promise((r) => setTimeout(r, wait));
    }
  }

  dispose(): void {
    for (const d of this.disposables.splice(0)) d.dispose();
  }
}
