// Restart Backend and Select Model.
import * as vscode from 'vscode';
import type { Backend } from '../backend';
import { readConfig } from '../config';
import { SetupError } from '../locate';
import { describeModel } from '../../shared/modelName';
import { Methods, type ModelListEntry, type ModelsListParams } from '../../shared/protocol';
import { SELECTED_MODEL_KEY } from './analyze';

export async function restartBackend(backend: Backend): Promise<void> {
  try {
    await backend.restart();
    void vscode.window.setStatusBarMessage('AttentionViz: backend restarted', 3000);
  } catch (e) {
    if (!(e instanceof SetupError)) void vscode.window.showErrorMessage(e instanceof Error ? e.message : String(e));
  }
}

/** Picks the model of the next analyses (kept per workspace); attentionViz.modelPath, when set, wins. */
export async function selectModel(context: vscode.ExtensionContext, backend: Backend): Promise<void> {
  let models: ModelListEntry[];
  try {
    const modelPath = readConfig().modelPath.trim();
    const params: ModelsListParams = modelPath ? { paths: [modelPath] } : {};
    models = await backend.request(Methods.modelsList, params);
  } catch (e) {
    void vscode.window.showErrorMessage(e instanceof Error ? e.message : String(e));
    return;
  }
  const selected = context.workspaceState.get<string>(SELECTED_MODEL_KEY) ?? 'default';
  const pick = await vscode.window.showQuickPick(
    models.map((m) => ({
      label: m.name,
      description: describeModel(m),
      detail: m.error ?? (m.note ? `${m.source} · ${m.note}` : m.source),
      id: m.id,
      picked: m.id === selected,
    })),
    { title: 'AttentionViz: model', placeHolder: 'Model used for the next analysis' },
  );
  if (!pick) return;
  await context.workspaceState.update(SELECTED_MODEL_KEY, pick.id);
  if (readConfig().modelPath.trim()) {
    void vscode.window.showInformationMessage(
      'AttentionViz: attentionViz.modelPath is set and takes precedence over the selected model.',
    );
  }
}
