// Builds the extension: host bundle (CommonJS, `vscode` external) and webview bundle (IIFE) with
// esbuild, after type-checking both with tsc. Static media are copied into media/.
// Usage: node scripts/build.mjs [--no-typecheck] [--tests]
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
if (!args.has('--no-typecheck')) {
  for (const p of ['tsconfig.host.json', 'tsconfig.webview.json'])
    execFileSync(process.execPath, [tsc, '-p', join(root, p)], { stdio: 'inherit' });
}
rmSync(join(root, 'out'), { recursive: true, force: true });
rmSync(join(root, 'media'), { recursive: true, force: true });
mkdirSync(join(root, 'media'), { recursive: true });
cpSync(join(root, 'static'), join(root, 'media'), { recursive: true });

const common = { bundle: true, sourcemap: 'linked', logLevel: 'warning', legalComments: 'none', target: 'es2022' };
await build({
  ...common,
  entryPoints: [join(root, 'src/host/extension.ts')],
  outfile: join(root, 'out/host/extension.js'),
  platform: 'node',
  format: 'cjs',
  external: ['vscode'],
  minify: false,
});
await build({
  ...common,
  entryPoints: [join(root, 'src/webview/main.ts')],
  outfile: join(root, 'media/webview.js'),
  platform: 'browser',
  format: 'iife',
  minify: true,
});
// Pure modules and the node-only host pieces, for the unit tests (they import these directly).
await build({
  ...common,
  entryPoints: [
    'shared/colour',
    'shared/matrix',
    'shared/tokens',
    'shared/units',
    'shared/messages',
    'shared/protocol',
    'webview/zoom',
    'host/backendProcess',
    'host/html',
    'host/locate',
    'host/chatTemplate',
  ].map((p) => join(root, 'src', p + '.ts')),
  outdir: join(root, 'out/lib'),
  outbase: join(root, 'src'),
  platform: 'node',
  format: 'cjs',
  sourcemap: false,
});
console.log('extension built: out/host/extension.js, media/webview.js');
