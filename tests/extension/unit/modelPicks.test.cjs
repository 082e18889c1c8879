// Select Model's list (#13 point 14): every usable model with what models/list says of it, a broken one marked with
// its reason and the setting it came from, Browse… and Open Settings always there, also when the list failed.
const test = require('node:test');
const assert = require('node:assert/strict');
const { modelPickItems, describeModel, modelErrorMessage, formatSize } = require('./lib.cjs').modelPicks;

// Entries as models/list answers them (Models/ModelRegistry.List; the embedded one as recorded in fake-answers.json).
const embedded = {
  id: 'default', name: 'all-MiniLM-L6-v2 (embedded)', architecture: 'bert', layers: 6, heads: 12, source: 'embedded',
  family: 'BERT', keyValueHeads: 12, window: 512,
};
const smol = {
  id: '/hub/models--HuggingFaceTB--SmolLM2-135M/snapshots/abc', name: 'HuggingFaceTB/SmolLM2-135M', architecture: 'llama',
  layers: 30, heads: 9, source: 'hf-cache', path: '/hub/models--HuggingFaceTB--SmolLM2-135M/snapshots/abc',
  sizeBytes: 269060552, family: 'Llama', keyValueHeads: 3, window: 8192,
};
const missing = {
  id: '/w/no-such-model', name: 'no-such-model', architecture: 'unknown', layers: 0, heads: 0, source: 'path',
  path: '/w/no-such-model', error: 'Model folder not found: /w/no-such-model', family: '', keyValueHeads: 0, window: 0,
};
const corrupt = {
  id: '/w/corrupt', name: 'corrupt', architecture: 'unknown', layers: 0, heads: 0, source: 'path', path: '/w/corrupt',
  error: '/w/corrupt/config.json: not valid JSON', family: '', keyValueHeads: 0, window: 0,
};

test('a missing attentionViz.modelPath is marked with its reason, never a "0 layers × 0 heads" model', () => {
  const items = modelPickItems([embedded, missing, smol], { modelPath: '/w/no-such-model', selected: undefined });
  const broken = items.filter((i) => i.kind === 'broken');
  assert.equal(broken.length, 1);
  assert.equal(broken[0].label, '$(error) no-such-model');
  assert.equal(broken[0].description, 'cannot be used');
  assert.equal(broken[0].detail, 'Model folder not found: /w/no-such-model (from attentionViz.modelPath)');
  assert.equal(broken[0].setting, 'attentionViz.modelPath');
  for (const i of items) assert.doesNotMatch(`${i.label} ${i.description ?? ''}`, /0 layers × 0 heads|unknown/);
  // The usable models are all still there, each described.
  const models = items.filter((i) => i.kind === 'model');
  assert.deepEqual(models.map((m) => m.id), ['default', smol.id]);
  assert.equal(models[1].description, 'Llama · 257 MB · 30 layers × 9 heads · 3 kv heads · window 8,192');
  assert.equal(models[1].detail, `Hugging Face cache · ${smol.path}`);
  assert.equal(models[0].description, 'BERT · embedded · 6 layers × 12 heads · 12 kv heads · window 512');
  // The setting wins, and it is broken: no usable model is shown as the one in use.
  assert.ok(models.every((m) => !m.picked && !m.label.startsWith('$(check)')));
  assert.deepEqual(items.slice(-2).map((i) => i.kind), ['browse', 'settings']);
  assert.equal(items.at(-2).label, '$(folder-opened) Browse…');
  assert.equal(items.at(-1).label, '$(gear) Open Settings');
});

test('a corrupt model beside the others: the list stays, the broken one says why; the one in use is checked', () => {
  const items = modelPickItems([embedded, smol, corrupt], { modelPath: '', selected: smol.id });
  assert.deepEqual(items.map((i) => i.kind), ['model', 'model', 'broken', 'separator', 'browse', 'settings']);
  assert.equal(items[1].label, '$(check) HuggingFaceTB/SmolLM2-135M');
  assert.equal(items[1].picked, true);
  assert.equal(items[0].picked, false);
  assert.match(items[2].detail, /config\.json: not valid JSON/);
  // Without a selection the embedded one is in use; a modelPath that names a listed folder is, even with a slash.
  assert.equal(modelPickItems([embedded, smol], { modelPath: '', selected: undefined })[0].picked, true);
  const byPath = modelPickItems([embedded, smol], { modelPath: smol.path + '/', selected: 'default' });
  assert.deepEqual(byPath.filter((i) => i.picked).map((i) => i.id), [smol.id]);
});

test('when models/list fails, Select Model still offers the embedded model, Browse… and Open Settings', () => {
  const items = modelPickItems(undefined, { modelPath: '/w/x', selected: undefined, listError: 'The backend is not running.' });
  assert.deepEqual(items.map((i) => i.kind), ['unavailable', 'model', 'separator', 'browse', 'settings']);
  assert.equal(items[0].detail, 'The backend is not running.');
  assert.equal(items[1].id, 'default');
});

test('sizes, and model errors naming the setting they came from', () => {
  assert.equal(formatSize(269060552), '257 MB');
  assert.equal(formatSize(988097824), '942 MB');
  assert.equal(formatSize(1_500_000_000), '1.40 GB');
  assert.equal(formatSize(605544), '0.6 MB');
  assert.equal(describeModel({ ...smol, sizeBytes: undefined }), 'Llama · size unknown · 30 layers × 9 heads · 3 kv heads · window 8,192');
  // #14: the family, and the sliding window of a Gemma's local layers; model_type when the family is not known.
  const gemma = {
    ...smol, architecture: 'gemma3_text', family: 'Gemma 3', layers: 26, heads: 8, keyValueHeads: 4, window: 32768,
    slidingWindow: 512, sizeBytes: 1_900_000_000,
  };
  assert.equal(describeModel(gemma), 'Gemma 3 · 1.77 GB · 26 layers × 8 heads · 4 kv heads · window 32,768 · sliding 512');
  assert.equal(describeModel({ ...smol, family: '' }), 'llama · 257 MB · 30 layers × 9 heads · 3 kv heads · window 8,192');
  assert.deepEqual(modelErrorMessage('Model folder not found: /w/x', { modelPath: '/w/x', selected: 'default' }), {
    text: 'AttentionViz: Model folder not found: /w/x (from the setting attentionViz.modelPath)', button: 'Open Settings',
  });
  assert.deepEqual(modelErrorMessage('bad weights', { modelPath: '', selected: smol.id }), {
    text: 'AttentionViz: bad weights (the model picked with Select Model)', button: 'Select Model',
  });
  assert.deepEqual(modelErrorMessage('bad', { modelPath: '', selected: undefined }), { text: 'AttentionViz: bad', button: undefined });
});
