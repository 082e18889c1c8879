// Every message between the extension host and the panel's webview, as one union keyed on `type`.
// Matrices travel as ArrayBuffers (structured clone), never as JSON number arrays.

import {
  ANALYSIS_METHODS,
  type AnalysisMethod,
  type AnalyzedModel,
  type HeadChange,
  type RequestMap,
  type TextSection,
  type Token,
} from './protocol';
import type { TruncationCause } from './tokens';

export interface AnalysisView {
  analysisId: string;
  model: AnalyzedModel;
  tokens: Token[];
  text: string;
  truncated: boolean;
  truncatedAt?: number;
  /** What cut it short, when truncated (the notice names the setting or the model's window). */
  truncation?: TruncationCause;
  elapsedMs: number;
  /** Where the text came from, e.g. "prompt.md:3–5". */
  source: string;
  /** Tokens of a chat template's own text (no document character produced them). */
  templateTokens?: number[];
  /** Named ranges of the text (a chat's messages), for the Sections tab. */
  sections?: TextSection[];
}

/** Compare with Previous Analysis / Git HEAD: the analysis before the edit, and attention/diff's answer. */
export interface DiffView {
  /** The shown analysis (after the edit). */
  afterId: string;
  before: { analysisId: string; source: string; tokens: Token[]; text: string; sections?: TextSection[] };
  /** Pairs [i, j]: token i of before is token j of after. */
  alignment: number[][];
  heads: HeadChange[];
}

export interface ViewState {
  layer: number; // -1 = mean over layers
  head: number; // -1 = mean over heads
  view: 'head' | 'grid';
  locked: { row: number | null; col: number | null } | null;
}

/** What the panel shows, as the host needs it: the editor tint's layer/head and what the exports draw. */
export interface ShownView {
  layer: number;
  head: number;
  view: 'head' | 'grid';
  hideSpecial: boolean;
  wordLevel: boolean;
  /** The panel's tab ("heatmap", "sections", "diff", …). */
  tab?: string;
}

/** An analysis method's params as a tab gives them: the panel adds the shown analysis' id. */
export type PanelParams<M extends AnalysisMethod> = Omit<RequestMap[M]['params'], 'analysisId'>;

/** An analysis method's result as the panel gets it: a matrix's base64 `data` travels decoded, beside it. */
export type PanelResult<M extends AnalysisMethod> = M extends AnalysisMethod
  ? Omit<RequestMap[M]['result'], 'data'>
  : never;

/** An analysis method (docs/protocol.md "Analysis") on the shown analysis; params include analysisId. */
export type RpcRequest<M extends AnalysisMethod = AnalysisMethod> = {
  [K in M]: { type: 'rpc'; requestId: number; method: K; params: RequestMap[K]['params'] };
}[M];

// ----- host → webview -----
export type HostToWebview =
  | { type: 'analysis'; analysis: AnalysisView; state?: Partial<ViewState> }
  | { type: 'busy'; message: string }
  /** Nothing is on its way (a cancelled analysis): the panel shows what it showed, with this note. */
  | { type: 'idle'; message: string }
  | { type: 'error'; message: string }
  /** The token under the editor's cursor, told when it changes (the panel highlights its row). */
  | { type: 'highlightToken'; token: number | null }
  /** The shown analysis compared with an earlier one: the panel opens its Diff tab. */
  | { type: 'diff'; diff: DiffView }
  | ({ type: 'setView' } & Partial<ShownView>)
  /** The answer to an 'rpc'; a matrix answer (view, rollout) has its base64 `data` decoded into `data` here. */
  | { type: 'rpcResult'; requestId: number; result: PanelResult<AnalysisMethod>; data?: ArrayBuffer }
  | { type: 'rpcError'; requestId: number; message: string };

// ----- webview → host -----
export type WebviewToHost =
  | { type: 'ready' }
  /** What the panel shows, sent when it changes: the editor tint follows it, the exports draw it. */
  | ({ type: 'viewChanged' } & ShownView)
  | { type: 'hoverToken'; token: number | null }
  /** A section hovered in the Sections tab (its index in the analysis's sections; null: none): the editor marks it. */
  | { type: 'hoverSection'; index: number | null }
  | { type: 'rendered'; layer: number; head: number; litPixels: number }
  | { type: 'log'; message: string }
  | RpcRequest
  /** The panel no longer needs the answer to this 'rpc' (e.g. a superseded attention/flow): cancel it. */
  | { type: 'cancelRpc'; requestId: number };

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
const isLayerOrHead = (v: unknown): v is number => isInt(v) && v >= -1 && v < 4096;
const isSpan = (v: unknown): v is [number, number] => Array.isArray(v) && v.length === 2 && v.every(isInt);
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isRange = (v: unknown): boolean => isObj(v) && isInt(v.start) && isInt(v.end);
/** attention/sections' named ranges: plain objects of a short name and two integers, at most 1,000. */
const isSections = (v: unknown): boolean =>
  Array.isArray(v) &&
  v.length <= 1000 &&
  v.every((s) => isRange(s) && typeof (s as Record<string, unknown>).name === 'string' && String(s.name).length <= 200);

/** Validates a message from the webview (untrusted: the webview renders model output). */
export function parseWebviewMessage(m: unknown): WebviewToHost | undefined {
  if (!isObj(m) || typeof m.type !== 'string') return undefined;
  switch (m.type) {
    case 'ready':
      return { type: 'ready' };
    case 'viewChanged':
      if (
        isLayerOrHead(m.layer) &&
        isLayerOrHead(m.head) &&
        (m.view === 'head' || m.view === 'grid') &&
        typeof m.hideSpecial === 'boolean' &&
        typeof m.wordLevel === 'boolean'
      ) {
        const { layer, head, view, hideSpecial, wordLevel } = m;
        const tab = typeof m.tab === 'string' && /^[a-z]{1,20}$/.test(m.tab) ? { tab: m.tab } : {};
        return { type: 'viewChanged', layer, head, view, hideSpecial, wordLevel, ...tab };
      }
      return undefined;
    case 'hoverToken':
      if (m.token === null || (isInt(m.token) && m.token >= 0))
        return { type: 'hoverToken', token: m.token as number | null };
      return undefined;
    case 'hoverSection':
      if (m.index === null || (isInt(m.index) && m.index >= 0))
        return { type: 'hoverSection', index: m.index as number | null };
      return undefined;
    case 'rendered':
      if (isLayerOrHead(m.layer) && isLayerOrHead(m.head) && isInt(m.litPixels))
        return { type: 'rendered', layer: m.layer, head: m.head, litPixels: m.litPixels };
      return undefined;
    case 'log':
      if (typeof m.message === 'string') return { type: 'log', message: m.message.slice(0, 2000) };
      return undefined;
    case 'rpc': {
      if (
        !isInt(m.requestId) ||
        typeof m.method !== 'string' ||
        !(ANALYSIS_METHODS as readonly string[]).includes(m.method) ||
        !isObj(m.params)
      )
        return undefined;
      const params = m.params;
      if (typeof params.analysisId !== 'string') return undefined;
      // Only plain scalars, [start, end) pairs (rowRange/colRange) and attention/sections' ranges travel on: the
      // backend validates their values (-32602).
      for (const [k, v] of Object.entries(params)) {
        if (k === 'sections' || k === 'query') {
          if (k === 'sections' ? isSections(v) : isRange(v)) continue;
          return undefined;
        }
        if (!['string', 'number', 'boolean'].includes(typeof v) && !isSpan(v)) return undefined;
      }
      // The shape is checked; which fields the method takes, and their values, the backend checks (-32602). Ranges
      // travel rebuilt, with their own fields only.
      const clean: Record<string, unknown> = { ...params };
      if (Array.isArray(params.sections))
        clean.sections = (params.sections as TextSection[]).map(({ name, start, end }) => ({ name, start, end }));
      if (isObj(params.query)) clean.query = { start: params.query.start, end: params.query.end };
      return { type: 'rpc', requestId: m.requestId, method: m.method, params: clean as unknown } as RpcRequest;
    }
    case 'cancelRpc':
      if (isInt(m.requestId)) return { type: 'cancelRpc', requestId: m.requestId };
      return undefined;
    default:
      return undefined;
  }
}

/** A matrix answer's data: an ArrayBuffer of exactly rows×cols float32 values (never a JSON number array). */
function isMatrixData(result: Record<string, unknown>, data: unknown): boolean {
  return (
    data instanceof ArrayBuffer &&
    isInt(result.rows) &&
    isInt(result.cols) &&
    data.byteLength === result.rows * result.cols * 4
  );
}

/** Validates a message from the host (the webview checks too: a malformed message is dropped, not half-applied). */
export function isHostMessage(m: unknown): m is HostToWebview {
  if (!isObj(m) || typeof m.type !== 'string') return false;
  switch (m.type) {
    case 'analysis':
      return isObj(m.analysis) && Array.isArray((m.analysis as Record<string, unknown>).tokens);
    case 'busy':
    case 'idle':
    case 'error':
      return typeof m.message === 'string';
    case 'highlightToken':
      return m.token === null || isInt(m.token);
    case 'diff':
      return isObj(m.diff) && Array.isArray(m.diff.heads) && Array.isArray(m.diff.alignment) && isObj(m.diff.before);
    case 'setView':
      return true;
    case 'rpcResult':
      return isInt(m.requestId) && isObj(m.result) && (m.data === undefined || isMatrixData(m.result, m.data));
    case 'rpcError':
      return isInt(m.requestId) && typeof m.message === 'string';
    default:
      return false;
  }
}
