// Restart Backend and Select Model.
import * as vscode from 'vscode';
import type { Backend } from '../backend';
import { readConfig } from '../config';
import { SetupError } from '../locate';
import { Methods, type ModelsListParams } from '../../shared/protocol';
import { MODEL_PATH_SETTING, modelPickItems, type ModelPick } from '../modelPicks';
import { SELECTED_MODEL_KEY } from './analyze';

export async function restartBackend(backend: Backend): Promise<void> {
  try {
    await backend.restart();
    void vscode.window.setStatusBarMessage('AttentionViz: backend restarted', 3000);
  } catch (e) {
    if (!(e instanceof SetupError)) void vscode.window.showErrorMessage(e instanceof Error ? e.message : String(e));
  }
}

/** Select Model's items: models/list with attentionViz.modelPath, marked and described (host/modelPicks.ts). */
export async function modelPicks(context: vscode.ExtensionContext, backend: Backend): Promise<ModelPick[]> {
  const modelPath = readConfig().modelPath.trim();
  const selected = context.workspaceState.get<string>(SELECTED_MODEL_KEY);
  try {
    const params: ModelsListParams = modelPath ? { paths: [modelPath] } : {};
    const models = await backend.request(Methods.modelsList, params);
    return modelPickItems(models, { modelPath, selected });
  } catch (e) {
    const listError = e instanceof SetupError ? `${e.message} ${e.hint}` : e instanceof Error ? e.message : String(e);
    return modelPickItems(undefined, { modelPath, selected, listError });
  }
}

type Item = vscode.QuickPickItem & { pick: ModelPick };

/** Picks the model of the next analyses (kept per workspace); attentionViz.modelPath, when set, wins. */
export async function selectModel(context: vscode.ExtensionContext, backend: Backend): Promise<void> {
  const picks = await modelPicks(context, backend);
  const items: Item[] = picks.map((p) =>
    p.kind === 'separator'
      ? { label: p.label, kind: vscode.QuickPickItemKind.Separator, pick: p }
      : {
          label: p.label,
          ...('description' in p ? { description: p.description } : {}),
          detail: p.detail,
          ...(p.kind === 'model' ? { picked: p.picked } : {}),
          pick: p,
        },
  );
  const chosen = await vscode.window.showQuickPick(items, {
    title: 'AttentionViz: model',
    placeHolder: 'Model used for the next analysis',
    matchOnDetail: true,
  });
  if (!chosen) return;
  const pick = chosen.pick;
  switch (pick.kind) {
    case 'model': {
      await context.workspaceState.update(SELECTED_MODEL_KEY, pick.id);
      if (readConfig().modelPath.trim() && pick.id !== readConfig().modelPath.trim()) {
        const c = await vscode.window.showInformationMessage(
          `AttentionViz: ${MODEL_PATH_SETTING} is set and takes precedence over the selected model.`,
          OPEN_SETTINGS,
        );
        if (c === OPEN_SETTINGS) await openModelPathSetting();
      }
      return;
    }
    case 'broken': {
      const buttons = pick.setting ? [OPEN_SETTINGS, BROWSE] : [BROWSE];
      const c = await vscode.window.showErrorMessage(
        `AttentionViz: this model cannot be used: ${pick.detail}`,
        ...buttons,
      );
      if (c === OPEN_SETTINGS) await openModelPathSetting();
      else if (c === BROWSE) await browseForModel(backend);
      return;
    }
    case 'browse':
      return browseForModel(backend);
    case 'settings':
      await openModelPathSetting();
      return;
    default:
      return;
  }
}

const OPEN_SETTINGS = 'Open Settings';
const BROWSE = 'Browse…';

export function openModelPathSetting(): Thenable<unknown> {
  return vscode.commands.executeCommand('workbench.action.openSettings', MODEL_PATH_SETTING);
}

/** A folder picker that sets attentionViz.modelPath (user settings: a workspace cannot), then checks the folder. */
async function browseForModel(backend: Backend): Promise<void> {
  const current = readConfig().modelPath.trim();
  const folders = await vscode.window.showOpenDialog({
    canSelectFolders: true,
    canSelectFiles: false,
    canSelectMany: false,
    openLabel: 'Use This Model',
    title: 'AttentionViz: a model folder (config.json and weights)',
    ...(current ? { defaultUri: vscode.Uri.file(current) } : {}),
  });
  const folder = folders?.[0]?.fsPath;
  if (!folder) return;
  await vscode.workspace
    .getConfiguration('attentionViz')
    .update('modelPath', folder, vscode.ConfigurationTarget.Global);
  try {
    const [entry] = (await backend.request(Methods.modelsList, { paths: [folder] })).filter((m) => m.source === 'path');
    if (entry?.error) {
      const c = await vscode.window.showWarningMessage(
        `AttentionViz: ${MODEL_PATH_SETTING} is set to ${folder}, which cannot be used: ${entry.error}`,
        OPEN_SETTINGS,
      );
      if (c === OPEN_SETTINGS) await openModelPathSetting();
    } else if (entry) {
      void vscode.window.setStatusBarMessage(`AttentionViz: model ${entry.name} (${MODEL_PATH_SETTING})`, 4000);
    }
  } catch {
    /* the backend is not running: the next analysis says what is wrong */
  }
}
