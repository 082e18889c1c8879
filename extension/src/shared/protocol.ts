// The backend's JSON-RPC contract as the client sees it. The types come from the C# records
// (generated/protocol.ts, written by build.sh); this module adds the client's older names for them and
// the constants only the client needs. Params are by-name objects, names camelCase (docs/protocol.md).

import * as generated from './generated/protocol';

export * from './generated/protocol';

/** The generated method keys, plus the name the client has always used for attention/export. */
export const Methods = { ...generated.Methods, exportAttention: generated.Methods.export } as const;

/** The generated codes and the JSON-RPC range reserved for servers. */
export const ErrorCodes = {
  ...generated.ErrorCodes,
  AppErrorFirst: -32099,
  AppErrorLast: -32000,
} as const;

// The client's names for records whose C# names differ.
/** One token; [start, end) are UTF-16 offsets into the text that was sent. Special tokens: [0, 0), special = true. */
export type Token = generated.TokenDto;
export type AnalyzedModel = generated.ModelSummary;
/** data: base64 of little-endian float32, row-major [rows, cols]; row = query token, column = key token. */
export type MatrixResult = generated.MatrixDto;
export type RowResult = generated.RowDto;
export type MetricsResult = generated.MetricsDto;
export type ModularityResult = generated.ModularityDto;
export type ModularityAllResult = generated.ModularityAllDto;
/** A matrix in the attention/matrix format plus one unit per row/column (before pooling). */
export type ViewResult = generated.ViewDto;
/** raw[j] is null where the time budget ran out first (complete: false); flow only when complete. */
export type FlowResult = generated.FlowDto;
export type HistogramResult = generated.HistogramDto;
export type ExportResult = generated.ExportResult;

// Values the backend checks at run time; its records type them as strings.
export type RowDirection = 'from' | 'to';
export type HeadReduce = 'mean' | 'max';

/** The analysis methods the panel may ask for (through the host, which checks the analysisId). */
export const ANALYSIS_METHODS = [
  Methods.metrics,
  Methods.modularity,
  Methods.modularityAll,
  Methods.view,
  Methods.rollout,
  Methods.histogram,
  Methods.flow,
  Methods.rolloutRow,
  Methods.row,
  Methods.sections,
] as const;
export type AnalysisMethod = (typeof ANALYSIS_METHODS)[number];
