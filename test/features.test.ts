/** Word features: what each token is given, how windows and batches carry them, and what the model does with them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { WORD_FEATURE_COUNT, wordFeatureIds, wordShape } from '../src/data/features.js';
import { batchTensors, encodeExamples, type TokenizerLike } from '../src/data/encode.js';
import { createModel, embed, forward } from '../src/model/globalpointer.js';
import { tinySpec } from './tiny-model.js';

await tf.setBackend('cpu');

test('word shape: X, x, d, other characters kept, runs cut at four', () => {
  assert.equal(wordShape('Apple'), 'Xxxxx');
  assert.equal(wordShape('Wednesday'), 'Xxxxx');
  assert.equal(wordShape('NASA'), 'XXXX');
  assert.equal(wordShape('COVID-19'), 'XXXX-dd');
  assert.equal(wordShape('@bob_99'), '@xxx_dd');
  assert.equal(wordShape('Éire'), 'Xxxx', 'accented capitals are capitals');
  assert.equal(wordShape('😀x'), '😀x', 'a character outside the BMP is one character');
  assert.equal(wordShape('東京'), 'xx', 'letters without case count as lower case');
});

/** Tokens of `text` as [start, end) offsets: every character its own token, as a character tokenizer would. */
const charOffsets = (text: string): Array<[number, number]> => [...text].flatMap((_, i) => (text[i].trim() ? [[i, i + 1] as [number, number]] : []));

test('every token of a word shares its norm, prefix and suffix; the shape tells the first piece from the rest', () => {
  const text = 'Hi Tokyo!';
  const offsets: Array<[number, number]> = [[0, 2], [3, 6], [6, 8], [8, 9]]; // "Hi", "Tok", "yo", "!"
  const ids = wordFeatureIds(text, offsets, 1000);
  assert.equal(ids.length, offsets.length * WORD_FEATURE_COUNT);
  const row = (t: number) => ids.slice(t * WORD_FEATURE_COUNT, (t + 1) * WORD_FEATURE_COUNT);
  for (const t of [2, 3]) assert.deepEqual(row(t).slice(0, 3), row(1).slice(0, 3), `token ${t} lies in "Tokyo!"`);
  assert.notEqual(row(2)[3], row(1)[3], 'a later piece has a different shape row');
  assert.equal(row(2)[3], row(3)[3], 'the later pieces of one word share it');
  assert.notDeepEqual(row(0).slice(0, 3), row(1).slice(0, 3));
  for (const id of ids) assert.ok(id >= 1 && id < 1000, `row ${id} is in [1, 1000)`);
  // Case is kept out of the norm and the affixes and put into the shape.
  const lower = wordFeatureIds('tokyo!', [[0, 6]], 1000);
  const upper = wordFeatureIds('Tokyo!', [[0, 6]], 1000);
  assert.deepEqual(lower.slice(0, 3), upper.slice(0, 3));
  assert.notEqual(lower[3], upper[3]);
  // Only the word decides: the same word anywhere in any text gets the same rows.
  assert.deepEqual(wordFeatureIds('Tokyo!', [[0, 6]], 1000), wordFeatureIds('in Tokyo! now', [[3, 9]], 1000));
});

test('windows carry zero rows on [CLS] and [SEP], and batches pad them with zeros', () => {
  const text = 'Ann met Bob';
  const offsets = charOffsets(text);
  const tokenizer: TokenizerLike = { encode: () => ({ ids: offsets.map((_, i) => 5 + i), offsets }), padId: 0, clsId: 1, sepId: 2 };
  const { windows } = encodeExamples([{ text, spans: [] }], tokenizer, ['PER'], { maxLength: 6, overlap: 1, wordFeatures: 64 });
  assert.ok(windows.length > 1, 'the text is cut into several windows');
  const all = wordFeatureIds(text, offsets, 64);
  let start = 0;
  for (const w of windows) {
    const F = WORD_FEATURE_COUNT;
    assert.equal(w.wordFeatures!.length, w.ids.length * F);
    assert.deepEqual(w.wordFeatures!.slice(0, F), [0, 0, 0, 0]);
    assert.deepEqual(w.wordFeatures!.slice(-F), [0, 0, 0, 0]);
    const first = offsets.findIndex((o) => o[0] === w.offsets[0][0]);
    assert.deepEqual(w.wordFeatures!.slice(F, -F), all.slice(first * F, (first + w.offsets.length) * F));
    start = first;
  }
  assert.ok(start > 0);
  const batch = batchTensors(windows, 1, 0, false);
  const [B, L, F] = batch.wordFeatures!.shape;
  assert.deepEqual([B, F], [windows.length, WORD_FEATURE_COUNT]);
  const values = batch.wordFeatures!.arraySync();
  windows.forEach((w, b) => {
    for (let i = w.ids.length; i < L; i++) assert.deepEqual(values[b][i], [0, 0, 0, 0], 'padding');
  });
  const without = encodeExamples([{ text, spans: [] }], tokenizer, ['PER'], { maxLength: 6, overlap: 1 }).windows;
  assert.equal(without[0].wordFeatures, undefined);
  assert.equal(batchTensors(without, 1, 0, false).wordFeatures, undefined);
});

test('the model adds the sum of a token\'s feature rows to its embedding, and their gradient reaches those rows only', () => {
  const model = createModel(tinySpec({ wordFeatures: 30 }), 3);
  const table = model.params.get('embeddings.wordFeatures')!;
  assert.deepEqual(table.shape, [30, 16]);
  const ids = tf.tensor2d([[3, 7]], [1, 2], 'int32');
  const mask = tf.ones([1, 2]) as tf.Tensor2D;
  const features = tf.tensor3d([[[1, 4, 9, 9], [2, 4, 5, 6]]], [1, 2, 4], 'int32');
  const x = embed(model, ids, mask, { wordFeatures: features }).arraySync()[0];
  const word = model.params.get('embeddings.word')!.arraySync() as number[][];
  const rows = table.arraySync() as number[][];
  const used = [[1, 4, 9, 9], [2, 4, 5, 6]];
  used.forEach((r, i) => x[i].forEach((v, k) => assert.ok(Math.abs(v - word[[3, 7][i]][k] - r.reduce((s, row) => s + rows[row][k], 0)) < 1e-5)));
  const { grads } = tf.variableGrads(() => embed(model, ids, mask, { wordFeatures: features }).square().sum() as tf.Scalar, [table]);
  const norms = tf.norm(grads[table.name], 'euclidean', 1).arraySync() as number[];
  norms.forEach((n, row) => assert.equal(n > 0, used.flat().includes(row), `row ${row}: ‖g‖ ${n}`));
  assert.throws(() => forward(model, ids, mask, { training: false }), /word features/);
});
