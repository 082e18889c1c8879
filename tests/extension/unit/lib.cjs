// Loads the extension's pure modules as built by extension/scripts/build.mjs (out/lib). `matrix` also
// carries the tests' reference pooling and ranking (reference.cjs), which the backend's answers are held against.
const path = require('node:path');
const reference = require('./reference.cjs');
const lib = path.join(__dirname, '../../../extension/out/lib');
module.exports = {
  colour: require(path.join(lib, 'shared/colour.js')),
  matrix: { ...require(path.join(lib, 'shared/matrix.js')), ...reference },
  tokens: require(path.join(lib, 'shared/tokens.js')),
  units: require(path.join(lib, 'shared/units.js')),
  messages: require(path.join(lib, 'shared/messages.js')),
  protocol: require(path.join(lib, 'shared/protocol.js')),
  zoom: require(path.join(lib, 'webview/zoom.js')),
  html: require(path.join(lib, 'host/html.js')),
  locate: require(path.join(lib, 'host/locate.js')),
  chatTemplate: require(path.join(lib, 'host/chatTemplate.js')),
  backendProcess: require(path.join(lib, 'host/backendProcess.js')),
  fakeBackend: path.join(__dirname, '../fake/fake-backend.js'),
};
