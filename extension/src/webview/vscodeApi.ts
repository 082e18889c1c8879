import type { WebviewToHost } from '../shared/messages';

export interface VsCodeApi<S> {
  postMessage(message: WebviewToHost): void;
  getState(): S | undefined;
  setState(state: S): void;
}

declare function acquireVsCodeApi<S>(): VsCodeApi<S>;

export function getApi<S>(): VsCodeApi<S> {
  return acquireVsCodeApi<S>();
}
