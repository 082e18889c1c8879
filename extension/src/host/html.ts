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
    <label class="toggle"><input type="checkbox" id="hide-special"> Hide special tokens</label>
    <label class="toggle"><input type="checkbox" id="word-level"> Word level</label>
    <span id="meta" class="meta"></span>
  </header>
  <div id="tabs" role="tablist" aria-label="Views">
    <button type="button" role="tab" id="tab-heatmap" aria-controls="panel-heatmap" aria-selected="true" tabindex="0">Heatmap</button>
    <button type="button" role="tab" id="tab-heads" aria-controls="panel-heads" aria-selected="false" tabindex="-1">Heads</button>
    <button type="button" role="tab" id="tab-graph" aria-controls="panel-graph" aria-selected="false" tabindex="-1">Graph</button>
    <button type="button" role="tab" id="tab-lines" aria-controls="panel-lines" aria-selected="false" tabindex="-1">Lines</button>
    <button type="button" role="tab" id="tab-distributions" aria-controls="panel-distributions" aria-selected="false" tabindex="-1">Distributions</button>
    <button type="button" role="tab" id="tab-rollout" aria-controls="panel-rollout" aria-selected="false" tabindex="-1">Rollout</button>
  </div>
  <div id="notice" class="notice" hidden></div>
  <main id="main">
    <div role="tabpanel" id="panel-heatmap" aria-labelledby="tab-heatmap" tabindex="-1">
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
    </div>
    <div role="tabpanel" id="panel-heads" aria-labelledby="tab-heads" tabindex="-1" hidden>
      <div class="tab-controls"><label>Colour heads by <select id="heads-metric" aria-label="Metric for the heads grid"></select></label> <span id="heads-summary" class="meta"></span></div>
      <div id="heads-grid" role="group" aria-label="Heads coloured by the chosen metric"></div>
      <table id="heads-table" aria-label="Metrics of every layer and head"><thead><tr id="heads-head"></tr></thead><tbody id="heads-body"></tbody></table>
    </div>
    <div role="tabpanel" id="panel-graph" aria-labelledby="tab-graph" tabindex="-1" hidden>
      <div class="tab-controls">
        <label>Edges from <select id="graph-source" aria-label="Graph source"><option value="head">the selected head</option><option value="mean">the layer mean</option></select></label>
        <label>Threshold <input type="range" id="graph-threshold" min="0.01" max="0.5" step="0.01" value="0.1" aria-label="Edge threshold"></label>
        <output id="graph-threshold-value" for="graph-threshold">0.10</output>
        <span id="graph-q" class="meta" role="status"></span>
      </div>
      <p id="graph-note" class="caption" hidden></p>
      <canvas id="graph-canvas" tabindex="0" aria-label="Attention graph: tokens as nodes on a circle, edges where attention is above the threshold, colours are modularity communities"></canvas>
    </div>
    <div role="tabpanel" id="panel-lines" aria-labelledby="tab-lines" tabindex="-1" hidden>
      <div class="tab-controls"><span id="lines-heads" role="group" aria-label="Heads shown"></span></div>
      <p id="lines-note" class="caption" hidden></p>
      <div id="lines-view">
        <div id="lines-left" class="lines-col" aria-label="Query tokens"></div>
        <canvas id="lines-canvas" aria-hidden="true"></canvas>
        <div id="lines-right" class="lines-col" aria-label="Key tokens"></div>
      </div>
    </div>
    <div role="tabpanel" id="panel-distributions" aria-labelledby="tab-distributions" tabindex="-1" hidden>
      <h3 id="dist-weights-title" class="chart-title">Attention weights</h3>
      <canvas id="dist-weights" aria-labelledby="dist-weights-title"></canvas>
      <div class="tab-controls"><label>Metric across heads <select id="dist-metric" aria-label="Metric histogram"></select></label></div>
      <h3 id="dist-metric-title" class="chart-title">Metric</h3>
      <canvas id="dist-metrics" aria-labelledby="dist-metric-title"></canvas>
    </div>
    <div role="tabpanel" id="panel-rollout" aria-labelledby="tab-rollout" tabindex="-1" hidden>
      <p id="rollout-caption" class="meta">Attention rollout (Abnar &amp; Zuidema 2020) through every layer: row i is how much token i's final representation draws on each input token.</p>
      <div class="tab-controls">
        <label>Attention flow of <select id="flow-token" aria-label="Token whose attention flow to compare with its rollout row"></select></label>
        <span id="flow-status" class="meta" role="status"></span>
      </div>
      <div id="rollout-view">
        <canvas id="rollout-canvas" tabindex="0" aria-label="Attention rollout heatmap: click a row, or use the arrow keys, to compare its rollout with its attention flow"></canvas>
        <figure id="flow-figure" hidden>
          <figcaption id="flow-caption" class="caption"></figcaption>
          <table id="flow-table" aria-describedby="flow-caption"><thead><tr><th scope="col">input</th><th scope="col">rollout</th><th scope="col">flow</th></tr></thead><tbody id="flow-body"></tbody></table>
        </figure>
      </div>
    </div>
  </main>
  <footer id="status" class="status" role="status"></footer>
</div>
<script nonce="${nonce}" src="${escapeAttr(scriptUri)}"></script>
</body>
</html>`;
}
