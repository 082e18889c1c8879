// Headless Debian Chromium through playwright-core (never a downloaded browser), and the panel as the extension
// serves it (the built HTML with its CSP and nonce, the built bundle and stylesheet) from a loopback server.
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { chromium } = require('../../../extension/node_modules/playwright-core');

const CHROMIUM = process.env.ATTENTIONVIZ_CHROMIUM || '/usr/bin/chromium';
const EXTENSION = path.resolve(__dirname, '../../../extension');

function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

const TYPES = { '.js': 'text/javascript', '.css': 'text/css' };

/** Serves /panel.html and extension/media/; resolves to { origin, nonce, close }. */
async function servePanel() {
  const { html } = require('../unit/lib.cjs');
  const nonce = html.makeNonce();
  let origin = '';
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/panel.html') {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(html.panelHtml({ cspSource: origin, scriptUri: `${origin}/media/webview.js`, styleUri: `${origin}/media/panel.css`, nonce }));
      return;
    }
    // Chromium asks for a favicon on its own now and then (a webview never does): not an error of the panel.
    if (url.pathname === '/favicon.ico') { res.writeHead(204); res.end(); return; }
    const file = path.join(EXTENSION, path.normalize(url.pathname));
    if (!file.startsWith(path.join(EXTENSION, 'media')) || !fs.existsSync(file)) { res.writeHead(404); res.end(); return; }
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' });
    res.end(fs.readFileSync(file));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${server.address().port}`;
  return { origin, nonce, close: () => server.close() };
}

module.exports = { launch, servePanel, CHROMIUM };
