import * as vscode from 'vscode';
import type { TraceLevel } from './backendProcess';

export interface Config {
  modelPath: string;
  /** 0: the model's window (the backend caps it at 32,768), sent as no maxTokens at all. */
  maxTokens: number;
  /** The backend's one memory budget, ATTENTIONVIZ_CACHE_MB. */
  memoryBudgetMB: number;
  followSelection: boolean;
  backendPath: string;
  allowPickle: boolean;
  trace: TraceLevel;
  /** Chats render with the template's generation prompt (the assistant turn the model would write next). */
  addGenerationPrompt: boolean;
  /** Where each section of a prompt starts (a regular expression); empty: tags, headings or paragraphs. */
  sectionPattern: string;
  codeLens: boolean;
}

// In an untrusted workspace VS Code returns only user-level values for the restrictedConfigurations of package.json
// (modelPath, backendPath, allowPickle), so a workspace cannot point the backend at files of its choosing.
export function readConfig(): Config {
  const c = vscode.workspace.getConfiguration('attentionViz');
  const trace = c.get<string>('trace.server', 'off');
  return {
    modelPath: c.get<string>('modelPath', '') ?? '',
    maxTokens: maxTokens(c.get<number>('maxTokens', 0)),
    memoryBudgetMB: Math.max(MIN_BUDGET_MB, Math.floor(c.get<number>('memoryBudgetMB', 4096) ?? 4096)),
    followSelection: c.get<boolean>('followSelection', false) ?? false,
    backendPath: c.get<string>('backendPath', '') ?? '',
    allowPickle: c.get<boolean>('allowPickle', false) ?? false,
    trace: trace === 'messages' || trace === 'verbose' ? trace : 'off',
    addGenerationPrompt: c.get<boolean>('chatTemplate.addGenerationPrompt', true) ?? true,
    sectionPattern: c.get<string>('sectionPattern', '') ?? '',
    codeLens: c.get<boolean>('codeLens.enabled', true) ?? true,
  };
}

const MIN_BUDGET_MB = 256;

/** 0 (or nonsense) means the model's window; anything else at least 3 (a text plus two special tokens). */
function maxTokens(v: number | undefined): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) return 0;
  return Math.max(3, Math.floor(v));
}

/** Settings whose change needs a backend restart (the budget is read from the environment at start). */
export const RESTART_SETTINGS = ['attentionViz.backendPath', 'attentionViz.allowPickle', 'attentionViz.memoryBudgetMB'];

/** The backend's environment for these settings. */
export function backendEnv(c: Config): Record<string, string> {
  return { ATTENTIONVIZ_CACHE_MB: String(c.memoryBudgetMB) };
}
