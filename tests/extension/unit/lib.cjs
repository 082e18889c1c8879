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
  modelPicks: require(path.join(lib, 'host/modelPicks.js')),
  backendProcess: require(path.join(lib, 'host/backendProcess.js')),
  textMap: require(path.join(lib, 'shared/textMap.js')),
  sections: require(path.join(lib, 'shared/sections.js')),
  modelName: require(path.join(lib, 'shared/modelName.js')),
  exportName: require(path.join(lib, 'shared/exportName.js')),
  decode: require(path.join(lib, 'host/prompt/decode.js')),
  literals: require(path.join(lib, 'host/prompt/literals.js')),
  findPrompt: require(path.join(lib, 'host/prompt/findPrompt.js')),
  chatText: require(path.join(lib, 'host/prompt/chatText.js')),
  parsers: require(path.join(lib, 'host/prompt/parsers.js')),
  grammarsDir: path.join(__dirname, '../../../extension/media/grammars'),
  fakeBackend: path.join(__dirname, '../fake/fake-backend.js'),
};
