// The analysis shown in the panel: which text of which document and the backend's answer. Editor
// decorations, hovers, the panel's requests and the exports read it; the layer/head is the panel's.
import * as vscode from 'vscode';
import type { Backend } from './backend';
import { Methods, type AnalyzeResult, type TextSection } from '../shared/protocol';
import { segmentTokenIndexAt, tokenIndexAt } from '../shared/tokens';
import type { TextMap } from '../shared/textMap';

/** The second text of a sentence pair: where it starts in the document, and the text. */
export interface PairSegment {
  baseOffset: number;
  text: string;
}

export class Session {
  valid = true;
  constructor(
    readonly seq: number,
    readonly uri: vscode.Uri,
    readonly version: number,
    /** Document offset (UTF-16) of the analyzed text's first character. */
    readonly baseOffset: number,
    readonly text: string,
    readonly result: AnalyzeResult,
    /** Where each unit of `text` came from in the document (a decoded literal's `\n` came from two characters). */
    readonly map: TextMap,
    /** The second selection of a sentence pair: its tokens have typeId 1 and offsets into this text. */
    readonly pair?: PairSegment,
    /** Named ranges of the text (a chat's messages, tags, headings, paragraphs). */
    readonly sections?: TextSection[],
    /** Found by Inspect Prompt at Cursor (Compare with Previous Analysis analyses the same way again). */
    readonly fromPrompt = false,
  ) {}

  /** The backend still holds it (false after a restart; an edit leaves it there, for a diff). */
  alive = true;
  /** Where the text came from, as the panel names it ("prompt.py:3–5 (Python string)"). */
  source = '';

  get analysisId(): string {
    return this.result.analysisId;
  }

  /** End of the analyzed text in the document (earlier than the selection's end when truncated). */
  get endOffset(): number {
    const analysed = this.result.truncated ? (this.result.truncatedAt ?? this.text.length) : this.text.length;
    return this.map.span(analysed)?.[1] ?? this.baseOffset;
  }

  /** The analyzed text in the document; for a pair, from the first text's start to the second text's end. */
  range(document: vscode.TextDocument): vscode.Range {
    const end = this.pair ? Math.max(this.endOffset, this.pair.baseOffset + this.pair.text.length) : this.endOffset;
    return new vscode.Range(document.positionAt(this.baseOffset), document.positionAt(end));
  }

  /**
   * The token holding the character at `position`; `touching` (a cursor, as VS Code's word highlight): also the token
   * that ends right before it, when none starts there.
   */
  tokenAt(document: vscode.TextDocument, position: vscode.Position, touching = false): number {
    if (!this.valid || document.uri.toString() !== this.uri.toString()) return -1;
    const offset = document.offsetAt(position);
    const at = this.tokenAtOffset(offset);
    return at < 0 && touching && offset > 0 ? this.tokenAtOffset(offset - 1) : at;
  }

  private tokenAtOffset(offset: number): number {
    if (this.pair) {
      const relPair = offset - this.pair.baseOffset;
      if (relPair >= 0 && relPair <= this.pair.text.length) return segmentTokenIndexAt(this.result.tokens, 1, relPair);
      const rel = offset - this.baseOffset;
      return rel >= 0 && rel <= this.text.length ? segmentTokenIndexAt(this.result.tokens, 0, rel) : -1;
    }
    const rel = this.map.textOffsetAt(offset);
    return rel < 0 ? -1 : tokenIndexAt(this.result.tokens, rel);
  }

  /** The document characters token `index` came from; undefined for a chat template's own tokens. */
  tokenRange(document: vscode.TextDocument, index: number): vscode.Range | undefined {
    const t = this.result.tokens[index]!;
    if (this.pair && t.typeId === 1) {
      const base = this.pair.baseOffset;
      return new vscode.Range(document.positionAt(base + t.start), document.positionAt(base + t.end));
    }
    const range = this.map.sourceRange(t.start, t.end);
    return range && new vscode.Range(document.positionAt(range[0]), document.positionAt(range[1]));
  }
}

/** The one shown analysis: replacing or closing it releases it in the backend; a restart or an edit invalidates it. */
export class ShownAnalysis implements vscode.Disposable {
  private current: Session | undefined;
  /** The analysis shown before the current one, kept for Compare with Previous Analysis. */
  private before: Session | undefined;
  private seq = 0;
  private readonly changeEmitter = new vscode.EventEmitter<void>();
  /** Shown, cleared or invalidated. */
  readonly onDidChange = this.changeEmitter.event;
  private readonly invalidateEmitter = new vscode.EventEmitter<string>();
  /** The shown analysis became stale; the message says why and what to do. */
  readonly onDidInvalidate = this.invalidateEmitter.event;
  private readonly subscription: vscode.Disposable;

  constructor(private readonly backend: Backend) {
    // A new backend process does not know the old analysis: its overlay and hovers are gone.
    this.subscription = backend.onDidChangeState((s) => {
      if (s.kind === 'starting' || s.kind === 'error' || s.kind === 'stopped') {
        for (const old of [this.current, this.before]) if (old) old.alive = false;
        this.invalidate('The backend restarted: run “Show Attention for Selection” again to refresh.');
      }
    });
  }

  get session(): Session | undefined {
    return this.current;
  }

  /** The sequence number of the next session (tests tell analyses apart by it). */
  nextSeq(): number {
    return ++this.seq;
  }

  /** The analysis shown before the current one, while the backend holds it. */
  get previous(): Session | undefined {
    return this.before?.alive ? this.before : undefined;
  }

  /** Shows `session`; the one it replaces stays in the backend as `previous`, the one before that is released. */
  show(session: Session): void {
    this.release(this.before);
    this.before = this.current;
    this.current = session;
    this.changeEmitter.fire();
  }

  clear(): void {
    this.release(this.before);
    this.release(this.current);
    this.before = this.current = undefined;
    this.changeEmitter.fire();
  }

  invalidate(message: string): void {
    const session = this.current;
    if (!session || !session.valid) return;
    session.valid = false;
    this.invalidateEmitter.fire(message);
    this.changeEmitter.fire();
  }

  /** Lets the backend reuse a replaced analysis's memory (nothing asks for it again: requests carry the current id). */
  private release(session: Session | undefined): void {
    const kind = this.backend.state.kind;
    if (!session || !session.alive || (kind !== 'ready' && kind !== 'busy')) return;
    session.alive = false;
    this.backend.request(Methods.release, { analysisId: session.analysisId }).catch((e: unknown) => {
      this.backend.log(`release ${session.analysisId}: ${e instanceof Error ? e.message : String(e)}`);
    });
  }

  dispose(): void {
    this.subscription.dispose();
    this.changeEmitter.dispose();
    this.invalidateEmitter.dispose();
  }
}
