// What every tab shares: the shown analysis and the view state, and the one
// request path to the host (analysis methods through 'rpc', matrices included), cached per analysis.
import { getApi } from './vscodeApi';
import type { AnalysisView, PanelParams, PanelResult, RpcRequest, ViewState } from '../shared/messages';
import { axisLabel, tokenLabel } from '../shared/tokens';
import { Methods, type AnalysisMethod, type ViewUnit } from '../shared/protocol';
import { frame, type TabId } from './frame';

export interface Options {
  tab: TabId;
  hideSpecial: boolean;
  wordLevel: boolean;
  headsMetric: string;
  distMetric: string;
  graphSource: 'head' | 'mean';
  threshold: number;
  sortKey: string;
  sortDesc: boolean;
  /** How a long heatmap's overview (and a window still too big) is pooled. */
  pooling: 'max' | 'mean';
}
export interface Persisted extends ViewState {
  analysis?: AnalysisView;
  options?: Partial<Options>;
  flowToken?: number | null;
}
/** An analysis method's answer: its result, and a matrix's values (view, rollout) decoded. */
export interface RpcAnswer<M extends AnalysisMethod = AnalysisMethod> {
  result: PanelResult<M>;
  data?: Float32Array;
}

export const vscode = getApi<Persisted>();
/** The mutable panel state, one object so every module sees the same values. */
export const app: {
  analysis: AnalysisView | undefined;
  state: ViewState;
  options: Options;
  hover: { row: number | null; col: number | null };
  editorFocus: number | null;
  /** The Rollout tab's picked token (its attention flow is shown), kept across hide/restore. */
  flowToken: number | null;
} = {
  analysis: undefined,
  state: { layer: 0, head: 0, view: 'head', locked: null },
  options: {
    tab: 'heatmap',
    hideSpecial: false,
    wordLevel: false,
    headsMetric: 'entropy',
    distMetric: 'selfDistance',
    graphSource: 'head',
    threshold: 0.1,
    sortKey: '',
    sortDesc: false,
    pooling: 'max',
  },
  hover: { row: null, col: null },
  editorFocus: null,
  flowToken: null,
};

const rpcCache = new Map<string, Promise<RpcAnswer | undefined>>();
const rpcPending = new Map<number, (a: RpcAnswer | undefined) => void>();
const rpcIds = new Map<string, number>();
let nextRequest = 1;

/** Set by main.ts: redraws the current tab (tabs call it to navigate without importing main). */
let renderHook: () => Promise<void> = () => Promise.resolve();
export function setRenderHook(f: () => Promise<void>): void {
  renderHook = f;
}
export function render(): Promise<void> {
  return renderHook();
}

export function persist(): void {
  vscode.setState({
    ...app.state,
    options: app.options,
    flowToken: app.flowToken,
    ...(app.analysis ? { analysis: app.analysis } : {}),
  });
}

/** Canonical key of an analysis request: the method and its params without analysisId, keys sorted. */
export function rpcKey(method: string, params: object): string {
  return `${method} ${JSON.stringify(
    Object.fromEntries(
      Object.entries(params)
        .filter(([k]) => k !== 'analysisId')
        .sort(([a], [b]) => (a < b ? -1 : 1)),
    ),
  )}`;
}

/** An analysis method through the host (cached per analysis); undefined when it failed (the status line says why). */
export function rpc<M extends AnalysisMethod>(method: M, params: PanelParams<M>): Promise<RpcAnswer<M> | undefined> {
  // The answer is this method's: the cache is keyed by method and params, the host answers by requestId.
  return ask(method, params) as Promise<RpcAnswer<M> | undefined>;
}

/** The same on the analysis the shown one is compared with (the Diff tab's "before"); the host checks the id. */
export function rpcBefore<M extends AnalysisMethod>(
  analysisId: string,
  method: M,
  params: PanelParams<M>,
): Promise<RpcAnswer<M> | undefined> {
  return ask(method, params, analysisId) as Promise<RpcAnswer<M> | undefined>;
}

function ask(method: AnalysisMethod, params: object, otherId?: string): Promise<RpcAnswer | undefined> {
  const analysis = app.analysis;
  if (!analysis) return Promise.resolve(undefined);
  const analysisId = otherId ?? analysis.analysisId;
  const k = (otherId ? `${otherId} ` : '') + rpcKey(method, params);
  const hit = rpcCache.get(k);
  if (hit) return hit;
  const requestId = nextRequest++;
  rpcIds.set(k, requestId);
  const p = new Promise<RpcAnswer | undefined>((resolve) => {
    rpcPending.set(requestId, resolve);
    const withId = { ...params, analysisId };
    vscode.postMessage({ type: 'rpc', requestId, method, params: withId } as RpcRequest);
  });
  rpcCache.set(k, p);
  // Failed answers and partial ones (a flow whose time budget ran out) are asked again next time, not kept.
  void p.then((a) => {
    if (rpcIds.get(k) === requestId) rpcIds.delete(k);
    if ((!a || ('complete' in a.result && a.result.complete === false)) && rpcCache.get(k) === p) rpcCache.delete(k);
  });
  return p;
}

/** Cancels an analysis request still in flight (the host relays $/cancelRequest); it settles as undefined. */
export function cancelRpc<M extends AnalysisMethod>(method: M, params: PanelParams<M>): void {
  const requestId = rpcIds.get(rpcKey(method, params));
  if (requestId === undefined || !rpcPending.has(requestId)) return;
  vscode.postMessage({ type: 'cancelRpc', requestId });
  resolveRpc(requestId, undefined);
}

/** An answer from the host; false when nobody waits for it (e.g. a cancelled request). */
export function resolveRpc(requestId: number, answer: RpcAnswer | undefined): boolean {
  const r = rpcPending.get(requestId);
  rpcPending.delete(requestId);
  r?.(answer);
  return r !== undefined;
}

/** Forgets every cached answer and settles every pending request (a new analysis). */
export function resetRequests(): void {
  rpcCache.clear();
  // A new analysis: the backend need not finish the old one's requests (a flow can keep the cores busy for seconds).
  for (const [requestId, r] of rpcPending) {
    vscode.postMessage({ type: 'cancelRpc', requestId });
    r(undefined);
  }
  rpcPending.clear();
  rpcIds.clear();
}

/** Only the options that are on travel (so equal views share one request). */
export function viewFlags(): { hideSpecial?: boolean; wordLevel?: boolean } {
  return {
    ...(app.options.hideSpecial ? { hideSpecial: true } : {}),
    ...(app.options.wordLevel ? { wordLevel: true } : {}),
  };
}

export function unitLabels(u: ViewUnit[]): string[] {
  return u.map((x) => axisLabel(x));
}

export function labels(): string[] {
  return (app.analysis?.tokens ?? []).map((t) => axisLabel(t));
}

export function tokenName(i: number): string {
  const t = app.analysis?.tokens[i];
  if (!t) return `#${i}`;
  return tokenLabel(t);
}

export function syncControls(): void {
  frame.layer.value = String(app.state.layer);
  frame.head.value = String(app.state.head);
}

/**
 * One layer/head of the current view (attention/view: hide special tokens and word level applied), or a window of it
 * (rowRange/colRange), pooled to `maxSize` cells per side when given and still bigger. units: the rows/columns when a
 * view option is on; null when they are the tokens. rowRange/colRange/poolFactor/pooling: what was served.
 */
export interface ViewMatrix {
  rows: number;
  cols: number;
  poolFactor: number;
  data: Float32Array;
  units: ViewUnit[] | null;
  rowRange: [number, number];
  colRange: [number, number];
  pooling: 'max' | 'mean';
}
export interface ViewWindow {
  maxSize?: number;
  pooling?: 'max' | 'mean';
  rowRange?: [number, number];
  colRange?: [number, number];
  /** false: the caller draws no labels (a thumbnail), so the answer need not carry the units */
  units?: boolean;
}
export async function viewMatrix(
  layer: number,
  head: number,
  w: ViewWindow | number = {},
): Promise<ViewMatrix | undefined> {
  const flags = viewFlags();
  const win: ViewWindow = typeof w === 'number' ? { maxSize: w } : w;
  // The default pooling (max) travels only when asked for, so equal views share one request.
  const { pooling, units: wanted, ...rest } = win;
  // Units are read only when a view option makes them differ from the tokens: otherwise they stay in the backend
  // (at 512 tokens they were most of each answer: 46 KB of JSON, 4 MB for the model view's grid).
  const withUnits = Object.keys(flags).length > 0 && wanted !== false;
  const v = await rpc(Methods.view, {
    layer,
    head,
    ...flags,
    ...rest,
    ...(pooling === 'mean' ? { pooling } : {}),
    ...(withUnits ? {} : { includeUnits: false }),
  });
  if (!v?.data) return undefined;
  const r = v.result;
  const units = withUnits ? (r.units ?? null) : null;
  const span = (s: number[] | undefined, n: number): [number, number] =>
    s && s.length === 2 ? [s[0]!, s[1]!] : [0, n];
  return {
    rows: r.rows,
    cols: r.cols,
    poolFactor: r.poolFactor,
    data: v.data,
    units,
    rowRange: span(r.rowRange, r.rows * r.poolFactor),
    colRange: span(r.colRange, r.cols * r.poolFactor),
    pooling: r.pooling === 'mean' ? 'mean' : 'max',
  };
}

/** Row/column i of a view: its unit's name, or the token's when units is null. */
export function unitName(units: ViewUnit[] | null, i: number): string {
  if (!units) return tokenName(i);
  return units[i] ? tokenLabel(units[i]!) : `#${i}`;
}

/** The token the editor tints for row/column i of a view: a word's first piece. */
export function unitToken(units: ViewUnit[] | null, i: number): number | null {
  if (!units) return i;
  return units[i]?.firstToken ?? null;
}
