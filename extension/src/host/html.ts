// The panel's HTML. Pure (no `vscode` import) so the webview test loads exactly this page.
import { randomBytes } from 'node:crypto';

export function makeNonce(): string {
  return randomBytes(18).toString('base64').replace(/[+/=]/g, (c) => (c === '+' ? '-' : c === '/' ? '_' : ''));
}

export interface PanelHtmlInput {
  cspSource: string; // the webview's resource origin
  scriptUri: string;
  styleUri: string;
  nonce: string;
}

const escapeAttr = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');

export function panelHtml({ cspSource, scriptUri, styleUri, nonce }: PanelHtmlInput): string {
  const csp = [
    "default-src 'none'",
    `img-src ${cspSource} data: blob:`,
    `style-src ${cspSource}`,
    `font-src ${cspSource}`,
    `script-src 'nonce-${nonce}'`,
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${escapeAttr(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${escapeAttr(styleUri)}">
<title>AttentionViz</title>
</head>
<body>
<div id="app" data-state="empty">
  <header id="toolbar" role="toolbar" aria-label="Attention view">
    <label>Layer <select id="layer" aria-label="Layer"></select></label>
    <label>Head <select id="head" aria-label="Head"></select></label>
    <span class="view-switch" role="group" aria-label="View">
      <button id="view-head" type="button" aria-pressed="true">Head</button>
      <button id="view-grid" type="button" aria-pressed="false">All heads</button>
    </span>
    <span id="meta" class="meta"></span>
  </header>
  <div id="notice" class="notice" hidden></div>
  <main id="main">
    <section id="head-view" aria-label="Attention heatmap">
      <div id="heatmap-wrap">
        <canvas id="heatmap" tabindex="0" aria-label="Attention heatmap: rows are query tokens, columns are key tokens"></canvas>
        <div id="tooltip" class="tooltip" role="status" hidden></div>
      </div>
      <aside id="legend" aria-label="Colour scale">
        <canvas id="legend-bar" width="14" height="200"></canvas>
        <div id="legend-ticks"></div>
      </aside>
    </section>
    <section id="grid-view" aria-label="All layers and heads" hidden>
      <div id="grid"></div>
    </section>
    <section id="token-strip" aria-label="Tokens coloured by attention"></section>
  </main>
  <footer id="status" class="status" role="status"></footer>
</div>
<script nonce="${nonce}" src="${escapeAttr(scriptUri)}"></script>
</body>
</html>`;
}
