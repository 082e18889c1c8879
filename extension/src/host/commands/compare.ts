// Compare with Previous Analysis / Compare with Git HEAD: analyse the prompt as it reads now, and show in the Diff
// tab what changed against the analysis before it (attention/diff: heads ranked by change, ΔA, section budgets).
import * as vscode from 'vscode';
import type { Backend } from '../backend';
import type { PanelRouter } from '../panelRouter';
import type { Session, ShownAnalysis } from '../session';
import { Methods } from '../../shared/protocol';
import { offsetInOtherVersion } from '../../shared/textMap';
import type { Analyzer } from './analyze';
import type { PromptInspector } from './inspectPrompt';

/** The part of the built-in Git extension's API used here (extensions/git/src/api/git.d.ts). */
interface GitRepository {
  show(ref: string, path: string): Promise<string>;
}
interface GitApi {
  getRepository(uri: vscode.Uri): GitRepository | null;
  openRepository?(root: vscode.Uri): Promise<GitRepository | null>;
  toGitUri(uri: vscode.Uri, ref: string): vscode.Uri;
}

export class Comparer {
  constructor(
    private readonly backend: Backend,
    private readonly shown: ShownAnalysis,
    private readonly router: PanelRouter,
    private readonly analyzer: Analyzer,
    private readonly inspector: PromptInspector,
  ) {}

  /** Analyses again what the shown analysis analysed, as the document reads now, and compares the two. */
  async compareWithPrevious(): Promise<void> {
    const before = this.shown.session;
    if (!before?.alive) {
      void vscode.window.showInformationMessage(
        'AttentionViz: analyse a prompt first (Inspect Prompt at Cursor or Show Attention for Selection), edit it, ' +
          'then run Compare with Previous Analysis.',
      );
      return;
    }
    if (before.fromPrompt) await this.inspector.inspect();
    else await this.analyzer.showAttention();
    const after = this.shown.session;
    if (after && after !== before) await this.compare(before, after);
  }

  /** The prompt at the cursor as the file reads at Git HEAD, then as it reads now, compared. */
  async compareWithGitHead(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (!editor) {
      void vscode.window.showInformationMessage('AttentionViz: open a file and put the cursor in a prompt first.');
      return;
    }
    const doc = editor.document;
    const git = await this.gitApi();
    // A repository the Git extension has not discovered yet (it scans after startup) is opened at the file's folder.
    const folder = vscode.workspace.getWorkspaceFolder(doc.uri)?.uri;
    const repo = git?.getRepository(doc.uri) ?? (folder ? await git?.openRepository?.(folder) : undefined);
    if (!git || !repo) {
      void vscode.window.showInformationMessage(
        `AttentionViz: ${vscode.workspace.asRelativePath(doc.uri)} is not in a Git repository VS Code knows ` +
          '(Compare with Git HEAD needs the built-in Git extension).',
      );
      return;
    }
    let headText: string;
    try {
      headText = await repo.show('HEAD', doc.uri.fsPath);
    } catch {
      void vscode.window.showInformationMessage(
        `AttentionViz: ${vscode.workspace.asRelativePath(doc.uri)} has no version at Git HEAD (is it committed?).`,
      );
      return;
    }
    const headDoc = await vscode.workspace.openTextDocument(git.toGitUri(doc.uri, 'HEAD'));
    // The HEAD version's prompt is the one at the cursor's place in the old text.
    const offset = offsetInOtherVersion(doc.getText(), headText, doc.offsetAt(editor.selection.active));
    await this.inspector.inspectIn(headDoc, offset, undefined, ', Git HEAD');
    const before = this.shown.session;
    if (!before || before.uri.toString() !== headDoc.uri.toString()) return; // not found or failed: already told
    await this.inspector.inspect();
    const after = this.shown.session;
    if (after && after !== before) await this.compare(before, after);
  }

  private async gitApi(): Promise<GitApi | undefined> {
    const ext = vscode.extensions.getExtension<{ getAPI(version: 1): GitApi }>('vscode.git');
    if (!ext) return undefined;
    try {
      return (ext.isActive ? ext.exports : await ext.activate()).getAPI(1);
    } catch {
      return undefined;
    }
  }

  /** attention/diff of the two analyses, sent to the panel's Diff tab. */
  private async compare(before: Session, after: Session): Promise<void> {
    let r;
    try {
      r = await this.backend.request(Methods.diff, { analysisIdA: before.analysisId, analysisIdB: after.analysisId });
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      this.backend.log(`compare failed: ${message}`);
      void vscode.window.showErrorMessage(`AttentionViz: cannot compare the two analyses: ${message}`);
      return;
    }
    if (this.shown.session !== after) return; // a newer analysis replaced it meanwhile
    this.router.comparedWith = before;
    this.router.post({
      type: 'diff',
      diff: {
        afterId: after.analysisId,
        before: {
          analysisId: before.analysisId,
          source: before.source,
          tokens: before.result.tokens,
          text: before.text,
          ...(before.sections ? { sections: before.sections } : {}),
        },
        alignment: r.alignment,
        heads: r.heads,
      },
    });
  }
}
