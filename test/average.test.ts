/** The parameters' moving average (training.ema): its formula, and swapping it in for evaluation without loss. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { createAdamWState, disposeAdamWState, updateAverage, withAverage } from '../src/train/optimizer.js';

await tf.setBackend('cpu');

test('the average starts at the parameters and follows a ← d·a + (1 − d)·p with d = min(decay, (1 + t) / (10 + t))', () => {
  const params = new Map([['w', tf.variable(tf.tensor1d([1, 2]))]]);
  const state = createAdamWState(params, true);
  assert.deepEqual(state.average!.get('w')!.arraySync(), [1, 2]);
  let expected = [1, 2];
  for (const [t, value] of [[1, [3, 2]], [2, [5, -2]], [200, [0, 0]]] as Array<[number, number[]]>) {
    params.get('w')!.assign(tf.tensor1d(value));
    updateAverage(params, state.average!, 0.9, t);
    const d = Math.min(0.9, (1 + t) / (10 + t));
    expected = expected.map((a, i) => d * a + (1 - d) * value[i]);
    (state.average!.get('w')!.arraySync() as number[]).forEach((a, i) => assert.ok(Math.abs(a - expected[i]) < 1e-6, `step ${t}: ${a} vs ${expected[i]}`));
  }
  assert.equal(createAdamWState(params).average, null);
  disposeAdamWState(state);
  params.get('w')!.dispose();
});

test('withAverage evaluates with the averaged values and puts the trained ones back, leaking nothing', () => {
  const params = new Map([['w', tf.variable(tf.tensor1d([1, 2]))]]);
  const state = createAdamWState(params, true);
  state.average!.get('w')!.assign(tf.tensor1d([7, 8]));
  const before = tf.memory().numTensors;
  const seen = withAverage(params, state.average!, () => params.get('w')!.arraySync());
  assert.deepEqual(seen, [7, 8]);
  assert.deepEqual(params.get('w')!.arraySync(), [1, 2]);
  assert.deepEqual(state.average!.get('w')!.arraySync(), [7, 8]);
  assert.throws(() => withAverage(params, state.average!, () => { throw new Error('inside'); }), /inside/);
  assert.deepEqual(params.get('w')!.arraySync(), [1, 2], 'restored after a throw too');
  assert.equal(tf.memory().numTensors, before);
  disposeAdamWState(state);
  params.get('w')!.dispose();
});
