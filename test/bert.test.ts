/**
 * Pretrained BERT encoders: config.json, checkpoint names and the errors around them, parity of the last hidden
 * states with transformers (reference outputs made by scripts/bert-reference.py), fine-tuning, and the whole path
 * train → save → load → predict on the tiny checkpoint in test/fixtures.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.js';
import { validateConfig } from '../src/config/load.js';
import { writeJsonl } from '../src/data/corpus.js';
import { TextTokenizer, tokenizerFromVocab } from '../src/data/tokenizer.js';
import { GpError } from '../src/errors.js';
import { predictEntities } from '../src/eval/evaluate.js';
import {
  bertParameterShapes,
  geluErf,
  loadBertWeights,
  mapCheckpointNames,
  openBertCheckpoint,
  parseBertConfig,
  positionCapacity,
} from '../src/model/bert.js';
import { createModel, embed, encode, forward, parameterGroup, type Model, type ModelSpec } from '../src/model/globalpointer.js';
import { loadModel } from '../src/model/io.js';
import { encodeSafetensors, readSafetensors, type NamedArray } from '../src/model/safetensors.js';
import { multilabelCrossEntropy } from '../src/train/loss.js';
import { adamWStep, createAdamWState, disposeAdamWState } from '../src/train/optimizer.js';
import { batchLoss, divergenceOptions, vatPerturbation } from '../src/train/regularizer.js';
import { train } from '../src/train/train.js';
import { Rng } from '../src/rng.js';

await initBackend('cpu');

const BERT = fileURLToPath(new URL('./fixtures/tiny-random-bert', import.meta.url));
const ROBERTA = fileURLToPath(new URL('./fixtures/tiny-random-roberta', import.meta.url));
const HEAD = { type: 'globalpointer' as const, size: 8, rope: true };

function readJsonFile(file: string): unknown {
  return JSON.parse(readFileSync(file, 'utf8'));
}

/** A GlobalPointer on the checkpoint in `dir`, built from its config.json alone (no tokenizer needed). */
function modelFrom(dir: string, numTypes = 2): Model {
  const { encoder, hiddenSize, vocabSize } = parseBertConfig(readJsonFile(join(dir, 'config.json')), dir);
  const spec: ModelSpec = { dim: hiddenSize, dropout: 0, encoder, head: HEAD, vocabSize, numTypes, maxLength: positionCapacity(encoder) };
  const model = createModel(spec, 0);
  loadBertWeights(model, dir);
  return model;
}

/** A scratch copy of the tiny checkpoint; `edit` changes it before use. */
function scratchCheckpoint(edit: (dir: string) => void): string {
  const dir = mkdtempSync(join(tmpdir(), 'gp-bert-'));
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'vocab.txt', 'tokenizer_config.json']) copyFileSync(join(BERT, f), join(dir, f));
  edit(dir);
  return dir;
}

function editWeights(dir: string, change: (tensors: Map<string, NamedArray>) => void): void {
  const { tensors } = readSafetensors(join(dir, 'model.safetensors'));
  change(tensors);
  writeFileSync(join(dir, 'model.safetensors'), encodeSafetensors(tensors));
}

function editConfig(dir: string, change: Record<string, unknown>): void {
  const config = readJsonFile(join(dir, 'config.json')) as Record<string, unknown>;
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, ...change }));
}

function expectError(f: () => unknown, pattern: RegExp): void {
  assert.throws(f, (err: unknown) => {
    assert.ok(err instanceof GpError, `not a GpError: ${String(err)}`);
    assert.match(err.message, pattern);
    return true;
  });
}

// ---------------------------------------------------------------------------------------------- loading

test('config.json: sizes, activation, eps and position range come from the checkpoint', () => {
  const checkpoint = openBertCheckpoint(BERT);
  assert.equal(checkpoint.hiddenSize, 32);
  assert.equal(checkpoint.vocabSize, 1124);
  assert.equal(checkpoint.maxLength, 512);
  assert.deepEqual(
    { ...checkpoint.encoder, path: undefined },
    {
      type: 'bert', path: undefined, modelType: 'bert', layers: 5, heads: 4, intermediateSize: 37, hiddenAct: 'gelu', layerNormEps: 1e-12,
      maxPositions: 512, typeVocabSize: 16, padTokenId: 0, hiddenDropout: 0.1, attentionDropout: 0.1,
    },
  );
  assert.equal(checkpoint.tokenizer.vocabSize, 1124);
  const roberta = parseBertConfig(readJsonFile(join(ROBERTA, 'config.json')), ROBERTA);
  assert.equal(roberta.encoder.modelType, 'roberta');
  assert.equal(roberta.encoder.hiddenAct, 'gelu_new');
  assert.equal(positionCapacity(roberta.encoder), 64, 'positions start at padding_idx + 1 = 2');
});

test('checkpoint names: optional prefix, old gamma/beta names, heads and pooler set aside, the rest reported', () => {
  const { encoder, hiddenSize, vocabSize } = parseBertConfig(readJsonFile(join(BERT, 'config.json')), BERT);
  const expected = new Set(bertParameterShapes(encoder, hiddenSize, vocabSize).keys());
  const mapping = mapCheckpointNames(
    [
      'embeddings.word_embeddings.weight',
      'bert.embeddings.LayerNorm.gamma',
      'encoder.layer.0.output.LayerNorm.beta',
      'bert.pooler.dense.weight',
      'bert.embeddings.position_ids',
      'cls.predictions.bias',
      'classifier.weight',
      'bert.encoder.layer.9.output.dense.weight',
      'adapter.scale',
      'bert.embeddings.word_embeddings.weight',
    ],
    'bert',
    expected,
  );
  assert.deepEqual([...mapping.byParam], [
    ['bert.embeddings.word_embeddings.weight', 'embeddings.word_embeddings.weight'],
    ['bert.embeddings.LayerNorm.weight', 'bert.embeddings.LayerNorm.gamma'],
    ['bert.encoder.layer.0.output.LayerNorm.bias', 'encoder.layer.0.output.LayerNorm.beta'],
  ]);
  assert.deepEqual(mapping.ignored, ['bert.pooler.dense.weight', 'bert.embeddings.position_ids', 'cls.predictions.bias', 'classifier.weight']);
  assert.deepEqual(mapping.unknown, ['bert.encoder.layer.9.output.dense.weight', 'adapter.scale']);
  assert.deepEqual(mapping.duplicates, ['bert.embeddings.word_embeddings.weight']);
});

test('a checkpoint with only pytorch_model.bin is refused with the command that converts it', () => {
  const dir = scratchCheckpoint((d) => {
    rmSync(join(d, 'model.safetensors'));
    writeFileSync(join(d, 'pytorch_model.bin'), 'not read');
  });
  expectError(() => openBertCheckpoint(dir), /only pytorch_model\.bin[\s\S]*save_file\(.*model\.safetensors/);
  expectError(() => openBertCheckpoint(join(dir, 'nowhere')), /no config\.json/);
});

test('config.json values gp cannot run exactly are refused, naming the value', () => {
  for (const [change, pattern] of [
    [{ model_type: 'gpt2' }, /model_type "gpt2" is not supported/],
    [{ position_embedding_type: 'relative_key' }, /position_embedding_type "relative_key"/],
    [{ hidden_act: 'swish' }, /hidden_act "swish" is not supported/],
    [{ num_attention_heads: 5 }, /not a multiple of num_attention_heads 5/],
    [{ hidden_size: 'big' }, /hidden_size/],
  ] as const) {
    const dir = scratchCheckpoint((d) => editConfig(d, change));
    expectError(() => openBertCheckpoint(dir), pattern);
  }
});

test('missing, unknown and misshapen tensors are one error that lists them', () => {
  const dir = scratchCheckpoint((d) =>
    editWeights(d, (t) => {
      t.delete('bert.encoder.layer.4.output.dense.weight');
      t.delete('bert.embeddings.LayerNorm.bias');
      t.set('bert.encoder.layer.5.output.dense.bias', { shape: [32], data: new Float32Array(32) });
      t.set('bert.embeddings.token_type_embeddings.weight', { shape: [2, 32], data: new Float32Array(64) });
    }),
  );
  const checkpoint = openBertCheckpoint(dir);
  const spec: ModelSpec = { dim: 32, dropout: 0, encoder: checkpoint.encoder, head: HEAD, vocabSize: 1124, numTypes: 1, maxLength: 16 };
  expectError(
    () => loadBertWeights(createModel(spec, 0), dir),
    /missing \(2\): bert\.embeddings\.LayerNorm\.bias, bert\.encoder\.layer\.4\.output\.dense\.weight[\s\S]*unknown \(1\): bert\.encoder\.layer\.5\.output\.dense\.bias[\s\S]*token_type_embeddings\.weight is \[2,32\] float, expected \[16,32\]/,
  );
});

test('a sharded checkpoint (model.safetensors.index.json) loads like a single file', () => {
  const dir = scratchCheckpoint((d) => {
    const { tensors } = readSafetensors(join(d, 'model.safetensors'));
    rmSync(join(d, 'model.safetensors'));
    const names = [...tensors.keys()];
    const shards = [names.slice(0, 40), names.slice(40)];
    const weightMap: Record<string, string> = {};
    shards.forEach((part, i) => {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      writeFileSync(join(d, file), encodeSafetensors(new Map(part.map((n) => [n, tensors.get(n)!]))));
      for (const n of part) weightMap[n] = file;
    });
    writeFileSync(join(d, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  });
  const sharded = modelFrom(dir);
  const single = modelFrom(BERT);
  for (const [name, v] of single.params) {
    if (name.startsWith('bert.')) assert.deepEqual(sharded.params.get(name)!.dataSync(), v.dataSync(), name);
  }
});

test('without tokenizer.json the tokenizer is built from vocab.txt and gives the same ids and offsets', () => {
  const fromJson = openBertCheckpoint(BERT).tokenizer;
  const dir = scratchCheckpoint((d) => rmSync(join(d, 'tokenizer.json')));
  const fromVocab = openBertCheckpoint(dir).tokenizer;
  for (const text of ['Hello, World! naïve café', 'the 2024 Paris Olympics 北京', '  spaced\tout\nlines  ', '[MASK] unknownword123']) {
    assert.deepEqual(fromVocab.encode(text), fromJson.encode(text), text);
  }
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ do_lower_case: false }));
  const cased = openBertCheckpoint(dir).tokenizer;
  assert.notDeepEqual(cased.encode('Hello World').ids, fromJson.encode('Hello World').ids, 'do_lower_case: false keeps the capitals');
});

test('a vocab.txt with special tokens away from ids 0..4 keeps them at their ids', () => {
  const vocab = ['[PAD]', '[unused0]', '[unused1]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'hello', 'world', '##s', 'h', 'e', 'l', 'o', 'w', 'r', 'd', '##l', '##o'];
  const tokenizer = tokenizerFromVocab(vocab, true);
  assert.deepEqual([tokenizer.padId, tokenizer.unkId, tokenizer.clsId, tokenizer.sepId], [0, 3, 4, 5]);
  assert.deepEqual(tokenizer.encode('Hello worlds [MASK] ?').ids, [7, 8, 9, 6, 3]);
});

// ---------------------------------------------------------------------------------------------- parity

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

/** Worst |Δ| over every case of the checkpoint's reference.safetensors, and how many cases and padded rows there were. */
function parity(dir: string): { worst: number; cases: number; paddedRows: number } {
  const model = modelFrom(dir);
  const { tensors } = readSafetensors(join(dir, 'reference.safetensors'));
  let worst = 0;
  let cases = 0;
  let paddedRows = 0;
  for (; tensors.has(`case${cases}.ids`); cases++) {
    const ids = tensors.get(`case${cases}.ids`)!;
    const mask = tensors.get(`case${cases}.mask`)!;
    const reference = tensors.get(`case${cases}.hidden`)!;
    paddedRows += Array.from(mask.data).filter((m) => m === 0).length;
    const hidden = tf.tidy(() => {
      const idsT = tf.tensor2d(ids.data, ids.shape as [number, number], 'int32');
      const maskT = tf.tensor2d(mask.data, mask.shape as [number, number], 'float32');
      return encode(model, embed(model, idsT, maskT), maskT, { training: false });
    });
    assert.deepEqual(hidden.shape, reference.shape);
    worst = Math.max(worst, maxAbsDiff(hidden.dataSync(), reference.data));
    hidden.dispose();
  }
  for (const v of model.params.values()) v.dispose();
  return { worst, cases, paddedRows };
}

for (const [name, dir] of [['tiny-random-bert', BERT], ['tiny-random-roberta', ROBERTA]] as const) {
  test(`${name}: last hidden states match transformers within 1e-4 at every position, padding included (cpu)`, () => {
    const { worst, cases, paddedRows } = parity(dir);
    assert.ok(cases >= 2, `${cases} cases`);
    assert.ok(paddedRows > 0, 'some inputs are padded');
    assert.ok(worst <= 1e-4, `max |Δ| = ${worst}`);
  });
}

test('a LayerNorm gain and bias swapped breaks parity (the comparison can fail)', () => {
  const model = modelFrom(ROBERTA);
  const { tensors } = readSafetensors(join(ROBERTA, 'reference.safetensors'));
  const ids = tensors.get('case0.ids')!;
  const mask = tensors.get('case0.mask')!;
  const gain = model.params.get('bert.encoder.layer.1.output.LayerNorm.weight')!;
  const bias = model.params.get('bert.encoder.layer.1.output.LayerNorm.bias')!;
  const g = gain.clone();
  gain.assign(bias);
  bias.assign(g);
  const hidden = tf.tidy(() =>
    encode(model, embed(model, tf.tensor2d(ids.data, ids.shape as [number, number], 'int32'), tf.tensor2d(mask.data, mask.shape as [number, number])), tf.tensor2d(mask.data, mask.shape as [number, number]), { training: false }),
  );
  assert.ok(maxAbsDiff(hidden.dataSync(), tensors.get('case0.hidden')!.data) > 0.01);
});

test('exact GELU is x·Φ(x) and has a gradient', () => {
  const x = tf.tensor1d([-3, -1, 0, 0.5, 2]);
  const expected = [-0.0040497, -0.1586553, 0, 0.3457312, 1.9544997];
  assert.ok(maxAbsDiff(geluErf(x).dataSync(), expected) < 1e-5);
  // d/dx x·Φ(x) = Φ(x) + x·φ(x); at 0 that is 1/2.
  assert.ok(Math.abs(tf.grad((v: tf.Tensor) => geluErf(v).sum())(tf.tensor1d([0])).dataSync()[0] - 0.5) < 1e-6);
});

// ---------------------------------------------------------------------------------------------- fine-tuning

function tinyBatch(model: Model): { ids: tf.Tensor2D; mask: tf.Tensor2D; targets: tf.Tensor4D; tokens: number } {
  const ids = tf.tensor2d([[2, 40, 41, 42, 3, 0], [2, 50, 51, 52, 53, 3]], [2, 6], 'int32');
  const mask = tf.tensor2d([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1]]);
  const y = new Float32Array(2 * model.spec.numTypes * 36);
  y[1 * 6 + 2] = 1; // sample 0, type 0, tokens 1..2
  y[2 * 36 + 36 + 2 * 6 + 4] = 1; // sample 1, type 1, tokens 2..4
  return { ids, mask, targets: tf.tensor4d(y, [2, model.spec.numTypes, 6, 6]), tokens: 11 };
}

test('every encoder parameter gets a finite gradient (erf GELU, masked attention, scatterND embeddings)', () => {
  const model = modelFrom(BERT);
  const batch = tinyBatch(model);
  const { value, grads } = tf.variableGrads(
    () => multilabelCrossEntropy(forward(model, batch.ids, batch.mask, { training: true, rng: new Rng(1) }), batch.targets),
    [...model.params.values()],
  );
  assert.ok(Number.isFinite(value.dataSync()[0]));
  for (const [name, v] of model.params) {
    const g = grads[v.name].dataSync();
    assert.ok(g.every(Number.isFinite), name);
    // Token types other than 0 and positions past the batch are never used, so only those may stay at zero.
    if (!name.includes('token_type') && !name.includes('position_embeddings')) assert.ok(g.some((x) => x !== 0), `${name} has no gradient`);
  }
  const typeGrad = grads[model.params.get('bert.embeddings.token_type_embeddings.weight')!.name].arraySync() as number[][];
  assert.ok(typeGrad[0].some((x) => x !== 0) && typeGrad.slice(1).every((row) => row.every((x) => x === 0)), 'only token type 0 is used');
});

test('encoderLr: the encoder moves at its own rate while the head keeps training.lr', () => {
  const model = modelFrom(BERT);
  const batch = tinyBatch(model);
  const before = new Map([...model.params].map(([n, v]) => [n, v.dataSync().slice()] as const));
  const { grads } = tf.variableGrads(() => multilabelCrossEntropy(forward(model, batch.ids, batch.mask, { training: false }), batch.targets), [...model.params.values()]);
  const byName = new Map([...model.params].map(([name, v]) => [name, grads[v.name]] as const));
  const state = createAdamWState(model.params);
  const lr = 1e-2;
  const encoderLr = 1e-4;
  adamWStep(model.params, byName, state, lr, 0, { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 }, (n) => (parameterGroup(n) === 'encoder' ? encoderLr / lr : 1));
  // Adam's first step moves every coordinate with a gradient by about lr; so the largest change shows the rate.
  const largestChange = (name: string) => maxAbsDiff(model.params.get(name)!.dataSync(), before.get(name)!);
  assert.ok(Math.abs(largestChange('head.qk.kernel') - lr) < lr * 0.01, `head moved ${largestChange('head.qk.kernel')}`);
  assert.ok(Math.abs(largestChange('bert.encoder.layer.0.attention.self.query.weight') - encoderLr) < encoderLr * 0.01);
  disposeAdamWState(state);
});

test('R-Drop and VAT run unchanged on a BERT encoder (VAT perturbs the word-piece embeddings)', () => {
  const model = modelFrom(BERT);
  const batch = tinyBatch(model);
  for (const type of ['rdrop', 'vat'] as const) {
    const config = validateConfig({ data: { train: 't' }, regularizer: { type, weight: 1 } }).regularizer;
    const opts = divergenceOptions(config, ['a', 'b']);
    const rng = new Rng(3);
    const direction =
      type === 'vat'
        ? vatPerturbation(model, batch, forward(model, batch.ids, batch.mask, { training: true, rng }), config, opts, rng)
        : null;
    if (direction) assert.deepEqual(direction.shape, [2, 6, 32]);
    const { value, grads } = tf.variableGrads(() => batchLoss(model, batch, config, 1, opts, rng, direction).total, [...model.params.values()]);
    assert.ok(Number.isFinite(value.dataSync()[0]), type);
    assert.ok(Object.values(grads).every((g) => g.dataSync().every(Number.isFinite)), type);
  }
});

test('wasm: parity and a finite gradient as on cpu', async () => {
  await initBackend('wasm');
  try {
    assert.ok(parity(BERT).worst <= 1e-4);
    const model = modelFrom(BERT);
    const batch = tinyBatch(model);
    const { grads } = tf.variableGrads(() => multilabelCrossEntropy(forward(model, batch.ids, batch.mask, { training: false }), batch.targets), [...model.params.values()]);
    assert.ok(Object.values(grads).every((g) => g.dataSync().every(Number.isFinite)));
  } finally {
    await initBackend('cpu');
  }
});

// ---------------------------------------------------------------------------------------------- end to end

test('gp train with a bert encoder: checkpoint tokenizer and length, fine-tuned weights saved, predict reloads them', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gp-bert-train-'));
  const people = ['alice', 'bob', 'carol', 'dave'];
  const places = ['paris', 'london', 'tokyo', 'berlin'];
  const examples = people.flatMap((who, i) =>
    places.map((where, j) => {
      const text = `${who} flew to ${where} on day ${i + j}`;
      return { text, spans: [{ start: 0, end: who.length, label: 'PER' }, { start: who.length + 8, end: who.length + 8 + where.length, label: 'LOC' }] };
    }),
  );
  const trainFile = join(dir, 'train.jsonl');
  writeJsonl(trainFile, examples);
  const outDir = join(dir, 'model');
  const config = validateConfig({
    seed: 3,
    backend: 'cpu',
    data: { train: trainFile, dev: trainFile, maxLength: 600 },
    model: { encoder: { type: 'bert', path: BERT }, head: { size: 16 } },
    training: { epochs: 3, batchSize: 8, lr: 5e-3, encoderLr: 5e-4, schedule: { type: 'constant', warmup: 0 }, checkpointEvery: 0 },
  });
  const summary = await train(config, outDir);
  assert.ok(summary.epochs[2].trainLoss < summary.epochs[0].trainLoss, `losses ${summary.epochs.map((e) => e.trainLoss)}`);

  const loaded = loadModel(outDir);
  const { spec } = loaded.manifest;
  assert.equal(spec.encoder.type, 'bert');
  assert.equal(spec.dim, 32);
  assert.equal(spec.maxLength, 512, "data.maxLength is capped by the checkpoint's positions");
  assert.deepEqual(loaded.tokenizerJson, readJsonFile(join(BERT, 'tokenizer.json')));
  const original = readSafetensors(join(BERT, 'model.safetensors')).tensors.get('bert.encoder.layer.0.attention.self.query.weight')!.data;
  assert.ok(maxAbsDiff(loaded.model.params.get('bert.encoder.layer.0.attention.self.query.weight')!.dataSync(), original) > 0, 'fine-tuned, not the checkpoint');

  // A text longer than a window: predict cuts it into windows and maps entities back to characters.
  const tokenizer = TextTokenizer.fromJSON(loaded.tokenizerJson as object);
  const long = examples.map((e) => e.text).join(' and ');
  const [entities] = predictEntities(loaded.model, tokenizer, loaded.manifest.labels, [long], { maxLength: 24, overlap: 8, batchSize: 4, threshold: -1e6 });
  assert.ok(entities.length > 0);
  for (const e of entities) assert.equal(long.slice(e.start, e.end), e.text);
});
