// Finds the REAL backend for the integration/e2e suites and the fixture recorder.
// Order: ATTENTIONVIZ_BACKEND_DIR, then the repo's Release build output.
const fs = require('node:fs');
const path = require('node:path');

const repo = path.resolve(__dirname, '../../..');
const DLL = 'attentionviz-backend.dll';

function backendDir() {
  const candidates = [process.env.ATTENTIONVIZ_BACKEND_DIR, path.join(repo, 'src/Backend/bin/Release/net10.0/linux-x64')].filter(Boolean);
  return candidates.find((d) => fs.existsSync(path.join(d, DLL)));
}

/** Launch command of the real backend, or undefined. */
function realBackend() {
  const dir = backendDir();
  if (!dir) return undefined;
  return { command: 'dotnet', args: [path.join(dir, DLL), 'serve'], env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' }, dir };
}

module.exports = { repo, backendDir, realBackend, DLL };
