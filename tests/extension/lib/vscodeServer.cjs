// Runs a REAL VS Code extension host: code-server's bundled stock VS Code server (server-main.js)
// on Node 24, driven by headless Chromium. See shared/docs/recipes.md, "Real VS Code on this machine".
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { launch } = require('./browser.cjs');

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
    s.on('error', reject);
  });
}

async function waitForHttp(url, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try { const r = await fetch(url); if (r.status < 500) return; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url} did not answer within ${ms} ms`);
}

/** Starts server-main.js; returns { port, url, stop(), log }. */
async function startServer({ tmp, log }) {
  const node = process.env.ATTENTIONVIZ_NODE24;
  const cs = process.env.ATTENTIONVIZ_CODE_SERVER;
  if (!node || !cs) throw new Error('run scripts/install-test-tools.sh and source its env.sh (ATTENTIONVIZ_NODE24, ATTENTIONVIZ_CODE_SERVER)');
  const port = await freePort();
  const dirs = Object.fromEntries(['ud', 'sd', 'ext', 'xdg-config', 'xdg-data'].map((d) => [d, path.join(tmp, d)]));
  for (const d of Object.values(dirs)) fs.mkdirSync(d, { recursive: true });
  const child = spawn(node, [path.join(cs, 'lib/vscode/out/server-main.js'), '--host', '127.0.0.1', '--port', String(port),
    '--without-connection-token', '--accept-server-license-terms', '--user-data-dir', dirs.ud, '--server-data-dir', dirs.sd,
    '--extensions-dir', dirs.ext, '--enable-smoke-test-driver', '--disable-telemetry', '--disable-workspace-trust'], {
    env: { ATTENTIONVIZ_LOG_FILE: path.join(__dirname, '../.output/extension-host.log'), ...process.env, XDG_CONFIG_HOME: dirs['xdg-config'], XDG_DATA_HOME: dirs['xdg-data'], VSCODE_AGENT_FOLDER: dirs.sd },
    stdio: ['ignore', 'pipe', 'pipe'], detached: true,
  });
  const logStream = fs.createWriteStream(log);
  child.stdout.pipe(logStream); child.stderr.pipe(logStream);
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(url + '/version', 60_000);
  return {
    port, url,
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      try { process.kill(-child.pid, 'SIGTERM'); } catch { /* gone */ }
      setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } }, 3000).unref();
    }),
  };
}

/**
 * Runs an extension test suite (a module exporting run()) in the real extension host and returns
 * { code, lines } where lines are the console lines of the suite (prefixed "[suite]").
 */
async function runExtensionSuite({ extensionPath, testsPath, workspace, timeoutMs = 480_000, screenshot }) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'avz-it-'));
  const outDir = path.join(__dirname, '../.output');
  fs.mkdirSync(outDir, { recursive: true });
  const server = await startServer({ tmp, log: path.join(outDir, 'integration-server.log') });
  const browser = await launch();
  const lines = [];
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    let finish;
    const done = new Promise((r) => (finish = r));
    await page.exposeFunction('codeAutomationExit', (code) => { finish(code); });
    page.on('console', (m) => {
      const t = m.text();
      const i = t.indexOf('[suite]');
      if (i < 0) return;
      const line = t.slice(i + 8);
      // The suite asks for a picture of the window as it is now (it waits a moment before going on).
      const shot = /^screenshot ([\w-]+)$/.exec(line);
      if (shot) { void page.screenshot({ path: path.join(outDir, `${shot[1]}.png`) }).catch(() => undefined); return; }
      lines.push(line);
      process.stdout.write(`  ${line}\n`);
    });
    const remote = (p) => `vscode-remote://127.0.0.1:${server.port}${p}`;
    const payload = [['extensionDevelopmentPath', remote(extensionPath)], ['extensionTestsPath', remote(testsPath)]];
    await page.goto(`${server.url}/?folder=${encodeURIComponent(workspace)}&payload=${encodeURIComponent(JSON.stringify(payload))}`);
    let handle;
    const timer = new Promise((r) => { handle = setTimeout(() => r('timeout'), timeoutMs); });
    const code = await Promise.race([done, timer]);
    clearTimeout(handle);
    if (screenshot) await page.screenshot({ path: screenshot }).catch(() => undefined);
    return { code, lines };
  } finally {
    await browser.close();
    await server.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

module.exports = { startServer, runExtensionSuite, freePort, waitForHttp };
