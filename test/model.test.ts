import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import {
  MASK_BIAS,
  applyRope,
  bigramBuckets,
  createModel,
  embed,
  lstmDirection,
  embeddingLookup,
  forward,
  ropeTables,
  spanMaskBias,
  type ModelSpec,
} from '../src/model/globalpointer.js';
import { multilabelCrossEntropy } from '../src/train/loss.js';
import { tinySpec } from './tiny-model.js';

await tf.setBackend('cpu');

test('multilabel CE matches a hand-computed example', () => {
  // One sample, one type, L = 2. Valid cells (0,0)=1, (0,1)=−2 (gold), (1,1)=0.5; (1,0) is masked.
  // neg: log(1 + e^1 + e^0.5) = log(5.367003) = 1.680262; pos: log(1 + e^{2}) = log(8.389056) = 2.126928.
  const logits = tf.tensor4d([1, -2, MASK_BIAS, 0.5], [1, 1, 2, 2]);
  const targets = tf.tensor4d([0, 1, 0, 0], [1, 1, 2, 2]);
  const loss = multilabelCrossEntropy(logits, targets).dataSync()[0];
  assert.ok(Math.abs(loss - (1.680262 + 2.126928)) < 1e-4, `loss ${loss}`);
});

test('multilabel CE averages over samples and types and stays finite with masks', () => {
  // Type 0 has no gold cell: its positive term is log(1 + 0) = 0.
  const logits = tf.tensor4d([0, 0, MASK_BIAS, 0, 3, MASK_BIAS, MASK_BIAS, MASK_BIAS], [1, 2, 2, 2]);
  const targets = tf.tensor4d([0, 0, 0, 0, 1, 0, 0, 0], [1, 2, 2, 2]);
  const loss = multilabelCrossEntropy(logits, targets).dataSync()[0];
  // type 0: log(1+3) + 0; type 1: neg log(1) = 0, pos log(1 + e^{-3}).
  const expected = (Math.log(4) + Math.log(1 + Math.exp(-3))) / 2;
  assert.ok(Math.abs(loss - expected) < 1e-5, `loss ${loss} vs ${expected}`);
  const grad = tf.grad((x: tf.Tensor) => multilabelCrossEntropy(x as tf.Tensor4D, targets))(logits).dataSync();
  assert.ok(grad.every(Number.isFinite));
  assert.equal(grad[2], 0, 'masked cell gets no gradient');
});

test('RoPE scores depend only on the relative position', () => {
  const L = 12;
  const d = 8;
  const { cos, sin } = ropeTables(L, d);
  const qv = tf.randomNormal([1, d], 0, 1, 'float32', 1);
  const kv = tf.randomNormal([1, d], 0, 1, 'float32', 2);
  const q = applyRope(qv.tile([L, 1]), cos, sin);
  const k = applyRope(kv.tile([L, 1]), cos, sin);
  const scores = tf.matMul(q, k, false, true).arraySync() as number[][]; // [L, L]
  for (const [m, n, shift] of [[0, 3, 5], [2, 2, 7], [4, 1, 6], [0, 11, 0]]) {
    assert.ok(Math.abs(scores[m][n] - scores[m + shift]?.[n + shift]) < 1e-4 || m + shift >= L || n + shift >= L);
  }
  assert.ok(Math.abs(scores[0][3] - scores[5][8]) < 1e-4);
  assert.ok(Math.abs(scores[0][3] - scores[0][4]) > 1e-3, 'different offsets give different scores');
  // Rotation preserves norms.
  assert.ok(Math.abs(tf.norm(q.slice([7, 0], [1, d])).dataSync()[0] - tf.norm(qv).dataSync()[0]) < 1e-4);
});

test('span mask: padding rows and columns and j < i are masked', () => {
  const bias = spanMaskBias(tf.tensor2d([[1, 1, 1, 0]])).arraySync() as number[][][][];
  for (let i = 0; i < 4; i++)
    for (let j = 0; j < 4; j++) {
      const valid = i <= j && i < 3 && j < 3;
      assert.equal(bias[0][0][i][j], valid ? 0 : Math.fround(MASK_BIAS), `cell ${i},${j}`);
    }
});

for (const head of ['globalpointer', 'efficient'] as const) {
  test(`${head} forward: shape [B, H, L, L] and masked cells ≤ MASK_BIAS/2`, () => {
    const model = createModel(tinySpec({ head: { type: head, size: 8, rope: true } }), 7);
    const ids = tf.tensor2d([[1, 2, 3, 4], [5, 6, 0, 0]], [2, 4], 'int32');
    const mask = tf.tensor2d([[1, 1, 1, 1], [1, 1, 0, 0]]);
    const logits = forward(model, ids, mask, { training: false });
    assert.deepEqual(logits.shape, [2, 3, 4, 4]);
    const v = logits.arraySync() as number[][][][];
    for (let b = 0; b < 2; b++)
      for (let h = 0; h < 3; h++)
        for (let i = 0; i < 4; i++)
          for (let j = 0; j < 4; j++) {
            const valid = i <= j && (b === 0 || j < 2);
            assert.equal(v[b][h][i][j] < MASK_BIAS / 2, !valid, `b${b} h${h} ${i},${j} = ${v[b][h][i][j]}`);
          }
  });
}

test('padding does not change the logits of real tokens', () => {
  const model = createModel(tinySpec(), 3);
  const short = forward(model, tf.tensor2d([[1, 2, 3]], [1, 3], 'int32'), tf.tensor2d([[1, 1, 1]]), { training: false });
  const padded = forward(model, tf.tensor2d([[1, 2, 3, 0, 0]], [1, 5], 'int32'), tf.tensor2d([[1, 1, 1, 0, 0]]), { training: false });
  const a = short.arraySync() as number[][][][];
  const b = padded.arraySync() as number[][][][];
  for (let i = 0; i < 3; i++) for (let j = i; j < 3; j++) assert.ok(Math.abs(a[0][1][i][j] - b[0][1][i][j]) < 1e-4);
});

test('embedding gradient through scatterND equals the gather gradient, repeated ids summed', () => {
  const table = tf.randomNormal([6, 4], 0, 1, 'float32', 3) as tf.Tensor2D;
  const ids = tf.tensor2d([[1, 3, 1], [5, 1, 0]], [2, 3], 'int32');
  const w = tf.randomNormal([2, 3, 4], 0, 1, 'float32', 4);
  const ours = tf.grad((t: tf.Tensor) => embeddingLookup(t as tf.Tensor2D, ids).mul(w).sum())(table);
  const reference = tf.grad((t: tf.Tensor) => tf.gather(t, ids.flatten()).reshape([2, 3, 4]).mul(w).sum())(table);
  const diff = tf.max(tf.abs(ours.sub(reference))).dataSync()[0];
  assert.ok(diff < 1e-5, `max |Δ| ${diff}`);
  assert.ok(tf.sum(tf.abs(ours.slice([1, 0], [1, 4]))).dataSync()[0] > 0);
  assert.equal(tf.sum(tf.abs(ours.slice([2, 0], [1, 4]))).dataSync()[0], 0, 'unused id gets zero gradient');
});

test('forward leaks no tensors', () => {
  const model = createModel(tinySpec(), 5);
  const ids = tf.tensor2d([[1, 2, 3, 4]], [1, 4], 'int32');
  const mask = tf.ones([1, 4]) as tf.Tensor2D;
  forward(model, ids, mask, { training: false }).dispose();
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) forward(model, ids, mask, { training: false }).dispose();
  assert.equal(tf.memory().numTensors, before);
});

test('bigram buckets hash (token i, token i+1) as (a·V + b) mod K; before padding or at the end, the pair is (a, 0)', () => {
  const ids = tf.tensor2d([[3, 7, 19, 2], [5, 5, 9, 9]], [2, 4], 'int32');
  const mask = tf.tensor2d([[1, 1, 1, 1], [1, 1, 0, 0]]);
  const got = bigramBuckets(ids, mask, 20, 50).arraySync();
  assert.deepEqual(got, [[(3 * 20 + 7) % 50, (7 * 20 + 19) % 50, (19 * 20 + 2) % 50, (2 * 20) % 50], [(5 * 20 + 5) % 50, (5 * 20) % 50, (9 * 20) % 50, (9 * 20) % 50]]);
});

test('bigram embeddings add a table whose gradient reaches exactly the buckets used', () => {
  const model = createModel(tinySpec({ bigramBuckets: 50 }), 3);
  const table = model.params.get('embeddings.bigram')!;
  assert.deepEqual(table.shape, [50, 16]);
  const ids = tf.tensor2d([[3, 7, 19]], [1, 3], 'int32');
  const mask = tf.ones([1, 3]) as tf.Tensor2D;
  // The embedding is the token's row plus its bigram's row.
  const x = embed(model, ids, mask).arraySync()[0];
  const word = model.params.get('embeddings.word')!.arraySync() as number[][];
  const rows = table.arraySync() as number[][];
  const used = [(3 * 20 + 7) % 50, (7 * 20 + 19) % 50, (19 * 20) % 50];
  used.forEach((bucket, i) => x[i].forEach((v, k) => assert.ok(Math.abs(v - word[[3, 7, 19][i]][k] - rows[bucket][k]) < 1e-6)));
  const { grads } = tf.variableGrads(() => embed(model, ids, mask).square().sum() as tf.Scalar, [table]);
  const norms = tf.norm(grads[table.name], 'euclidean', 1).arraySync() as number[];
  norms.forEach((n, bucket) => assert.equal(n > 0, used.includes(bucket), `bucket ${bucket}: ‖g‖ ${n}`));
});

for (const [name, over] of [
  ['transformer with bigrams', { bigramBuckets: 50 }],
  ['bilstm with bigrams', { bigramBuckets: 50, encoder: { type: 'bilstm', layers: 2 } }],
] as Array<[string, Partial<ModelSpec>]>) {
  test(`${name}: a text's logits do not depend on its batch's padding, whatever the pad id`, () => {
    const model = createModel(tinySpec(over), 5);
    const short = forward(model, tf.tensor2d([[4, 2, 3]], [1, 3], 'int32'), tf.tensor2d([[1, 1, 1]]), { training: false });
    const padded = forward(model, tf.tensor2d([[4, 2, 3, 7, 7]], [1, 5], 'int32'), tf.tensor2d([[1, 1, 1, 0, 0]]), { training: false });
    const a = short.arraySync() as number[][][][];
    const b = padded.arraySync() as number[][][][];
    for (let h = 0; h < 3; h++) for (let i = 0; i < 3; i++) for (let j = i; j < 3; j++) assert.ok(Math.abs(a[0][h][i][j] - b[0][h][i][j]) < 1e-4, `type ${h} cell (${i}, ${j})`);
  });
}

test('bilstm: the forward LSTM reads only the past, the backward LSTM only the future', () => {
  const model = createModel(tinySpec({ encoder: { type: 'bilstm', layers: 1 } }), 5);
  const mask = tf.ones([1, 4]) as tf.Tensor2D;
  const states = (ids: number[], reverse: boolean) =>
    lstmDirection(model, `encoder.0.${reverse ? 'bw' : 'fw'}`, embed(model, tf.tensor2d([ids], [1, 4], 'int32'), mask), mask, reverse);
  const change = (a: tf.Tensor, b: tf.Tensor) => (tf.abs(a.sub(b)).max(-1).arraySync() as number[][])[0];
  // The last token changes: forward states before it stay, the last changes; backward states all change.
  const fw = change(states([1, 2, 3, 4], false), states([1, 2, 3, 9], false));
  assert.deepEqual(fw.map((v) => v > 0), [false, false, false, true]);
  const bw = change(states([1, 2, 3, 4], true), states([1, 2, 3, 9], true));
  assert.deepEqual(bw.map((v) => v > 0), [true, true, true, true]);
  // The first token changes: backward states after it stay.
  const bw0 = change(states([1, 2, 3, 4], true), states([9, 2, 3, 4], true));
  assert.deepEqual(bw0.map((v) => v > 0), [true, false, false, false]);
});
