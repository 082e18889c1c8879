import * as vscode from 'vscode';
import type { TraceLevel } from './backendProcess';

export interface Config {
  modelPath: string;
  maxTokens: number;
  followSelection: boolean;
  backendPath: string;
  allowPickle: boolean;
  trace: TraceLevel;
}

// In an untrusted workspace VS Code returns only user-level values for the restrictedConfigurations of package.json
// (modelPath, backendPath, allowPickle), so a workspace cannot point the backend at files of its choosing.
export function readConfig(): Config {
  const c = vscode.workspace.getConfiguration('attentionViz');
  const trace = c.get<string>('trace.server', 'off');
  return {
    modelPath: c.get<string>('modelPath', '') ?? '',
    maxTokens: Math.max(3, Math.floor(c.get<number>('maxTokens', 512) ?? 512)),
    followSelection: c.get<boolean>('followSelection', false) ?? false,
    backendPath: c.get<string>('backendPath', '') ?? '',
    allowPickle: c.get<boolean>('allowPickle', false) ?? false,
    trace: trace === 'messages' || trace === 'verbose' ? trace : 'off',
  };
}

/** Settings whose change needs a backend restart. */
export const RESTART_SETTINGS = ['attentionViz.backendPath', 'attentionViz.allowPickle'];
