// Headless Debian Chromium through playwright-core (never a downloaded browser).
const { chromium } = require('../../../extension/node_modules/playwright-core');

const CHROMIUM = process.env.ATTENTIONVIZ_CHROMIUM || '/usr/bin/chromium';

function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

module.exports = { launch, CHROMIUM };
