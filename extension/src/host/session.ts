// The analysis shown in the panel: which text of which document, the backend's answer, and the
// current layer/head. Editor decorations and hovers read it.
import * as vscode from 'vscode';
import type { AnalyzeResult } from '../shared/protocol';
import { segmentTokenIndexAt, tokenIndexAt } from '../shared/tokens';

/** The second text of a sentence pair: where it starts in the document, and the text. */
export interface PairSegment { baseOffset: number; text: string }

export class Session {
  valid = true;
  layer = 0;
  head = 0;
  constructor(
    readonly seq: number,
    readonly uri: vscode.Uri,
    readonly version: number,
    /** Document offset (UTF-16) of the analyzed text's first character. */
    readonly baseOffset: number,
    readonly text: string,
    readonly result: AnalyzeResult,
    /** The second selection of a sentence pair: its tokens have typeId 1 and offsets into this text. */
    readonly pair?: PairSegment,
  ) {}

  get analysisId(): string { return this.result.analysisId; }

  /** End of the analyzed text in the document (earlier than the selection's end when truncated). */
  get endOffset(): number {
    return this.baseOffset + (this.result.truncated ? (this.result.truncatedAt ?? this.text.length) : this.text.length);
  }

  /** The analyzed text in the document; for a pair, from the first text's start to the second text's end. */
  range(document: vscode.TextDocument): vscode.Range {
    const end = this.pair ? Math.max(this.endOffset, this.pair.baseOffset + this.pair.text.length) : this.endOffset;
    return new vscode.Range(document.positionAt(this.baseOffset), document.positionAt(end));
  }

  tokenAt(document: vscode.TextDocument, position: vscode.Position): number {
    if (!this.valid || document.uri.toString() !== this.uri.toString()) return -1;
    const offset = document.offsetAt(position);
    if (this.pair) {
      const relPair = offset - this.pair.baseOffset;
      if (relPair >= 0 && relPair <= this.pair.text.length) return segmentTokenIndexAt(this.result.tokens, 1, relPair);
      const rel = offset - this.baseOffset;
      return rel >= 0 && rel <= this.text.length ? segmentTokenIndexAt(this.result.tokens, 0, rel) : -1;
    }
    const rel = offset - this.baseOffset;
    if (rel < 0 || rel > this.text.length) return -1;
    return tokenIndexAt(this.result.tokens, rel);
  }

  tokenRange(document: vscode.TextDocument, index: number): vscode.Range {
    const t = this.result.tokens[index]!;
    const base = this.pair && t.typeId === 1 ? this.pair.baseOffset : this.baseOffset;
    return new vscode.Range(document.positionAt(base + t.start), document.positionAt(base + t.end));
  }
}
