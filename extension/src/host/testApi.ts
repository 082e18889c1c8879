// What the integration tests read and drive inside the real extension host (activate()'s exports).
import * as vscode from 'vscode';
import type { Backend } from './backend';
import type { EditorOverlay } from './editorOverlay';
import type { PromptLenses } from './promptLens';
import type { StatusItem } from './status';
import type { PanelRouter } from './panelRouter';
import type { ShownAnalysis } from './session';
import { Methods, type RenderPngParams, type RenderPngResult, type RequestMap } from '../shared/protocol';
import { parseWebviewMessage, type ShownView } from '../shared/messages';
import type { ModelPick } from './modelPicks';

export interface TestApi {
  backendPid(): number | undefined;
  backendState(): string;
  session():
    | {
        seq: number;
        analysisId: string;
        tokens: number;
        pairTokens: number;
        valid: boolean;
        layer: number;
        head: number;
        truncated: boolean;
        truncatedAt?: number;
      }
    | undefined;
  /** The shown analysis' tokens: text, whether special or a chat template's own, and the document range they map to. */
  sessionTokens(): { text: string; special: boolean; source: [number, number] | null }[];
  /** The shown analysis' text (the decoded literal, the rendered chat) and its sections. */
  sessionText(): { text: string; sections: { name: string; start: number; end: number }[] } | undefined;
  decorationCount(): number;
  /** The token the editor tint is by (the cursor's, or one hovered in the panel); -1: none. */
  tintFocus(): number;
  /** The status bar item's text. */
  statusText(): string;
  /** CodeLens summaries computed so far (a cached one is not computed again). */
  lensesComputed(): number;
  /** A message as the panel would send it (validated like one), e.g. hovering a section. */
  panelMessage(m: unknown): Promise<boolean>;
  /** The document offsets of the section marked in the editor (hovered in the Sections tab). */
  markedSection(): [number, number] | undefined;
  /** The comparison last sent to the Diff tab: its alignment's length and each head's change. */
  lastDiff():
    | { aligned: number; before: string; beforeId: string; heads: { layer: number; head: number; score: number }[] }
    | undefined;
  /** The `$/progress` values of the latest analysis as "kind" or "kind: message" (e.g. "report: layer 3 of 30"). */
  progressReports(): string[];
  lastRendered(): { layer: number; head: number; litPixels: number } | undefined;
  panelOpen(): boolean;
  focusToken(token: number | null): Promise<void>;
  /** What the panel would get for an 'rpc' message (validated like one): rpcResult with the data's byte length, or
   * rpcError. */
  analysisRpc(
    method: string,
    params: Record<string, unknown>,
  ): Promise<{ type: string; result?: Record<string, unknown>; dataBytes?: number; message?: string }>;
  /** What the panel last reported showing, and a way to change it as its own controls would. */
  panelView(): ShownView | undefined;
  setPanelView(view: Partial<ShownView>): void;
  /** render/png straight from the backend, to compare with what Export Heatmap PNG saved. */
  renderPng(params: Omit<RenderPngParams, 'analysisId'> & { analysisId?: string }): Promise<RenderPngResult>;
  /** A request straight to the extension's running backend, over its own JSON-RPC client (long-input tests: an
   * analyze with a workDoneToken, a zoomed attention/matrix window, a release). */
  backendRequest<M extends TestRequest>(method: M, params: RequestMap[M]['params']): Promise<RequestMap[M]['result']>;
  /** The panel's last busy, idle or error line. */
  panelStatus(): { type: string; message: string } | undefined;
  /** The items Select Model would show now (the same function builds them). */
  modelPicks(): Promise<ModelPick[]>;
}

/** What backendRequest may send. */
type TestRequest = typeof Methods.analyze | typeof Methods.matrix | typeof Methods.release;
const TEST_REQUESTS: readonly string[] = [Methods.analyze, Methods.matrix, Methods.release];

export function createTestApi(
  modelPicks: () => Promise<ModelPick[]>,
  backend: Backend,
  shown: ShownAnalysis,
  router: PanelRouter,
  overlay: EditorOverlay,
  lenses: PromptLenses,
  status: StatusItem,
): TestApi {
  return {
    modelPicks,
    backendPid: () => backend.pid,
    backendState: () => backend.state.kind,
    session: () => {
      const s = shown.session;
      if (!s) return undefined;
      const { result } = s;
      return {
        seq: s.seq,
        analysisId: s.analysisId,
        tokens: result.tokens.length,
        pairTokens: result.tokens.filter((t) => t.typeId === 1 && !t.special).length,
        valid: s.valid,
        layer: router.view.layer,
        head: router.view.head,
        truncated: result.truncated,
        ...(result.truncatedAt !== undefined ? { truncatedAt: result.truncatedAt } : {}),
      };
    },
    sessionTokens: () => {
      const s = shown.session;
      if (!s) return [];
      return s.result.tokens.map((t) => ({
        text: t.text,
        special: t.special,
        source: (s.pair && t.typeId === 1) || t.special ? null : (s.map.sourceRange(t.start, t.end) ?? null),
      }));
    },
    sessionText: () => {
      const s = shown.session;
      return s && { text: s.text, sections: s.sections ?? [] };
    },
    decorationCount: () => overlay.decorationCount,
    tintFocus: () => overlay.tintFocus,
    lensesComputed: () => lenses.computed,
    statusText: () => status.text,
    panelMessage: async (raw) => {
      const m = parseWebviewMessage(raw);
      if (m) await router.receive(m);
      return m !== undefined;
    },
    markedSection: () => {
      const s = shown.session,
        r = overlay.markedSection;
      const doc = s && vscode.workspace.textDocuments.find((d) => d.uri.toString() === s.uri.toString());
      return r && doc ? [doc.offsetAt(r.start), doc.offsetAt(r.end)] : undefined;
    },
    lastDiff: () => {
      const d = router.lastDiff;
      return (
        d && { aligned: d.alignment.length, before: d.before.source, beforeId: d.before.analysisId, heads: d.heads }
      );
    },
    progressReports: () => [...backend.progressMessages],
    lastRendered: () => router.rendered,
    panelOpen: () => !!router.panel,
    panelStatus: () => router.panel?.lastStatus,
    focusToken: (t) => overlay.refresh(t ?? undefined),
    analysisRpc: async (method, params) => {
      const m = parseWebviewMessage({ type: 'rpc', requestId: 0, method, params });
      if (!m || m.type !== 'rpc') return { type: 'rejected' };
      const a = await router.answerRpc(m);
      if (a.type === 'rpcError') return { type: a.type, message: a.message };
      return { type: a.type, result: a.result, ...(a.data ? { dataBytes: a.data.byteLength } : {}) };
    },
    panelView: () => (router.panel ? router.view : undefined),
    setPanelView: (view) => router.post({ type: 'setView', ...view }),
    renderPng: (params) => {
      const analysisId = params.analysisId ?? shown.session?.analysisId;
      if (analysisId === undefined) return Promise.reject(new Error('no analysis is shown'));
      return backend.request(Methods.renderPng, { ...params, analysisId });
    },
    backendRequest: (method, params) => {
      if (!TEST_REQUESTS.includes(method)) return Promise.reject(new Error(`not a test request: ${method}`));
      return backend.request(method, params);
    },
  };
}
