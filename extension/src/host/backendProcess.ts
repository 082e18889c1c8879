// One running backend process and its JSON-RPC connection. No `vscode` import: unit tests drive it
// against a fake server. The lifecycle policy (restart, backoff, telling the user) lives in backend.ts.

import { spawn, type ChildProcess } from 'node:child_process';
import {
  createMessageConnection,
  StreamMessageReader,
  StreamMessageWriter,
  CancellationTokenSource,
  ProgressType,
  ResponseError,
  ErrorCodes as JsonRpcErrorCodes,
  Trace,
  type MessageConnection,
  type CancellationToken,
} from 'vscode-jsonrpc/node';
import {
  Methods,
  ErrorCodes,
  type InitializeParams,
  type InitializeResult,
  type NotificationMap,
  type RequestMap,
  type WorkDoneProgress,
} from '../shared/protocol';

export interface LaunchSpec {
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export type TraceLevel = 'off' | 'messages' | 'verbose';

export interface ProcessHooks {
  log(line: string): void;
  /** Called once when the process ends, for whatever reason; `expected` after stop(). */
  onExit(info: { code: number | null; signal: NodeJS.Signals | null; expected: boolean }): void;
}

const WORK_DONE = new ProgressType<WorkDoneProgress>();

export class CancelledError extends Error {
  constructor() {
    super('cancelled');
    this.name = 'CancelledError';
  }
}

/** The backend process ended while the request was in flight (the Backend restarts it and tells the user once). */
export class BackendStoppedError extends Error {
  constructor() {
    super('The backend stopped during the analysis and was restarted; run it again.');
    this.name = 'BackendStoppedError';
  }
}

export class BackendProcess {
  private child: ChildProcess | undefined;
  private connection: MessageConnection | undefined;
  private stopping = false;
  private exited = false;
  private readonly exitPromise: Promise<void>;
  private resolveExit!: () => void;
  initializeResult: InitializeResult | undefined;

  constructor(
    private readonly spec: LaunchSpec,
    private readonly hooks: ProcessHooks,
    private trace: TraceLevel = 'off',
  ) {
    this.exitPromise = new Promise((r) => (this.resolveExit = r));
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }
  get running(): boolean {
    return !!this.child && !this.exited;
  }

  /** Spawns the process and runs the `initialize` handshake. Rejects (and kills the process) on failure. */
  async start(clientVersion: string, timeoutMs = 60_000, allowPickle = false): Promise<InitializeResult> {
    const child = spawn(this.spec.command, this.spec.args, {
      cwd: this.spec.cwd,
      env: this.spec.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      windowsHide: true,
    });
    this.child = child;
    const spawnError = new Promise<never>((_, reject) => {
      child.once('error', (e) => reject(new Error(`could not start ${this.spec.command}: ${e.message}`)));
    });
    child.stderr!.setEncoding('utf8');
    let stderrTail = '';
    child.stderr!.on('data', (chunk: string) => {
      stderrTail = (stderrTail + chunk).slice(-4000);
      for (const line of chunk.split(/\r?\n/)) if (line.length) this.hooks.log(`[backend] ${line}`);
    });
    const exitInfo = new Promise<never>((_, reject) => {
      child.once('exit', (code, signal) => {
        this.exited = true;
        // Reject first: during start, this message (with stderr's last lines) is the one the user sees.
        const lastLines = stderrTail ? ': ' + stderrTail.trim().split('\n').slice(-3).join(' | ') : '';
        reject(new Error(`backend exited during start (code ${code}, signal ${signal})${lastLines}`));
        this.connection?.dispose();
        this.hooks.onExit({ code, signal, expected: this.stopping });
        this.resolveExit();
      });
    });
    exitInfo.catch(() => undefined);
    spawnError.catch(() => undefined);

    const connection = createMessageConnection(
      new StreamMessageReader(child.stdout!),
      new StreamMessageWriter(child.stdin!),
    );
    this.connection = connection;
    connection.onError(([e]) => this.hooks.log(`[rpc] error: ${e.message}`));
    child.stdin!.on('error', (e) => this.hooks.log(`[rpc] stdin: ${e.message}`));
    connection.listen();
    await this.setTrace(this.trace);

    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`backend did not answer initialize within ${timeoutMs / 1000} s`)),
        timeoutMs,
      );
    });
    const params: InitializeParams = { clientName: 'AttentionViz for VS Code', clientVersion, allowPickle };
    try {
      const result = await Promise.race([this.request(Methods.initialize, params), spawnError, exitInfo, timeout]);
      this.initializeResult = result;
      return result;
    } catch (e) {
      this.kill();
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  async setTrace(level: TraceLevel): Promise<void> {
    this.trace = level;
    if (!this.connection) return;
    const t = level === 'verbose' ? Trace.Verbose : level === 'messages' ? Trace.Messages : Trace.Off;
    await this.connection.trace(t, {
      log: (m: string, d?: string) => this.hooks.log(`[trace] ${m}${d ? '\n' + d : ''}`),
    });
  }

  /**
   * Sends a request. With `token`, cancelling it sends `$/cancelRequest` and rejects with CancelledError
   * (also when the server answers -32800). Params and result are typed by the generated RequestMap.
   */
  request<M extends keyof RequestMap>(
    method: M,
    params: RequestMap[M]['params'],
    token?: CancellationToken,
  ): Promise<RequestMap[M]['result']>;
  async request(method: string, params: unknown, token?: CancellationToken): Promise<unknown> {
    if (!this.connection || this.exited) throw new Error('backend is not running');
    try {
      const cancel = token ?? new CancellationTokenSource().token;
      // vscode-jsonrpc would send undefined params as [null], which a method without params refuses (-32602).
      return await (params === undefined
        ? this.connection.sendRequest(method, cancel)
        : this.connection.sendRequest(method, params, cancel));
    } catch (e) {
      if (e instanceof ResponseError && e.code === ErrorCodes.RequestCanceled) throw new CancelledError();
      if (token?.isCancellationRequested) throw new CancelledError();
      // vscode-jsonrpc's "Pending response rejected since connection got disposed": the process is gone.
      const lost =
        e instanceof ResponseError &&
        (e.code === JsonRpcErrorCodes.PendingResponseRejected || e.code === JsonRpcErrorCodes.ConnectionInactive);
      if (lost || this.exited) throw new BackendStoppedError();
      throw e;
    }
  }

  /**
   * Calls `listener` with each `$/progress` value (ServerNotificationMap) the server reports under `token`, until the
   * returned function is called. vscode-jsonrpc routes `$/progress` by token itself: a plain onNotification never
   * sees it.
   */
  onProgress(token: string, listener: (value: WorkDoneProgress) => void): () => void {
    if (!this.connection) return () => undefined;
    const d = this.connection.onProgress(WORK_DONE, token, listener);
    return () => d.dispose();
  }

  /** Sends a notification (no answer comes); params are typed by the generated NotificationMap. */
  notify<M extends keyof NotificationMap>(method: M, params: NotificationMap[M]['params']): Promise<void>;
  async notify(method: string, params: unknown): Promise<void> {
    if (!this.connection || this.exited) throw new Error('backend is not running');
    // As for requests: undefined params would go out as [null].
    await (params === undefined
      ? this.connection.sendNotification(method)
      : this.connection.sendNotification(method, params));
  }

  /** `shutdown` then `exit`, then a kill if it has not ended after `graceMs`. */
  async stop(graceMs = 2000): Promise<void> {
    if (!this.child || this.exited) return;
    this.stopping = true;
    try {
      if (this.connection) {
        // No params at all: `null` would go out as [null], which the backend refuses, and it then exits with 1.
        await Promise.race([this.request(Methods.shutdown, undefined), delay(graceMs)]);
        await this.notify(Methods.exit, undefined).catch(() => undefined);
      }
    } catch {
      /* the process may already be gone */
    }
    await Promise.race([this.exitPromise, delay(graceMs)]);
    this.kill();
    await Promise.race([this.exitPromise, delay(graceMs)]);
  }

  kill(): void {
    if (this.child && !this.exited) {
      try {
        this.child.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }
  }

  whenExited(): Promise<void> {
    return this.exitPromise;
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Backoff after the n-th consecutive crash (1-based): 0.5 s, 1 s, 2 s, … capped at 30 s. */
export function restartDelay(crashCount: number): number {
  return Math.min(30_000, 500 * 2 ** Math.max(0, crashCount - 1));
}

export { CancellationTokenSource, ResponseError };
