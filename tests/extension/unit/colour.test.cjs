const test = require('node:test');
const assert = require('node:assert/strict');
const { colour } = require('./lib.cjs');

const lum = ([r, g, b]) => 0.2126 * r + 0.7152 * g + 0.0722 * b;

test('ramp endpoints are viridis and values clamp', () => {
  assert.deepEqual(colour.rampColour(0), [68, 1, 84]);
  assert.deepEqual(colour.rampColour(1), [253, 231, 37]);
  assert.deepEqual(colour.rampColour(-3), [68, 1, 84]);
  assert.deepEqual(colour.rampColour(7), [253, 231, 37]);
  assert.deepEqual(colour.rampColour(NaN), [68, 1, 84]);
});

test('luminance rises monotonically with the weight (readable order in every theme)', () => {
  let prev = -1;
  for (let i = 0; i <= 100; i++) {
    const l = lum(colour.rampColour(i / 100));
    assert.ok(l >= prev - 1e-9, `step ${i}`);
    prev = l;
  }
});

test('scaleColour normalises by the view max; max 0 does not divide by zero', () => {
  assert.deepEqual(colour.scaleColour(0.5, 0.5), colour.rampColour(1));
  assert.deepEqual(colour.scaleColour(0.25, 0.5), colour.rampColour(0.5));
  assert.deepEqual(colour.scaleColour(0, 0), colour.rampColour(0));
});

test('legend ticks and editor tint', () => {
  assert.deepEqual(colour.legendTicks(1, 5).map((t) => t.label), ['0.00', '0.25', '0.50', '0.75', '1.00']);
  assert.deepEqual(colour.legendTicks(0.04, 3).map((t) => t.label), ['0.000', '0.020', '0.040']);
  assert.equal(colour.tint(0, 1), 'rgba(68, 1, 84, 0.15)');
  assert.equal(colour.tint(1, 1), 'rgba(253, 231, 37, 0.75)');
  assert.equal(colour.cssColour([1, 2, 3]), 'rgb(1, 2, 3)');
});
