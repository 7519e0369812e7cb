import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { validateConfig } from '../src/config/load.js';
import { batchTensors, type Window } from '../src/data/encode.js';
import { createModel, forward } from '../src/model/globalpointer.js';
import { Rng } from '../src/rng.js';
import { batchLoss, stopGradient, vatPerturbation } from '../src/train/regularizer.js';
import { lambdaAt, learningRateAt } from '../src/train/schedule.js';
import { tinySpec } from './tiny-model.js';

await tf.setBackend('cpu');

const spec = tinySpec({ numTypes: 2 });
const windows: Window[] = [
  { example: 0, ids: [1, 2, 3, 4, 5], offsets: [], base: 0, targets: [[0, 1, 2]] },
  { example: 1, ids: [6, 7, 8], offsets: [], base: 0, targets: [[1, 0, 0]] },
];
const input = batchTensors(windows, 2, 0, true); // ids [2, 5]; the second sample has 2 padding positions
const regularizer = (type: 'vat' | 'rdrop', epsilon = 2.5) =>
  validateConfig({ data: { train: 'x' }, regularizer: { type, vat: { epsilon, xi: 0.1, iterations: 2 } } }).regularizer;

test('VAT: ‖r_adv‖ = ε for every sample, and nothing on padding', () => {
  const model = createModel(spec, 1);
  const rng = new Rng(5);
  const target = forward(model, input.ids, input.mask, { training: true, rng });
  const r = vatPerturbation(model, input, target, regularizer('vat'), {}, rng); // [B, L, D]
  const norms = tf.sqrt(r.square().sum([1, 2])).dataSync();
  for (const n of norms) assert.ok(Math.abs(n - 2.5) < 1e-4, `norm ${n}`);
  const padding = r.slice([1, 3, 0], [1, 2, -1]);
  assert.equal(tf.max(tf.abs(padding)).dataSync()[0], 0);
  assert.ok(tf.max(tf.abs(r.slice([1, 0, 0], [1, 3, -1]))).dataSync()[0] > 0);
});

test('VAT: the clean logits get no gradient through the stop-gradient target', () => {
  const x = tf.tensor1d([1, -2, 3]);
  const g = tf.grad((v: tf.Tensor) => stopGradient(v).mul(v).sum())(x).dataSync();
  // d/dv Σ sg(v)·v = sg(v): the stopped factor contributes nothing.
  assert.deepEqual(Array.from(g), [1, -2, 3]);
  assert.deepEqual(Array.from(stopGradient(x).dataSync()), [1, -2, 3]);
});

for (const type of ['rdrop', 'vat'] as const) {
  test(`${type}: the loss is CE + λ·D, and λ = 0 gives the plain CE path`, () => {
    const model = createModel(spec, 2);
    const config = regularizer(type, 1);
    const rng = new Rng(9);
    const target = type === 'vat' ? forward(model, input.ids, input.mask, { training: true, rng }) : null;
    const direction = target ? vatPerturbation(model, input, target, config, {}, rng) : null;
    const parts = batchLoss(model, input, config, 0.5, {}, rng, direction);
    const [total, ce, d] = [parts.total, parts.ce, parts.divergence!].map((t) => t.dataSync()[0]);
    assert.ok(d > 0, 'two dropout samples or a perturbation disagree somewhat');
    assert.ok(Math.abs(total - (ce + 0.5 * d)) < 1e-4 * Math.max(1, total), `${total} vs ${ce} + 0.5·${d}`);
    const plain = batchLoss(model, input, config, 0, {}, rng, direction);
    assert.equal(plain.divergence, null);
  });
}

test('learning-rate schedules at chosen steps', () => {
  const peak = 1e-3;
  // 10 warm-up steps of 100: linear ramp to the peak, then each shape.
  assert.ok(Math.abs(learningRateAt(0, 100, peak, { type: 'linear', warmup: 10 }) - 1e-4) < 1e-12);
  assert.ok(Math.abs(learningRateAt(9, 100, peak, { type: 'linear', warmup: 10 }) - peak) < 1e-12);
  assert.ok(Math.abs(learningRateAt(55, 100, peak, { type: 'linear', warmup: 10 }) - peak * 0.5) < 1e-12);
  assert.ok(Math.abs(learningRateAt(55, 100, peak, { type: 'cosine', warmup: 10 }) - peak * 0.5) < 1e-12);
  assert.ok(Math.abs(learningRateAt(32.5, 100, peak, { type: 'cosine', warmup: 10 }) - peak * 0.5 * (1 + Math.cos(Math.PI / 4))) < 1e-12);
  assert.equal(learningRateAt(80, 100, peak, { type: 'constant', warmup: 10 }), peak);
  // A fraction < 1 is a share of all steps: 0.1 of 200 = 20 warm-up steps.
  assert.ok(Math.abs(learningRateAt(9, 200, peak, { type: 'constant', warmup: 0.1 }) - peak / 2) < 1e-12);
});

test('λ schedules: warm-up at 0, then a linear, cosine or step ramp, then constant', () => {
  const s = (type: 'linear' | 'cosine' | 'step', unit: 'steps' | 'epochs' = 'steps') => ({ type, warmup: 10, ramp: 20, unit });
  assert.equal(lambdaAt(5, 1000, 50, 2, s('linear')), 0);
  assert.equal(lambdaAt(10, 1000, 50, 2, s('linear')), 0);
  assert.equal(lambdaAt(20, 1000, 50, 2, s('linear')), 1);
  assert.ok(Math.abs(lambdaAt(20, 1000, 50, 2, s('cosine')) - 1) < 1e-12);
  assert.ok(Math.abs(lambdaAt(15, 1000, 50, 2, s('cosine')) - (1 - Math.cos(Math.PI / 4))) < 1e-12);
  assert.equal(lambdaAt(29, 1000, 50, 2, s('step')), 0);
  assert.equal(lambdaAt(30, 1000, 50, 2, s('step')), 2);
  assert.equal(lambdaAt(500, 1000, 50, 2, s('linear')), 2);
  // In epochs of 50 steps: warm-up 10 epochs = 500 steps, ramp 20 epochs = 1000 steps.
  assert.equal(lambdaAt(499, 5000, 50, 2, s('linear', 'epochs')), 0);
  assert.equal(lambdaAt(1000, 5000, 50, 2, s('linear', 'epochs')), 1);
});
