// One UI end-to-end run as a person would do it: code-server (started by the product's own
// extension/scripts/run-code-server.sh, with the packaged .vsix and its bundled backend), driven by
// Playwright in headless Chromium: open a file, select a line, run the command from the palette,
// wait for the painted heatmap and the tokens, hover a cell and read its score, take screenshots.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { launch } = require('../lib/browser.cjs');
const { freePort } = require('../lib/vscodeServer.cjs');
const here = path.dirname(new URL(import.meta.url).pathname);
const repo = path.resolve(here, '../../..');
const outDir = path.join(here, '../.output');
fs.mkdirSync(outDir, { recursive: true });

async function startCodeServer(workspace, port) {
  const child = spawn('bash', [path.join(repo, 'extension/scripts/run-code-server.sh'), workspace, String(port)], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const log = fs.createWriteStream(path.join(outDir, 'e2e-code-server.log'));
  child.stderr.pipe(log);
  const url = await new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error('run-code-server.sh printed no URL within 300 s')), 300_000);
    child.stdout.on('data', (d) => {
      buf += d;
      const m = /AttentionViz: open (\S+)/.exec(buf);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.on('exit', (code) => reject(new Error(`run-code-server.sh exited ${code}`)));
  });
  return { url, stop: () => { try { process.kill(-child.pid, 'SIGTERM'); } catch { /* gone */ } } };
}

test('select a line, run the command from the palette, see the heatmap, hover a score', async () => {
  const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'avz-e2e-ws-'));
  const server = await startCodeServer(workspace, await freePort());
  const browser = await launch();
  const page = await browser.newPage({ viewport: { width: 1600, height: 900 } });
  try {
    await page.goto(server.url);
    await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
    // Open prompt.md from the explorer.
    const row = page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'prompt.md' });
    await row.waitFor({ timeout: 60_000 });
    await row.click();
    const line = page.locator('.monaco-editor .view-lines .view-line', { hasText: 'The animal didn' });
    await line.waitFor({ timeout: 30_000 });
    // Select the line: click into it, Home, Shift+End.
    await line.click();
    await page.keyboard.press('Home');
    await page.keyboard.press('Shift+End');
    // Run the command from the palette (retried: right after start-up the palette may not list extension commands yet).
    let found = false;
    for (let attempt = 0; attempt < 4 && !found; attempt++) {
      await page.keyboard.press('F1');
      const input = page.locator('.quick-input-widget .quick-input-box input');
      await input.waitFor();
      await input.fill('>AttentionViz: Show Attention for Selection');
      const item = page.locator('.quick-input-list .monaco-list-row', { hasText: 'Show Attention for Selection' }).first();
      found = await item.waitFor({ timeout: 15_000 }).then(() => true, () => false);
      if (found) await page.keyboard.press('Enter');
      else { await page.keyboard.press('Escape'); await line.click(); await page.keyboard.press('Home'); await page.keyboard.press('Shift+End'); }
    }
    assert.ok(found, 'the command is in the palette');

    // The panel: a painted heatmap and the tokens.
    const frame = page.frameLocator('iframe.webview.ready').frameLocator('iframe#active-frame');
    await frame.locator('#app[data-state="painted"]').waitFor({ timeout: 180_000 });
    const tokens = await frame.locator('#token-strip .tok').allTextContents();
    assert.ok(tokens.includes('animal') && tokens.includes('[CLS]') && tokens.includes('tired'), tokens.join(' '));
    assert.match(await frame.locator('#meta').textContent(), /bert · 6×12/);

    // Hover a cell (query row 2, key column 5) and read its score.
    const canvas = frame.locator('#heatmap');
    const geo = await canvas.evaluate((c) => ({ ...c.dataset }));
    const box = await canvas.boundingBox();
    const cell = Number(geo.cell);
    const r = 2, c = 5;
    await page.mouse.move(box.x + Number(geo.left) + (c + 0.5) * cell, box.y + Number(geo.top) + (r + 0.5) * cell);
    const tip = frame.locator('#tooltip');
    await tip.waitFor({ state: 'visible' });
    const text = await tip.textContent();
    const m = /^(.+) → (.+): (\d\.\d{4})$/.exec(text);
    assert.ok(m, text);
    assert.equal(m[1], tokens[r]);
    assert.equal(m[2], tokens[c]);
    assert.ok(Number(m[3]) > 0 && Number(m[3]) < 1);
    console.log(`# tooltip: ${text}`);
    await page.screenshot({ path: path.join(outDir, 'e2e-panel.png') });

    // The editor: tokens of the selection are tinted (decorations) — put the cursor on a word.
    await line.click({ position: { x: 40, y: 5 } });
    await page.waitForTimeout(800);
    await page.screenshot({ path: path.join(outDir, 'e2e-editor-tint.png') });

    // The editor hover: top-5 attended tokens with scores.
    const word = page.locator('.monaco-editor .view-lines .view-line span', { hasText: 'animal' }).first();
    const wbox = await word.boundingBox();
    await page.mouse.move(wbox.x + 5, wbox.y + wbox.height / 2);
    await page.mouse.move(wbox.x + 12, wbox.y + wbox.height / 2);
    const hover = page.locator('.monaco-hover', { hasText: 'AttentionViz' }).first();
    await hover.waitFor({ timeout: 30_000 });
    const hoverText = await hover.textContent();
    assert.equal((hoverText.match(/\b[01]\.\d{4}\b/g) ?? []).length, 5, hoverText);
    await page.screenshot({ path: path.join(outDir, 'e2e-editor-hover.png') });
    await page.mouse.move(5, 5);

    // The grid of all heads.
    await frame.locator('#view-grid').click();
    await frame.locator('#app[data-grid="painted"]').waitFor({ timeout: 60_000 });
    assert.equal(await frame.locator('.thumb.painted').count(), 7 * 13);
    await page.screenshot({ path: path.join(outDir, 'e2e-grid.png') });
  } catch (e) {
    await page.screenshot({ path: path.join(outDir, 'e2e-failure.png') }).catch(() => undefined);
    throw e;
  } finally {
    await browser.close();
    server.stop();
    fs.rmSync(workspace, { recursive: true, force: true });
  }
});
