// Inspect Prompt at Cursor: the prompt around the cursor as the model receives it (a literal's decoded value, a
// chat rendered with the model's template), analysed with each token mapped back to its source characters.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Backend } from '../backend';
import { readConfig } from '../config';
import { ChatTemplateError, type TokenizerConfig } from '../chatTemplate';
import { findPrompt, type PromptChat } from '../prompt/findPrompt';
import { renderPrompt } from '../prompt/chatText';
import type { Parsers } from '../prompt/parsers';
import { Methods, type TextSection } from '../../shared/protocol';
import { TextMapBuilder } from '../../shared/textMap';
import { SELECTED_MODEL_KEY, type AnalysisInput, type Analyzer } from './analyze';

/** The button that analyses a chat without a template: its messages' contents one after another. */
export const PLAIN_CONCATENATION = 'Analyze Plain Concatenation';

export class PromptInspector {
  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly backend: Backend,
    private readonly analyzer: Analyzer,
    private readonly parsers: Parsers,
  ) {}

  async inspect(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (!editor) {
      void vscode.window.showInformationMessage('AttentionViz: open a file and put the cursor in a prompt first.');
      return;
    }
    const doc = editor.document;
    const sel = editor.selection;
    const selection = sel.isEmpty ? undefined : ([doc.offsetAt(sel.start), doc.offsetAt(sel.end)] as [number, number]);
    return this.inspectIn(doc, doc.offsetAt(sel.active), selection);
  }

  /** The prompt at document offset `offset` of `doc` (an open editor's, or another version's: Git HEAD). */
  async inspectIn(doc: vscode.TextDocument, offset: number, selection?: [number, number], what = ''): Promise<void> {
    let prompt;
    try {
      prompt = await findPrompt(
        {
          source: doc.getText(),
          languageId: doc.languageId,
          fileName: doc.fileName,
          offset,
          ...(selection ? { selection } : {}),
        },
        this.parsers,
      );
    } catch (e) {
      // A grammar that fails to load or parse: say so, rather than "no prompt here".
      const message = e instanceof Error ? e.message : String(e);
      this.backend.log(`inspect prompt: ${message}`);
      void vscode.window.showErrorMessage(
        `AttentionViz: could not read the prompts of this ${doc.languageId} file (${message}). ` +
          'Select the text to analyse it as written.',
      );
      return;
    }
    if (!prompt && selection) return this.analyzer.showAttention(); // a selection outside any literal: as written
    if (!prompt) {
      void vscode.window.showInformationMessage(
        'AttentionViz: no prompt at the cursor. Put it in a string literal, a chat messages list, a Markdown ' +
          'paragraph or code block, or a .prompt/.prompty file; or select the text to analyse it as written.',
      );
      return;
    }
    if (prompt.kind === 'text') {
      if (!prompt.text.trim()) {
        void vscode.window.showInformationMessage(`AttentionViz: the ${prompt.what} at the cursor is empty.`);
        return;
      }
      return this.analyzer.analyzeInput(doc, { text: prompt.text, map: prompt.map, what: prompt.what + what });
    }
    const input = await this.chatInput(prompt);
    if (input) return this.analyzer.analyzeInput(doc, { ...input, what: (input.what ?? '') + what });
  }

  /**
   * The prompt at `offset` as Inspect Prompt at Cursor would analyse it, without asking anything (the CodeLens): a
   * chat without a template is the plain concatenation; a template that fails, or no prompt, is undefined.
   */
  async quietInput(doc: vscode.TextDocument, offset: number): Promise<AnalysisInput | undefined> {
    const q = { source: doc.getText(), languageId: doc.languageId, fileName: doc.fileName, offset };
    const prompt = await findPrompt(q, this.parsers).catch(() => undefined);
    if (!prompt) return undefined;
    if (prompt.kind === 'text')
      return prompt.text.trim() ? { text: prompt.text, map: prompt.map, what: prompt.what } : undefined;
    const model = await this.modelTokenizerConfig();
    if (!model.config) return plainConcatenation(prompt);
    try {
      return this.rendered(prompt, model.config, model.name);
    } catch {
      return undefined;
    }
  }

  private rendered(chat: PromptChat, config: TokenizerConfig, modelName: string): AnalysisInput {
    const r = renderPrompt(chat.messages, config, readConfig().addGenerationPrompt);
    return {
      text: r.text,
      map: r.map,
      sections: r.sections,
      addSpecialTokens: !r.startsWithBos,
      what: `${chat.what}, ${modelName}'s chat template`,
    };
  }

  /** The chat rendered with the model's template; a model without one offers the plain concatenation. */
  private async chatInput(chat: PromptChat): Promise<AnalysisInput | undefined> {
    const model = await this.modelTokenizerConfig();
    if (!model.config) {
      const choice = await vscode.window.showWarningMessage(
        `AttentionViz: ${model.name} has no chat template, so the ${chat.messages.length} messages cannot be ` +
          'rendered the way a chat model receives them.',
        PLAIN_CONCATENATION,
      );
      return choice === PLAIN_CONCATENATION ? plainConcatenation(chat) : undefined;
    }
    try {
      return this.rendered(chat, model.config, model.name);
    } catch (e) {
      if (!(e instanceof ChatTemplateError)) throw e;
      void vscode.window.showErrorMessage(`AttentionViz: ${e.message}${this.failingMessage(chat, model.config)}`);
      return undefined;
    }
  }

  /** " (at message k)": the first message whose addition makes the template fail. */
  private failingMessage(chat: PromptChat, config: TokenizerConfig): string {
    for (let k = 1; k <= chat.messages.length; k++) {
      try {
        renderPrompt(chat.messages.slice(0, k), config, false);
      } catch {
        return ` (at message ${k}, role “${chat.messages[k - 1]!.role}”)`;
      }
    }
    return '';
  }

  /** The selected model's tokenizer_config.json (and chat_template.jinja, where newer models keep it). */
  private async modelTokenizerConfig(): Promise<{ name: string; config?: TokenizerConfig }> {
    const id = readConfig().modelPath.trim() || this.context.workspaceState.get<string>(SELECTED_MODEL_KEY);
    if (!id) return { name: 'the embedded all-MiniLM-L6-v2' };
    let dir = id;
    if (!isDirectory(dir)) {
      try {
        const models = await this.backend.request(Methods.modelsList, {});
        dir = models.find((m) => m.id === id)?.path ?? '';
      } catch {
        dir = '';
      }
    }
    const name = path.basename(id);
    if (!dir) return { name };
    return { name, ...readTokenizerConfig(isDirectory(dir) ? dir : path.dirname(dir)) };
  }
}

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** The folder's chat template, or no config when it has none. */
export function readTokenizerConfig(dir: string): { config?: TokenizerConfig } {
  let config: TokenizerConfig = {};
  try {
    config = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8')) as TokenizerConfig;
  } catch {
    // No config: maybe a template file alone.
  }
  if (!config.chat_template) {
    try {
      config = { ...config, chat_template: fs.readFileSync(path.join(dir, 'chat_template.jinja'), 'utf8') };
    } catch {
      return {};
    }
  }
  return { config };
}

/** The messages' contents joined by blank lines, each a section named by its role. */
function plainConcatenation(chat: PromptChat): AnalysisInput {
  const out = new TextMapBuilder();
  const sections: TextSection[] = [];
  let at = 0;
  for (const [i, m] of chat.messages.entries()) {
    if (i > 0) {
      out.unmapped('\n\n');
      at += 2;
    }
    out.append(m.text, m.map);
    sections.push({ name: `${m.role} ${i + 1}`, start: at, end: at + m.text.length });
    at += m.text.length;
  }
  return { ...out.build(), sections, what: `${chat.what}, concatenated` };
}
