// Export Heatmap PNG and Export Attention: what the panel shows, written through the backend.
import * as vscode from 'vscode';
import { exportFileName } from '../../shared/exportName';
import type { Backend } from '../backend';
import { GONE, type PanelRouter } from '../panelRouter';
import type { Session, ShownAnalysis } from '../session';
import { Methods, type RenderPngParams } from '../../shared/protocol';

export class Exports {
  constructor(
    private readonly backend: Backend,
    private readonly shown: ShownAnalysis,
    private readonly router: PanelRouter,
  ) {}

  /**
   * Draws what the panel shows (one layer/head, or the all-heads grid, with its view options) with the backend's
   * SkiaSharp renderer, so the image has labels and a colour bar whatever the panel's size, and saves it where the user
   * picks; the dialog starts next to the analysed file.
   */
  async exportPng(target?: vscode.Uri): Promise<vscode.Uri | undefined> {
    const session = this.exportable();
    if (!session) return;
    const { layer, head, view, hideSpecial, wordLevel } = this.router.view;
    const grid = view === 'grid';
    const name = exportFileName(session.uri.path, grid ? 'grid' : layerHeadName(layer, head), 'png');
    const folder = exportFolder(session.uri);
    const uri =
      target ??
      (await vscode.window.showSaveDialog({
        title: 'AttentionViz: export heatmap PNG',
        filters: { PNG: ['png'] },
        ...(folder ? { defaultUri: vscode.Uri.joinPath(folder, name) } : {}),
      }));
    if (!uri) return;
    const kind = vscode.window.activeColorTheme.kind;
    const dark = kind === vscode.ColorThemeKind.Dark || kind === vscode.ColorThemeKind.HighContrast;
    const params: RenderPngParams = {
      analysisId: session.analysisId,
      ...(grid ? { grid: true } : { layer, head }),
      hideSpecial,
      wordLevel,
      theme: dark ? 'dark' : 'light',
    };
    try {
      const image = await this.backend.request(Methods.renderPng, params);
      if (!image.png) throw new Error('the backend sent no image');
      await vscode.workspace.fs.writeFile(uri, Buffer.from(image.png, 'base64'));
      const saved = `saved ${vscode.workspace.asRelativePath(uri)} (${image.width}×${image.height})`;
      void vscode.window.setStatusBarMessage(`AttentionViz: ${saved}`, 4000);
      return uri;
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      void vscode.window.showErrorMessage(`AttentionViz: PNG export failed: ${message}`);
      return;
    }
  }

  /**
   * Writes the analysis through the backend's attention/export: the visible layer/head as CSV or JSON, with the
   * panel's view options (hide special tokens, word level) as the panel and the PNG show it, or the whole analysis
   * (every layer and head, ids, offsets, hidden states) as safetensors. The format follows the file's extension.
   */
  async exportAttention(target?: vscode.Uri): Promise<vscode.Uri | undefined> {
    const session = this.exportable();
    if (!session) return;
    const { layer, head, hideSpecial, wordLevel } = this.router.view;
    const folder = exportFolder(session.uri);
    const uri =
      target ??
      (await vscode.window.showSaveDialog({
        title: 'AttentionViz: export attention',
        filters: {
          'CSV (this layer/head)': ['csv'],
          'JSON (this layer/head)': ['json'],
          'safetensors (whole analysis)': ['safetensors'],
        },
        ...(folder
          ? {
              defaultUri: vscode.Uri.joinPath(
                folder,
                exportFileName(session.uri.path, layerHeadName(layer, head), 'csv'),
              ),
            }
          : {}),
      }));
    if (!uri) return;
    const format = uri.path.slice(uri.path.lastIndexOf('.') + 1).toLowerCase();
    if (!['csv', 'json', 'safetensors'].includes(format)) {
      void vscode.window.showErrorMessage('AttentionViz: export to a .csv, .json or .safetensors file.');
      return;
    }
    const params = {
      analysisId: session.analysisId,
      format,
      path: uri.fsPath,
      ...(format === 'safetensors' ? {} : { layer, head, hideSpecial, wordLevel }),
    };
    try {
      const result = await this.backend.request(Methods.exportAttention, params);
      const saved = `saved ${vscode.workspace.asRelativePath(uri)} (${result.bytes} bytes)`;
      void vscode.window.setStatusBarMessage(`AttentionViz: ${saved}`, 4000);
      return uri;
    } catch (e) {
      void vscode.window.showErrorMessage(`AttentionViz: export failed: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
  }

  /** The shown analysis when there is one to export; otherwise says why not. */
  private exportable(): Session | undefined {
    const session = this.shown.session;
    if (!this.router.panel || !session) {
      void vscode.window.showInformationMessage('AttentionViz: show attention for a selection first.');
      return undefined;
    }
    if (!session.valid) {
      void vscode.window.showInformationMessage(`AttentionViz: ${GONE}`);
      return undefined;
    }
    return session;
  }
}

function layerHeadName(layer: number, head: number): string {
  return `L${layer < 0 ? 'mean' : layer}-H${head < 0 ? 'mean' : head}`;
}

/** Next to the source file; an untitled document's: the first workspace folder. */
function exportFolder(source: vscode.Uri): vscode.Uri | undefined {
  return source.scheme === 'file' ? vscode.Uri.joinPath(source, '..') : vscode.workspace.workspaceFolders?.[0]?.uri;
}
