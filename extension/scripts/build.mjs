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
// tree-sitter's runtime and grammars (Inspect Prompt at Cursor), as their npm packages ship them.
const grammars = join(root, 'media', 'grammars');
mkdirSync(grammars, { recursive: true });
for (const wasm of [
  'web-tree-sitter/web-tree-sitter.wasm',
  'tree-sitter-python/tree-sitter-python.wasm',
  'tree-sitter-javascript/tree-sitter-javascript.wasm',
  'tree-sitter-typescript/tree-sitter-typescript.wasm',
  'tree-sitter-typescript/tree-sitter-tsx.wasm',
  'tree-sitter-c-sharp/tree-sitter-c_sharp.wasm',
  'tree-sitter-json/tree-sitter-json.wasm',
  '@tree-sitter-grammars/tree-sitter-yaml/tree-sitter-yaml.wasm',
])
  cpSync(join(root, 'node_modules', wasm), join(grammars, wasm.split('/').pop()));

const common = { bundle: true, sourcemap: 'linked', logLevel: 'warning', legalComments: 'none', target: 'es2022' };
// web-tree-sitter's ESM build finds its .wasm through import.meta.url, which a CommonJS bundle lacks:
// take its CJS build.
const alias = { 'web-tree-sitter': join(root, 'node_modules/web-tree-sitter/web-tree-sitter.cjs') };
await build({
  ...common,
  entryPoints: [join(root, 'src/host/extension.ts')],
  outfile: join(root, 'out/host/extension.js'),
  platform: 'node',
  format: 'cjs',
  external: ['vscode'],
  alias,
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
    'host/modelPicks',
    'shared/textMap',
    'shared/sections',
    'shared/modelName',
    'shared/exportName',
    'host/prompt/decode',
    'host/prompt/literals',
    'host/prompt/findPrompt',
    'host/prompt/chatText',
    'host/prompt/parsers',
  ].map((p) => join(root, 'src', p + '.ts')),
  outdir: join(root, 'out/lib'),
  outbase: join(root, 'src'),
  alias,
  platform: 'node',
  format: 'cjs',
  sourcemap: false,
});
console.log('extension built: out/host/extension.js, media/webview.js');
