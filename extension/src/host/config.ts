import * as vscode from 'vscode';
import type { TraceLevel } from './backendProcess';

export interface Config {
  modelPath: string;
  maxTokens: number;
  followSelection: boolean;
  backendPath: string;
  trace: TraceLevel;
}

export function readConfig(): Config {
  const c = vscode.workspace.getConfiguration('attentionViz');
  const trace = c.get<string>('trace.server', 'off');
  return {
    modelPath: c.get<string>('modelPath', '') ?? '',
    maxTokens: Math.max(3, Math.floor(c.get<number>('maxTokens', 512) ?? 512)),
    followSelection: c.get<boolean>('followSelection', false) ?? false,
    backendPath: c.get<string>('backendPath', '') ?? '',
    trace: trace === 'messages' || trace === 'verbose' ? trace : 'off',
  };
}

/** Settings whose change needs a backend restart. */
export const RESTART_SETTINGS = ['attentionViz.backendPath'];
