// The one object that owns the backend: spawns it, runs the handshake, restarts it after a crash
// with backoff (telling the user once), cancels stale requests and disposes cleanly.
// Extension-lifetime disposables live here; process-lifetime ones live in BackendProcess.

import * as vscode from 'vscode';
import { appendFileSync } from 'node:fs';
import { BackendProcess, CancelledError, restartDelay, type LaunchSpec, type TraceLevel } from './backendProcess';
import { resolveBackend, SetupError } from './locate';
import { Methods, type InitializeResult, type RequestMap, type WorkDoneProgress } from '../shared/protocol';
import { backendEnv, type Config } from './config';

export type BackendState =
  | { kind: 'stopped' }
  | { kind: 'starting' }
  | { kind: 'ready'; model: string }
  | { kind: 'busy'; model: string; what: string; since: number }
  | { kind: 'error'; message: string };

export class Backend implements vscode.Disposable {
  private proc: BackendProcess | undefined;
  private starting: Promise<BackendProcess> | undefined;
  private crashCount = 0;
  private lastCrashAt = 0;
  private toldUserAboutCrash = false;
  private toldUserAboutSetup: string | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private disposed = false;
  private readonly stateEmitter = new vscode.EventEmitter<BackendState>();
  readonly onDidChangeState = this.stateEmitter.event;
  private _state: BackendState = { kind: 'stopped' };
  private busyCount = 0;
  private progressSeq = 0;
  /** The `$/progress` messages of the latest request with progress (read by the integration tests). */
  progressMessages: string[] = [];
  defaultModel = 'default';

  constructor(
    private readonly extensionPath: string,
    private readonly version: string,
    private readonly output: vscode.OutputChannel,
    private readonly config: () => Config,
  ) {}

  get state(): BackendState {
    return this._state;
  }
  get pid(): number | undefined {
    return this.proc?.running ? this.proc.pid : undefined;
  }
  get initializeResult(): InitializeResult | undefined {
    return this.proc?.initializeResult;
  }

  private setState(s: BackendState): void {
    this._state = s;
    this.stateEmitter.fire(s);
  }

  log(line: string): void {
    const stamped = `${new Date().toISOString().slice(11, 23)} ${line}`;
    this.output.appendLine(stamped);
    // Test runs also collect the log in a file (the output channel is not readable from outside).
    const file = process.env.ATTENTIONVIZ_LOG_FILE;
    if (file) {
      try {
        appendFileSync(file, stamped + '\n');
      } catch {
        /* best effort */
      }
    }
  }

  /** The running backend, starting it (with progress) if needed. Rejects with a user-facing message. */
  async ensureStarted(): Promise<BackendProcess> {
    if (this.disposed) throw new Error('AttentionViz is shutting down');
    if (this.proc?.running) return this.proc;
    if (this.restartTimer) {
      clearTimeout(this.restartTimer);
      this.restartTimer = undefined;
    }
    if (!this.starting) {
      this.starting = this.spawnAndInit().finally(() => (this.starting = undefined));
    }
    return this.starting;
  }

  private async spawnAndInit(): Promise<BackendProcess> {
    let spec: LaunchSpec;
    try {
      spec = resolveBackend(this.config().backendPath, this.extensionPath);
    } catch (e) {
      this.failSetup(e);
      throw e;
    }
    // The memory budget is read by the backend at start (a change restarts it: RESTART_SETTINGS).
    spec = { ...spec, env: { ...spec.env, ...backendEnv(this.config()) } };
    this.setState({ kind: 'starting' });
    this.log(`starting backend: ${spec.command} ${spec.args.join(' ')}`);
    const proc = new BackendProcess(
      spec,
      {
        log: (l) => this.log(l),
        onExit: (info) => this.onProcessExit(proc, info),
      },
      this.config().trace,
    );
    try {
      const init = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Window, title: 'AttentionViz: starting backend…' },
        () => proc.start(this.version, undefined, this.config().allowPickle),
      );
      this.proc = proc;
      this.defaultModel = init.defaultModel;
      // A readable model name for the status bar (models/list reads no weights).
      try {
        const models = await proc.request(Methods.modelsList, {});
        this.defaultModel = models.find((m) => m.id === init.defaultModel)?.name ?? init.defaultModel;
      } catch {
        /* keep the id */
      }
      this.log(
        `backend ready: server ${init.serverVersion}, protocol ${init.protocolVersion}, ` +
          `default model ${init.defaultModel}, pid ${proc.pid}`,
      );
      this.setState({ kind: 'ready', model: this.defaultModel });
      return proc;
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      this.log(`backend failed to start: ${message}`);
      this.setState({ kind: 'error', message });
      throw new Error(`AttentionViz backend failed to start: ${message}. See "AttentionViz: Show Backend Log".`, {
        cause: e,
      });
    }
  }

  private failSetup(e: unknown): void {
    const message = e instanceof Error ? e.message : String(e);
    this.setState({ kind: 'error', message });
    this.log(message);
    if (e instanceof SetupError) {
      this.log(e.hint);
      if (this.toldUserAboutSetup !== message) {
        this.toldUserAboutSetup = message;
        void vscode.window
          .showErrorMessage(`${message} ${e.hint}`, 'Show Log')
          .then((c) => c && this.output.show(true));
      }
    }
  }

  private onProcessExit(
    proc: BackendProcess,
    info: { code: number | null; signal: NodeJS.Signals | null; expected: boolean },
  ): void {
    this.log(`backend exited (code ${info.code}, signal ${info.signal})${info.expected ? '' : ' unexpectedly'}`);
    if (this.proc !== proc) return; // a start that failed, or an old process
    this.proc = undefined;
    if (info.expected || this.disposed) {
      this.setState({ kind: 'stopped' });
      return;
    }
    const now = Date.now();
    this.crashCount = now - this.lastCrashAt > 120_000 ? 1 : this.crashCount + 1;
    this.lastCrashAt = now;
    const wait = restartDelay(this.crashCount);
    const waitSeconds = (wait / 1000).toFixed(1);
    this.setState({
      kind: 'error',
      message: `backend crashed (code ${info.code}, signal ${info.signal}); restarting in ${waitSeconds} s`,
    });
    if (!this.toldUserAboutCrash) {
      this.toldUserAboutCrash = true;
      void vscode.window
        .showWarningMessage(
          'AttentionViz: the backend stopped unexpectedly and is being restarted. The log has the details.',
          'Show Log',
        )
        .then((c) => c && this.output.show(true));
    }
    if (this.crashCount <= 5) {
      this.restartTimer = setTimeout(() => {
        this.restartTimer = undefined;
        this.ensureStarted().catch(() => undefined);
      }, wait);
    } else {
      this.log('too many crashes in a row: not restarting automatically; the next command will try again');
    }
  }

  /**
   * A request with the state shown in the status bar; cancelled requests reject with CancelledError.
   * Params and result are typed by the generated RequestMap.
   */
  async request<M extends keyof RequestMap>(
    method: M,
    params: RequestMap[M]['params'],
    token?: vscode.CancellationToken,
    what?: string,
  ): Promise<RequestMap[M]['result']> {
    const proc = await this.ensureStarted();
    const model = this.defaultModel;
    if (what) {
      this.busyCount++;
      this.setState({ kind: 'busy', model, what, since: Date.now() });
    }
    try {
      return await proc.request(method, params, token);
    } finally {
      if (what && --this.busyCount === 0 && this.proc?.running) this.setState({ kind: 'ready', model });
    }
  }

  /**
   * An analyze-style request that reports `$/progress`: `onProgress` gets each value (layer k of L) and the status bar
   * shows its message. The token is unique per request.
   */
  async requestWithProgress<M extends keyof RequestMap>(
    method: M,
    params: RequestMap[M]['params'] & { workDoneToken?: string },
    onProgress: (value: WorkDoneProgress) => void,
    token: vscode.CancellationToken,
    what: string,
  ): Promise<RequestMap[M]['result']> {
    const proc = await this.ensureStarted();
    const workDoneToken = `attentionviz-${++this.progressSeq}`;
    const model = this.defaultModel;
    const since = Date.now();
    this.busyCount++;
    this.setState({ kind: 'busy', model, what, since });
    this.progressMessages = [];
    const stop = proc.onProgress(workDoneToken, (v) => {
      this.progressMessages.push(v.message ? `${v.kind}: ${v.message}` : v.kind);
      if (v.message && this.busyCount > 0) this.setState({ kind: 'busy', model, what: `${what} ${v.message}`, since });
      onProgress(v);
    });
    try {
      return await proc.request(method, { ...params, workDoneToken }, token);
    } finally {
      stop();
      if (--this.busyCount === 0 && this.proc?.running) this.setState({ kind: 'ready', model });
    }
  }

  async restart(): Promise<void> {
    this.crashCount = 0;
    const old = this.proc;
    this.proc = undefined;
    if (old) {
      this.log('restarting backend');
      await old.stop();
    }
    await this.ensureStarted();
  }

  async setTrace(level: TraceLevel): Promise<void> {
    await this.proc?.setTrace(level);
  }

  async stop(): Promise<void> {
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const p = this.proc;
    this.proc = undefined;
    if (p) await p.stop();
    this.setState({ kind: 'stopped' });
  }

  dispose(): void {
    this.disposed = true;
    void this.stop();
    this.stateEmitter.dispose();
  }
}

export { CancelledError, Methods };
