/**
 * The whole path on the shipped sample: train → save → load → eval → predict, through the library and the CLI.
 * Sized to run in well under a minute on the portable backends (wasm / cpu), since CI may have nothing faster.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { validateConfig } from '../src/config/load.js';
import { readCorpus, writeJsonl } from '../src/data/corpus.js';
import { train } from '../src/train/train.js';
import { loadModel } from '../src/model/io.js';
import { TextTokenizer } from '../src/data/tokenizer.js';
import { SWEEP_DECODINGS, evaluateExamples, predictEntities, sweepDecodings, tuneDecoding } from '../src/eval/evaluate.js';
import type { MetricsRow } from '../src/train/train.js';

const dir = mkdtempSync(join(tmpdir(), 'gp-pipeline-'));
const { examples } = readCorpus('data/sample.train.jsonl');
// A small slice trained long enough to fit it: the test is that learning happens end to end, not generalisation.
const slice = examples.filter((e) => e.text.length <= 40).slice(0, 24);
const trainFile = join(dir, 'train.jsonl');
writeJsonl(trainFile, slice);
const outDir = join(dir, 'model');
// A word list of the slice's entities: the lexicon features must survive saving and loading like the rest.
const lexiconFile = join(dir, 'words.txt');
writeFileSync(lexiconFile, [...new Set(slice.flatMap((e) => e.spans.map((s) => e.text.slice(s.start, s.end))))].join('\n') + '\n');

const config = validateConfig({
  seed: 1,
  data: { train: trainFile, dev: trainFile, maxLength: 48 },
  // Hashed bigrams, word features (a few rows, so they collide) and a lexicon: saving, loading and predicting must carry them.
  model: { dim: 64, dropout: 0, bigramBuckets: 97, wordFeatures: 31, lexicon: lexiconFile, encoder: { type: 'transformer', layers: 1, heads: 2, attentionDropout: 0 }, head: { size: 16 } },
  training: { epochs: 40, batchSize: 4, lr: 3e-3, schedule: { type: 'constant', warmup: 0 } },
});

// The backend is initialised inside train(); count tensors from a warm start so the count is the loop's alone.
await train({ ...config, training: { ...config.training, epochs: 1 } }, join(dir, 'warm-up'));
const tensorsBefore = tf.memory().numTensors;
const summary = await train(config, outDir);
const tensorsAfter = tf.memory().numTensors;

test('training leaves no tensors behind (memory stays flat over epochs and runs)', () => {
  assert.equal(tensorsAfter, tensorsBefore);
});

test('training raises dev F1 clearly and keeps the best epoch', () => {
  const f1s = summary.epochs.map((e) => e.dev!.scores.micro.f1);
  assert.ok(f1s[0] <= 0.05, `first epoch F1 ${f1s[0]}`);
  assert.ok(summary.bestDevF1! > 0.5, `best F1 ${summary.bestDevF1} (per epoch ${f1s.map((f) => f.toFixed(2))})`);
  assert.equal(summary.bestDevF1, Math.max(...f1s));
  assert.ok(summary.epochs[summary.epochs.length - 1].trainLoss < summary.epochs[0].trainLoss / 2);
});

test('the model directory holds everything and reloads to the same F1', () => {
  for (const f of ['model.json', 'weights.safetensors', 'tokenizer.json', 'config.yaml', 'train-config.yaml', 'metrics.jsonl', 'metrics.json', 'curves.svg', 'lexicon.txt']) assert.ok(existsSync(join(outDir, f)), f);
  const loaded = loadModel(outDir);
  const tokenizer = TextTokenizer.fromJSON(loaded.tokenizerJson as object);
  const opts = { maxLength: 48, overlap: 8, batchSize: 16, threshold: 0 };
  const { scores } = evaluateExamples(loaded.model, tokenizer, loaded.manifest.labels, slice, opts);
  assert.ok(Math.abs(scores.micro.f1 - summary.bestDevF1!) < 1e-6, `${scores.micro.f1} vs ${summary.bestDevF1}`);
  // A text longer than a window: every entity's offsets still slice the input to its text.
  const long = slice.map((e) => e.text).join('。').repeat(3);
  const [entities] = predictEntities(loaded.model, tokenizer, loaded.manifest.labels, [long], opts);
  assert.ok(entities.length > 0);
  for (const e of entities) assert.equal(long.slice(e.start, e.end), e.text);
});

test('the CLI evaluates and predicts with the saved model', () => {
  const cli = ['--import', 'tsx', 'src/cli/main.ts'];
  const evalOut = JSON.parse(execFileSync('node', [...cli, 'eval', '--model', outDir, '--data', trainFile, '--json'], { encoding: 'utf8' }));
  assert.ok(Math.abs(evalOut.micro.f1 - summary.bestDevF1!) < 1e-6);
  const sweep = JSON.parse(execFileSync('node', [...cli, 'eval', '--model', outDir, '--data', trainFile, '--sweep', '--json'], { encoding: 'utf8' })).sweep;
  assert.equal(sweep.length, 26, 'thirteen thresholds, nested and flat');
  const atZero = sweep.find((r: { threshold: number; flat: boolean }) => r.threshold === 0 && !r.flat);
  assert.ok(Math.abs(atZero.f1 - summary.bestDevF1!) < 1e-6, 'the sweep at threshold 0 is the plain evaluation');
  // Raising the threshold can only drop spans: recall never rises along the nested rows.
  const nested = sweep.filter((r: { flat: boolean }) => !r.flat).map((r: { recall: number }) => r.recall);
  for (let i = 1; i < nested.length; i++) assert.ok(nested[i] <= nested[i - 1] + 1e-12, `recall ${nested}`);
  const input = join(dir, 'input.txt');
  writeFileSync(input, slice.slice(0, 5).map((e) => e.text).join('\n') + '\n\n');
  const predFile = join(dir, 'pred.jsonl');
  execFileSync('node', [...cli, 'predict', '--model', outDir, input, '--out', predFile], { encoding: 'utf8' });
  const lines = readFileSync(predFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, 6, 'one output line per input line, the empty one included');
  // Three worker processes over two files (one of them JSON lines with an extra field): the same lines, in order.
  const jsonInput = join(dir, 'input.jsonl');
  writeFileSync(jsonInput, slice.slice(5, 8).map((e, i) => JSON.stringify({ id: i, text: e.text })).join('\n') + '\n');
  const single = execFileSync('node', [...cli, 'predict', '--model', outDir, input, jsonInput], { encoding: 'utf8' });
  const parallel = execFileSync('node', [...cli, 'predict', '--model', outDir, input, jsonInput, '--workers', '3'], { encoding: 'utf8' });
  // Batches pad differently in each process, so scores may differ in the last float digits; nothing else may.
  type Line = { id?: number; text: string; entities: Array<{ score: number }> };
  const parse = (out: string) => out.trim().split('\n').map((l) => JSON.parse(l) as Line);
  const [a, b] = [parse(single), parse(parallel)];
  assert.equal(b.length, 9);
  assert.equal(b[8].id, 2);
  const unscored = (lines: Line[]) => lines.map((l) => ({ ...l, entities: l.entities.map((e) => ({ ...e, score: 0 })) }));
  assert.deepEqual(unscored(b), unscored(a));
  a.forEach((line, i) => line.entities.forEach((e, k) => assert.ok(Math.abs(e.score - b[i].entities[k].score) < 1e-4)));
  for (const line of lines) for (const e of line.entities) assert.equal(line.text.slice(e.start, e.end), e.text);
});

test('training.maxMinutes stops at the epoch end after which another epoch would overrun the budget', async () => {
  // Every epoch takes far longer than a 0.1 ms budget, so the run ends after its first epoch, best model saved.
  const capped = await train({ ...config, training: { ...config.training, epochs: 3, maxMinutes: 1e-4 / 60 } }, join(dir, 'capped'));
  assert.equal(capped.epochs.length, 1);
  assert.match(capped.stoppedEarly ?? '', /training\.maxMinutes/);
  assert.ok(existsSync(join(dir, 'capped', 'model.json')));
});

test('training.tuneDecoding keeps the dev-best decoding in the model, and gp eval defaults to it', async () => {
  const tunedDir = join(dir, 'tuned');
  const tuned = await train({ ...config, training: { ...config.training, epochs: 12, tuneDecoding: true } }, tunedDir);
  const manifest = JSON.parse(readFileSync(join(tunedDir, 'model.json'), 'utf8'));
  const rows = readFileSync(join(tunedDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as MetricsRow);
  const bestRow = rows.find((r) => r.epoch === tuned.bestEpoch)!;
  assert.deepEqual({ threshold: manifest.threshold, flat: manifest.flat }, bestRow.decoding);

  // The chosen decoding is the sweep's best on dev, and the CLI without decoding flags reproduces its F1.
  const loaded = loadModel(tunedDir);
  const tokenizer = TextTokenizer.fromJSON(loaded.tokenizerJson as object);
  const inference = { maxLength: 48, overlap: 8, batchSize: 16 };
  const all = sweepDecodings(loaded.model, tokenizer, loaded.manifest.labels, slice, inference, SWEEP_DECODINGS).map((s) => s.micro.f1);
  const { decoding, scores } = tuneDecoding(loaded.model, tokenizer, loaded.manifest.labels, slice, inference);
  assert.deepEqual(decoding, bestRow.decoding);
  assert.equal(scores.micro.f1, Math.max(...all));
  assert.equal(all.indexOf(scores.micro.f1), SWEEP_DECODINGS.findIndex((d) => d.threshold === decoding.threshold && d.flat === decoding.flat), 'the first of equals');
  const cli = ['--import', 'tsx', 'src/cli/main.ts'];
  const byDefault = JSON.parse(execFileSync('node', [...cli, 'eval', '--model', tunedDir, '--data', trainFile, '--json'], { encoding: 'utf8' }));
  assert.ok(Math.abs(byDefault.micro.f1 - tuned.bestDevF1!) < 1e-6, `${byDefault.micro.f1} vs ${tuned.bestDevF1}`);
  const flag = decoding.flat ? '--nested' : '--flat';
  const other = JSON.parse(execFileSync('node', [...cli, 'eval', '--model', tunedDir, '--data', trainFile, '--json', flag], { encoding: 'utf8' }));
  const otherIndex = SWEEP_DECODINGS.findIndex((d) => d.threshold === decoding.threshold && d.flat === !decoding.flat);
  assert.ok(Math.abs(other.micro.f1 - all[otherIndex]) < 1e-6, `${flag} overrides the model's decoding`);
  assert.throws(
    () => execFileSync('node', [...cli, 'eval', '--model', tunedDir, '--data', trainFile, '--flat', '--nested'], { encoding: 'utf8', stdio: 'pipe' }),
    /give --flat or --nested, not both/,
  );
  tf.dispose([...loaded.model.params.values()]);
});
