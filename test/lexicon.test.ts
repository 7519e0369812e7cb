/** Lexicon features: the roles and lengths each token is given, how windows carry them, the model's use, the file. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { LEXICON_FEATURE_COUNT, LEXICON_LENGTHS, LEXICON_ROLES, lexiconFeatures, lexiconText, makeLexicon, readLexicon } from '../src/data/lexicon.js';
import { batchTensors, encodeExamples, type TokenizerLike } from '../src/data/encode.js';
import { createModel, embed, forward } from '../src/model/globalpointer.js';
import { tinySpec } from './tiny-model.js';

await tf.setBackend('cpu');

const charOffsets = (text: string): Array<[number, number]> => [...text].map((_, i) => [i, i + 1]);

/** The features of token t as role+length names, e.g. ['B2', 'B4'], for readable expectations. */
function named(features: number[], t: number): string[] {
  const names: string[] = [];
  for (let f = 0; f < LEXICON_FEATURE_COUNT; f++) {
    if (features[t * LEXICON_FEATURE_COUNT + f] !== 1) continue;
    const length = LEXICON_LENGTHS[f % LEXICON_LENGTHS.length];
    names.push(`${LEXICON_ROLES[Math.floor(f / LEXICON_LENGTHS.length)]}${length === 6 ? '6+' : length}`);
  }
  return names;
}

test('each character learns where the listed words around it begin and end, and how long they are', () => {
  const lexicon = makeLexicon(['北京', '大学', '北京大学', '京大', '学生会主席团干部', '生']);
  const text = '北京大学学生会主席团干部';
  const f = lexiconFeatures(text, charOffsets(text), lexicon);
  assert.equal(f.length, text.length * LEXICON_FEATURE_COUNT);
  assert.ok(f.every((v) => v === 0 || v === 1));
  assert.deepEqual(named(f, 0), ['B2', 'B4']); // 北: begins 北京 and 北京大学
  assert.deepEqual(named(f, 1), ['B2', 'M4', 'E2']); // 京: begins 京大, inside 北京大学, ends 北京
  assert.deepEqual(named(f, 2), ['B2', 'M4', 'E2']); // 大: begins 大学, inside 北京大学, ends 京大
  assert.deepEqual(named(f, 3), ['E2', 'E4']); // 学: ends 大学 and 北京大学
  assert.deepEqual(named(f, 4), ['B6+']); // the eight-character word falls in the last length bucket
  for (let t = 5; t < 11; t++) assert.deepEqual(named(f, t), ['M6+'], `token ${t}`);
  assert.deepEqual(named(f, 11), ['E6+']);
  assert.equal(lexicon.words.has('生'), false, 'one-character words are dropped: they mark no boundary');
});

test('multi-character tokens: a word that is one token is Single, a word cut inside a token counts nowhere', () => {
  const lexicon = makeLexicon(['New York', 'York', 'ew Yo', 'New York City']);
  const text = 'New York City';
  const offsets: Array<[number, number]> = [[0, 3], [4, 8], [9, 13]];
  const f = lexiconFeatures(text, offsets, lexicon);
  assert.deepEqual(named(f, 0), ['B6+']); // New York (8) and New York City (13), both "6 or more"
  assert.deepEqual(named(f, 1), ['M6+', 'E6+', 'S4']); // York is the whole token; "ew Yo" ends inside it: ignored
  assert.deepEqual(named(f, 2), ['E6+']);
});

test('words with characters outside the BMP match too, and their length counts characters', () => {
  const text = 'a😀b😀';
  const offsets: Array<[number, number]> = [[0, 1], [1, 3], [3, 4], [4, 6]];
  const f = lexiconFeatures(text, offsets, makeLexicon(['😀b', 'a😀b😀']));
  assert.deepEqual(named(f, 0), ['B4']);
  assert.deepEqual(named(f, 1), ['B2', 'M4']);
  assert.deepEqual(named(f, 2), ['M4', 'E2']);
  assert.deepEqual(named(f, 3), ['E4']);
});

test('the word list file: first field of each line, blank lines skipped, round trip through the model\'s copy', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gp-lexicon-'));
  const file = join(dir, 'words.txt');
  writeFileSync(file, '北京 3 ns\n\n大学 100 n\r\n  长江大桥\n京\n');
  const lexicon = readLexicon(file);
  assert.deepEqual([...lexicon.words].sort(), ['北京', '大学', '长江大桥'].sort());
  assert.equal(lexicon.maxLength, 4);
  writeFileSync(join(dir, 'copy.txt'), lexiconText(lexicon));
  assert.deepEqual(readLexicon(join(dir, 'copy.txt')), lexicon);
  writeFileSync(join(dir, 'empty.txt'), '京\n\n');
  assert.throws(() => readLexicon(join(dir, 'empty.txt')), /empty\.txt: lexicon has no words of two or more characters/);
  assert.throws(() => readLexicon(join(dir, 'missing.txt')), /missing\.txt: cannot read lexicon/);
});

test('windows carry the features with zeros on [CLS] and [SEP]; batches pad them with zeros', () => {
  const text = '北京大学学生';
  const offsets = charOffsets(text);
  const lexicon = makeLexicon(['北京大学', '学生']);
  const tokenizer: TokenizerLike = { encode: () => ({ ids: offsets.map((_, i) => 5 + i), offsets }), padId: 0, clsId: 1, sepId: 2 };
  const { windows } = encodeExamples([{ text, spans: [] }], tokenizer, ['ORG'], { maxLength: 5, overlap: 1, lexicon });
  assert.ok(windows.length > 1);
  const all = lexiconFeatures(text, offsets, lexicon);
  const F = LEXICON_FEATURE_COUNT;
  const zeros = new Array<number>(F).fill(0);
  for (const w of windows) {
    assert.equal(w.lexicon!.length, w.ids.length * F);
    assert.deepEqual(w.lexicon!.slice(0, F), zeros);
    assert.deepEqual(w.lexicon!.slice(-F), zeros);
    const first = w.offsets[0][0];
    assert.deepEqual(w.lexicon!.slice(F, -F), all.slice(first * F, (first + w.offsets.length) * F));
  }
  const short = encodeExamples([{ text: '学生', spans: [] }], { ...tokenizer, encode: () => ({ ids: [5, 6], offsets: [[0, 1], [1, 2]] }) }, ['ORG'], { maxLength: 5, overlap: 1, lexicon }).windows;
  const batch = batchTensors([windows[0], ...short], 1, 0, false);
  const values = batch.lexicon!.arraySync();
  assert.deepEqual(batch.lexicon!.shape, [2, windows[0].ids.length, F]);
  for (let i = short[0].ids.length; i < windows[0].ids.length; i++) assert.deepEqual(values[1][i], zeros, 'padding');
  assert.equal(encodeExamples([{ text, spans: [] }], tokenizer, ['ORG'], { maxLength: 5, overlap: 1 }).windows[0].lexicon, undefined);
});

test('the model adds the rows of the features present to the embedding; their gradient reaches those rows only', () => {
  const model = createModel(tinySpec({ lexicon: true }), 3);
  const table = model.params.get('embeddings.lexicon')!;
  assert.deepEqual(table.shape, [LEXICON_FEATURE_COUNT, 16]);
  const ids = tf.tensor2d([[3, 7]], [1, 2], 'int32');
  const mask = tf.ones([1, 2]) as tf.Tensor2D;
  const present = [[0, 6], [12]];
  const values = present.map((fs) => Array.from({ length: LEXICON_FEATURE_COUNT }, (_, f) => (fs.includes(f) ? 1 : 0)));
  const lexicon = tf.tensor3d([values], [1, 2, LEXICON_FEATURE_COUNT]);
  const x = embed(model, ids, mask, { lexicon }).arraySync()[0];
  const plain = embed(model, ids, mask, { lexicon: tf.zerosLike(lexicon) }).arraySync()[0];
  const rows = table.arraySync() as number[][];
  present.forEach((fs, i) => x[i].forEach((v, k) => assert.ok(Math.abs(v - plain[i][k] - fs.reduce((s, f) => s + rows[f][k], 0)) < 1e-6)));
  const { grads } = tf.variableGrads(() => embed(model, ids, mask, { lexicon }).square().sum() as tf.Scalar, [table]);
  const norms = tf.norm(grads[table.name], 'euclidean', 1).arraySync() as number[];
  norms.forEach((n, row) => assert.equal(n > 0, present.flat().includes(row), `row ${row}: ‖g‖ ${n}`));
  assert.throws(() => forward(model, ids, mask, { training: false }), /lexicon features/);
});
