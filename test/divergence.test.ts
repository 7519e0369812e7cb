import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { sigmoidKL, softmaxKL } from '../src/train/divergence.js';
import { spanValidity } from '../src/model/globalpointer.js';

await tf.setBackend('cpu');

const sig = (x: number) => 1 / (1 + Math.exp(-x));
const binaryKL = (p: number, q: number) => p * Math.log(p / q) + (1 - p) * Math.log((1 - p) / (1 - q));
const close = (a: number, b: number, tol = 1e-5) => assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} vs ${b}`);

// One sample, one type, L = 2: valid cells (0,0), (0,1), (1,1); (1,0) is below the diagonal.
const valid = spanValidity(tf.tensor2d([[1, 1]]));
const s = tf.tensor4d([0.5, 2, -7, -1], [1, 1, 2, 2]);
const t = tf.tensor4d([1.5, -1, 3, -1], [1, 1, 2, 2]);

test('sigmoid-kl on a hand-computed example', () => {
  // (σ(.5) − σ(1.5))(.5 − 1.5) + (σ(2) − σ(−1))(2 + 1) + 0 = (0.622459 − 0.817574)(−1) + (0.880797 − 0.268941)(3)
  //   = 0.195115 + 1.835568 = 2.030683; the (1,0) cell holds very different values but is not valid.
  close(sigmoidKL(s, t, valid).dataSync()[0], 2.030683);
});

test('sigmoid-kl equals the sum of per-cell binary symmetric KLs', () => {
  const cells: Array<[number, number]> = [[0.5, 1.5], [2, -1], [-1, -1]];
  const expected = cells.reduce((sum, [a, b]) => sum + binaryKL(sig(a), sig(b)) + binaryKL(sig(b), sig(a)), 0);
  close(sigmoidKL(s, t, valid).dataSync()[0], expected);
});

test('D(s, s) = 0, D is symmetric and non-negative', () => {
  const shape: [number, number, number, number] = [2, 3, 5, 5];
  const v = spanValidity(tf.tensor2d([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]));
  for (let seed = 0; seed < 5; seed++) {
    const a = tf.randomNormal(shape, 0, 3, 'float32', seed) as tf.Tensor4D;
    const b = tf.randomNormal(shape, 0, 3, 'float32', seed + 100) as tf.Tensor4D;
    for (const D of [sigmoidKL, softmaxKL]) {
      assert.equal(D(a, a, v).dataSync()[0], 0);
      close(D(a, b, v).dataSync()[0], D(b, a, v).dataSync()[0]);
      assert.ok(D(a, b, v).dataSync()[0] > 0);
    }
  }
});

test("the gradient of sigmoid-kl is the seed's closed form σ(s)(1 − σ(s))(s − t) + σ(s) − σ(t)", () => {
  const a = tf.randomNormal([1, 2, 3, 3], 0, 2, 'float32', 7) as tf.Tensor4D;
  const b = tf.randomNormal([1, 2, 3, 3], 0, 2, 'float32', 8) as tf.Tensor4D;
  const v = spanValidity(tf.tensor2d([[1, 1, 1]]));
  const autodiff = tf.grad((x: tf.Tensor) => sigmoidKL(x as tf.Tensor4D, b, v))(a).dataSync();
  const sv = a.dataSync();
  const tv = b.dataSync();
  const validCells = tf.broadcastTo(v, a.shape).dataSync();
  sv.forEach((x, i) => {
    const closedForm = validCells[i] ? sig(x) * (1 - sig(x)) * (x - tv[i]) + sig(x) - sig(tv[i]) : 0;
    close(autodiff[i], closedForm, 1e-4);
  });
  // And numerically, by central differences on one valid cell.
  const eps = 1e-2;
  const bump = (d: number) => tf.tensor4d(Array.from(sv, (x, i) => (i === 1 ? x + d : x)), a.shape);
  const numeric = (sigmoidKL(bump(eps), b, v).dataSync()[0] - sigmoidKL(bump(-eps), b, v).dataSync()[0]) / (2 * eps);
  close(autodiff[1], numeric, 1e-2);
});

for (const maskValue of [-1e12, -Infinity]) {
  test(`masked cells holding ${maskValue} contribute exactly 0 and no NaN, value or gradient`, () => {
    const masked = (x: number[]) => tf.tensor4d(x.map((v, i) => (i === 2 ? maskValue : v)), [1, 1, 2, 2]);
    const a = masked([0.5, 2, 0, -1]);
    const b = masked([1.5, -1, 0, -1]);
    for (const D of [sigmoidKL, softmaxKL]) {
      const value = D(a, b, valid).dataSync()[0];
      assert.ok(Number.isFinite(value));
      close(value, D(s, t, valid).dataSync()[0]); // the same as with ordinary numbers in the masked cell
      const grad = tf.grad((x: tf.Tensor) => D(x as tf.Tensor4D, b, valid))(a).dataSync();
      assert.ok(grad.every(Number.isFinite), `${grad}`);
      assert.equal(grad[2], 0);
    }
  });
}

test('softmax-kl is the symmetric KL of the softmax over valid cells', () => {
  const p = [0.5, 2, -1].map(Math.exp);
  const q = [1.5, -1, -1].map(Math.exp);
  const zp = p.reduce((a, b) => a + b);
  const zq = q.reduce((a, b) => a + b);
  const expected = p.reduce((sum, pi, i) => {
    const a = pi / zp;
    const b = q[i] / zq;
    return sum + a * Math.log(a / b) + b * Math.log(b / a);
  }, 0);
  close(softmaxKL(s, t, valid).dataSync()[0], expected);
});

test('temperature and per-type weights', () => {
  const two = tf.concat([s, s], 1) as tf.Tensor4D;
  const twoT = tf.concat([t, t], 1) as tf.Tensor4D;
  const base = sigmoidKL(s, t, valid).dataSync()[0];
  close(sigmoidKL(two, twoT, valid, { typeWeights: [1, 0.5] }).dataSync()[0], 1.5 * base);
  // τ = 2: Σ (σ(s/2) − σ(t/2))(s − t)/2.
  const expected = [[0.5, 1.5], [2, -1], [-1, -1]].reduce((sum, [a, b]) => sum + ((sig(a / 2) - sig(b / 2)) * (a - b)) / 2, 0);
  close(sigmoidKL(s, t, valid, { temperature: 2 }).dataSync()[0], expected);
});
