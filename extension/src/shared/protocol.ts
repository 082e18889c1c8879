// The backend's JSON-RPC contract (issue 2 + shared/docs/contract-notes.md), as the client sees it.
// Params are by-name objects, names camelCase. Keep in step with the C# side: tests/extension/unit
// checks this list of methods and fields against recorded real responses.

export const Methods = {
  initialize: 'initialize',
  modelsList: 'models/list',
  analyze: 'attention/analyze',
  matrix: 'attention/matrix',
  row: 'attention/row',
  metrics: 'attention/metrics',
  modularity: 'attention/modularity',
  modularityAll: 'attention/modularityAll',
  view: 'attention/view',
  rollout: 'attention/rollout',
  flow: 'attention/flow',
  histogram: 'attention/histogram',
  exportAttention: 'attention/export',
  renderPng: 'render/png',
  release: 'attention/release',
  shutdown: 'shutdown',
  exit: 'exit',
} as const;

export const ErrorCodes = {
  MethodNotFound: -32601,
  InvalidParams: -32602,
  RequestCancelled: -32800,
  AppErrorFirst: -32099,
  AppErrorLast: -32000,
} as const;

export interface InitializeParams { clientName?: string; clientVersion?: string; allowPickle?: boolean }
export interface InitializeResult { serverVersion: string; protocolVersion: string; defaultModel: string }

/** source: 'embedded' | 'path' | 'hf-cache'; error says why a listed folder cannot be loaded. */
export interface ModelInfo {
  id: string; name: string; architecture: string; layers: number; heads: number; source: string;
  path?: string; sizeBytes?: number; error?: string;
}

export interface ModelsListParams { paths?: string[] }

/** textPair: the second text of a sentence pair (its tokens have typeId 1 and offsets into textPair). */
export interface AnalyzeParams { text: string; modelId?: string; maxTokens?: number; textPair?: string }

/** One token; [start, end) are UTF-16 offsets into the text that was sent. Special tokens: [0, 0), special = true. */
export interface Token {
  id: number; text: string; start: number; end: number; special: boolean; typeId: number;
  /** The token as shown (markers dropped, invisible characters escaped): the backend's TokenDisplay. */
  display?: string; continuation?: boolean; leadingSpace?: boolean;
}

export interface AnalyzedModel { id: string; architecture: string; layers: number; heads: number; causal: boolean }

export interface AnalyzeResult {
  analysisId: string;
  model: AnalyzedModel;
  tokens: Token[];
  truncated: boolean;
  /** UTF-16 offset into the sent text where the analyzed text ends (present when truncated). */
  truncatedAt?: number;
  elapsedMs: number;
}

/** layer -1 = mean over layers, head -1 = mean over heads. */
export interface ReleaseParams { analysisId: string }
export interface ReleaseResult { released: boolean }

export interface MatrixParams { analysisId: string; layer: number; head: number; maxSize?: number }

/** data: base64 of little-endian float32, row-major [rows, cols]; row = query token, column = key token. */
export interface MatrixResult {
  rows: number; cols: number; layer: number; head: number; pooled: boolean; poolFactor: number; data: string;
}

export type RowDirection = 'from' | 'to';
export interface RowParams { analysisId: string; layer: number; head: number; token: number; direction: RowDirection; topK?: number }
export interface RowResult { scores: number[]; top: { token: number; score: number }[] }

export const MEAN = -1;

// ----- Analysis (docs/protocol.md "Analysis") -----

export interface HeadMetric {
  layer: number; head: number; entropy: number; normalizedEntropy: number; meanDistance: number; firstToken: number;
  cls?: number; sep?: number; sink: boolean; previousToken: number; self: number; duplicateToken: number; induction: number;
  selfDistance: number;
}
export interface MetricsParams { analysisId: string }
export interface MetricsResult { layers: number; heads: number; causal: boolean; sinkThreshold: number; metrics: HeadMetric[]; elapsedMs: number }

export interface ModularityParams { analysisId: string; layer: number; head: number; includeSelfLoops?: boolean }
export interface ModularityResult { layer: number; head: number; q: number; communities: number[]; communityCount: number; includeSelfLoops: boolean }
export interface ModularityAllParams { analysisId: string; includeSelfLoops?: boolean }
export interface ModularityAllResult { includeSelfLoops: boolean; heads: { layer: number; head: number; q: number; communityCount: number }[]; elapsedMs: number }

/** One row/column of a view: a token, or a word merged from subword tokens [firstToken, lastToken]. */
export interface ViewUnit { text: string; start: number; end: number; firstToken: number; lastToken: number; special: boolean }
export type HeadReduce = 'mean' | 'max';
export interface ViewParams { analysisId: string; layer: number; head: number; hideSpecial?: boolean; wordLevel?: boolean; maxSize?: number; headReduce?: HeadReduce }
/** A matrix in the attention/matrix format plus one unit per row/column (before pooling). */
export interface ViewResult {
  rows: number; cols: number; layer: number; head: number; pooled: boolean; poolFactor: number; data: string; units: ViewUnit[];
}
export interface RolloutParams { analysisId: string; layer?: number; hideSpecial?: boolean; wordLevel?: boolean; maxSize?: number }

/** Attention flow of one token (raw tokens, no view options); layer omitted = the last; timeBudgetMs default 3000. */
export interface FlowParams { analysisId: string; token: number; layer?: number; timeBudgetMs?: number }
/**
 * raw[j]: the max-flow from (layer, token) to input j, null when the time budget ran out first (complete: false);
 * flow: raw normalised to sum 1, only when complete; upperBound[j] ≥ raw[j] always.
 */
export interface FlowResult { token: number; layer: number; flow?: number[]; raw: (number | null)[]; upperBound: number[]; complete: boolean; elapsedMs: number }

export type MetricName = 'entropy' | 'normalizedEntropy' | 'meanDistance' | 'firstToken' | 'cls' | 'sep' | 'previousToken' | 'self' | 'duplicateToken' | 'induction' | 'selfDistance';
export const METRIC_NAMES: readonly MetricName[] = ['entropy', 'normalizedEntropy', 'meanDistance', 'firstToken', 'cls', 'sep', 'previousToken', 'self', 'duplicateToken', 'induction', 'selfDistance'];
export interface HistogramParams { analysisId: string; layer?: number; head?: number; bins?: number; excludeSpecial?: boolean; metric?: MetricName }
export interface HistogramResult { counts: number[]; edges: number[]; min: number; max: number; total: number; metric?: string }

/** The analysis methods the panel may ask for (through the host, which checks the analysisId). */
/** A SkiaSharp image of one layer/head (or the whole grid); `png` is base64, left out when `path` was given. */
export interface RenderPngParams {
  analysisId: string; layer?: number; head?: number; grid?: boolean; cellSize?: number; size?: number; maxSize?: number;
  colorMap?: 'viridis' | 'greys'; theme?: 'light' | 'dark'; scaleMax?: number; path?: string; hideSpecial?: boolean; wordLevel?: boolean;
}
export interface RenderPngResult { png?: string; width: number; height: number; path?: string; bytes?: number }

export const ANALYSIS_METHODS = [Methods.metrics, Methods.modularity, Methods.modularityAll, Methods.view, Methods.rollout, Methods.histogram, Methods.flow] as const;
export type AnalysisMethod = typeof ANALYSIS_METHODS[number];
