// Finds `dotnet` and the backend. Order: the `attentionViz.backendPath` setting (a .dll or its folder),
// then the backend bundled in the extension (`backend/`), then ATTENTIONVIZ_BACKEND_DIR.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { LaunchSpec } from './backendProcess';

export const BACKEND_DLL = 'attentionviz-backend.dll';

export class SetupError extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
    this.name = 'SetupError';
  }
}

const WELL_KNOWN_DOTNET = [
  '/usr/share/dotnet/dotnet',
  '/usr/lib/dotnet/dotnet',
  '/usr/local/share/dotnet/dotnet',
  path.join(os.homedir(), '.dotnet', 'dotnet'),
];

export function findDotnet(
  env: NodeJS.ProcessEnv = process.env,
  wellKnown: readonly string[] = WELL_KNOWN_DOTNET,
): string | undefined {
  const candidates: string[] = [];
  if (env.DOTNET_ROOT) candidates.push(path.join(env.DOTNET_ROOT, 'dotnet'));
  for (const dir of (env.PATH ?? '').split(path.delimiter)) if (dir) candidates.push(path.join(dir, 'dotnet'));
  candidates.push(...wellKnown);
  return candidates.find(isExecutable);
}

function isExecutable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Resolves the backend launch command. Throws SetupError with a message a user can act on. */
export function resolveBackend(
  configured: string,
  extensionPath: string,
  env: NodeJS.ProcessEnv = process.env,
  wellKnownDotnet?: readonly string[],
): LaunchSpec {
  const childEnv: NodeJS.ProcessEnv = {
    ...env,
    OMP_WAIT_POLICY: 'PASSIVE',
    DOTNET_CLI_TELEMETRY_OPTOUT: '1',
    DOTNET_NOLOGO: '1',
  };
  const candidates: { path: string; from: string }[] = [];
  if (configured.trim())
    candidates.push({ path: expandHome(configured.trim()), from: 'the setting attentionViz.backendPath' });
  candidates.push({ path: path.join(extensionPath, 'backend'), from: 'the extension' });
  if (env.ATTENTIONVIZ_BACKEND_DIR)
    candidates.push({ path: env.ATTENTIONVIZ_BACKEND_DIR, from: 'ATTENTIONVIZ_BACKEND_DIR' });

  for (const c of candidates) {
    let p = c.path;
    if (fs.existsSync(p) && fs.statSync(p).isDirectory()) p = path.join(p, BACKEND_DLL);
    if (!fs.existsSync(p)) {
      if (c.from.startsWith('the setting')) {
        throw new SetupError(
          `AttentionViz: the backend was not found at ${c.path} (from ${c.from}).`,
          'Fix attentionViz.backendPath or clear it to use the bundled backend.',
        );
      }
      continue;
    }
    if (p.endsWith('.js')) {
      // A JavaScript stand-in (development and tests only) runs on the extension host's Node.
      return {
        command: process.execPath,
        args: [p],
        env: { ...childEnv, ELECTRON_RUN_AS_NODE: '1' },
        cwd: path.dirname(p),
      };
    }
    const dotnet = findDotnet(env, wellKnownDotnet);
    if (!dotnet) {
      throw new SetupError(
        'AttentionViz needs the .NET 10 runtime, and `dotnet` was not found.',
        'Install the .NET 10 runtime (e.g. `sudo apt-get install dotnet-runtime-10.0`, or from dot.net), ' +
          'then run "AttentionViz: Restart Backend".',
      );
    }
    return { command: dotnet, args: [p, 'serve'], env: childEnv, cwd: path.dirname(p) };
  }
  throw new SetupError(
    'AttentionViz: no backend found (the extension ships none, and attentionViz.backendPath is empty).',
    'Install the AttentionViz .vsix built by ./build.sh, ' +
      'or set attentionViz.backendPath to the folder of attentionviz-backend.dll.',
  );
}

function expandHome(p: string): string {
  return p.startsWith('~/') ? path.join(os.homedir(), p.slice(2)) : p;
}
