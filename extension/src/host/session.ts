// The analysis shown in the panel: which text of which document, the backend's answer, and the
// current layer/head. Editor decorations and hovers read it.
import * as vscode from 'vscode';
import type { AnalyzeResult } from '../shared/protocol';
import { tokenIndexAt } from '../shared/tokens';

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
  ) {}

  get analysisId(): string { return this.result.analysisId; }

  /** End of the analyzed text in the document (earlier than the selection's end when truncated). */
  get endOffset(): number {
    return this.baseOffset + (this.result.truncated ? (this.result.truncatedAt ?? this.text.length) : this.text.length);
  }

  range(document: vscode.TextDocument): vscode.Range {
    return new vscode.Range(document.positionAt(this.baseOffset), document.positionAt(this.endOffset));
  }

  tokenAt(document: vscode.TextDocument, position: vscode.Position): number {
    if (!this.valid || document.uri.toString() !== this.uri.toString()) return -1;
    const rel = document.offsetAt(position) - this.baseOffset;
    if (rel < 0 || rel > this.text.length) return -1;
    return tokenIndexAt(this.result.tokens, rel);
  }

  tokenRange(document: vscode.TextDocument, index: number): vscode.Range {
    const t = this.result.tokens[index]!;
    return new vscode.Range(document.positionAt(this.baseOffset + t.start), document.positionAt(this.baseOffset + t.end));
  }
}
