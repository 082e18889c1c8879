// The backend's JSON-RPC contract (issue 2 + shared/docs/contract-notes.md), as the client sees it.
// Params are by-name objects, names camelCase. Keep in step with the C# side: tests/extension/unit
// checks this list of methods and fields against recorded real responses.

export const Methods = {
  initialize: 'initialize',
  modelsList: 'models/list',
  analyze: 'attention/analyze',
  matrix: 'attention/matrix',
  row: 'attention/row',
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
export interface Token { id: number; text: string; start: number; end: number; special: boolean; typeId: number }

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
export interface MatrixParams { analysisId: string; layer: number; head: number; maxSize?: number }

/** data: base64 of little-endian float32, row-major [rows, cols]; row = query token, column = key token. */
export interface MatrixResult {
  rows: number; cols: number; layer: number; head: number; pooled: boolean; poolFactor: number; data: string;
}

export type RowDirection = 'from' | 'to';
export interface RowParams { analysisId: string; layer: number; head: number; token: number; direction: RowDirection; topK?: number }
export interface RowResult { scores: number[]; top: { token: number; score: number }[] }

export const MEAN = -1;
