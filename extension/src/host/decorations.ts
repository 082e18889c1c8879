// Editor tint: every token of the analyzed range coloured by how much the focus token (under the
// cursor, or hovered in the panel) attends to it, with the panel's colour scale, in 10 buckets.
import * as vscode from 'vscode';
import { rampColour, cssColour } from '../shared/colour';
import type { Session } from './session';

const BUCKETS = 10;

export class Decorations implements vscode.Disposable {
  private readonly types: vscode.TextEditorDecorationType[];
  private readonly focusType: vscode.TextEditorDecorationType;
  private readonly sectionType: vscode.TextEditorDecorationType;
  /** The section marked now (read by the integration tests): its document range, or undefined. */
  section: vscode.Range | undefined;
  /** Number of ranges decorated now (read by the integration tests). */
  count = 0;
  /** The token the tint is by (read by the integration tests); -1: none. */
  focus = -1;

  constructor() {
    this.types = Array.from({ length: BUCKETS }, (_, b) => {
      const t = (b + 0.5) / BUCKETS;
      return vscode.window.createTextEditorDecorationType({
        backgroundColor: cssColour(rampColour(t), 0.18 + 0.5 * t),
        borderRadius: '2px',
        rangeBehavior: vscode.DecorationRangeBehavior.ClosedClosed,
      });
    });
    this.focusType = vscode.window.createTextEditorDecorationType({
      outlineWidth: '1px',
      outlineStyle: 'solid',
      outlineColor: new vscode.ThemeColor('editorCursor.foreground'),
      borderRadius: '2px',
    });
    this.sectionType = vscode.window.createTextEditorDecorationType({
      // A border (the tint owns the background): the focus colour is visible in every theme.
      border: '1px solid',
      borderColor: new vscode.ThemeColor('focusBorder'),
      borderRadius: '2px',
      overviewRulerColor: new vscode.ThemeColor('editorOverviewRuler.findMatchForeground'),
      overviewRulerLane: vscode.OverviewRulerLane.Center,
    });
  }

  /** Marks a section of the analysed text (hovered in the Sections tab) in its editors; undefined: none. */
  markSection(session: Session, range: [number, number] | undefined): void {
    for (const editor of vscode.window.visibleTextEditors) {
      const mine = editor.document.uri.toString() === session.uri.toString();
      const r =
        mine && range
          ? new vscode.Range(editor.document.positionAt(range[0]), editor.document.positionAt(range[1]))
          : undefined;
      editor.setDecorations(this.sectionType, r ? [r] : []);
      if (r) {
        editor.revealRange(r, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
        this.section = r;
      }
    }
    if (!range) this.section = undefined;
  }

  /** Tints the tokens of `session` in every visible editor of its document by `scores` (one per token). */
  apply(session: Session, focus: number, scores: ArrayLike<number>): void {
    const editors = vscode.window.visibleTextEditors.filter(
      (e) => e.document.uri.toString() === session.uri.toString(),
    );
    let max = 0;
    session.result.tokens.forEach((t, i) => {
      if (!t.special && scores[i]! > max) max = scores[i]!;
    });
    for (const editor of editors) {
      const byBucket: vscode.Range[][] = this.types.map(() => []);
      let count = 0;
      session.result.tokens.forEach((t, i) => {
        const range = t.special || t.end <= t.start ? undefined : session.tokenRange(editor.document, i);
        if (!range) return;
        const v = max > 0 ? scores[i]! / max : 0;
        const b = Math.min(BUCKETS - 1, Math.floor(v * BUCKETS));
        byBucket[b]!.push(range);
        count++;
      });
      this.types.forEach((type, b) => editor.setDecorations(type, byBucket[b]!));
      const focusRange = focus >= 0 ? session.tokenRange(editor.document, focus) : undefined;
      editor.setDecorations(this.focusType, focusRange ? [focusRange] : []);
      this.count = count;
      this.focus = focus;
    }
  }

  clear(): void {
    for (const editor of vscode.window.visibleTextEditors) {
      for (const type of this.types) editor.setDecorations(type, []);
      editor.setDecorations(this.focusType, []);
      editor.setDecorations(this.sectionType, []);
    }
    this.count = 0;
    this.focus = -1;
    this.section = undefined;
  }

  dispose(): void {
    this.clear();
    for (const t of this.types) t.dispose();
    this.focusType.dispose();
    this.sectionType.dispose();
  }
}
