/**
 * How optimistic is a dev F1 under a decoding tuned on that same dev set? This scores a model on a labelled file
 * four ways, from one forward pass:
 *
 *   nested@0      threshold 0, nested: no choice made on the data
 *   model         the decoding the model carries (model.json; chosen on dev by training.tuneDecoding)
 *   tuned         the best decoding of the grid on the whole file (optimistic: chosen on what it is scored on)
 *   cross-val.    the decoding chosen on K−1 folds of the file and scored on the remaining fold, the held-out
 *                 predictions of all folds pooled (crossValidateDecoding): an estimate without that optimism
 *
 *   node --import tsx scripts/decoding-cv.ts MODEL_DIR DATA [read flags] [--folds 5] [--seed 1] [--json]
 */
import { join } from 'node:path';
import { initBackend } from '../src/backend.js';
import { readCorpus } from '../src/data/corpus.js';
import { TextTokenizer } from '../src/data/tokenizer.js';
import { GpError } from '../src/errors.js';
import { SWEEP_DECODINGS, bestDecoding, crossValidateDecoding, predictWithDecodings, type Decoding } from '../src/eval/evaluate.js';
import { scoreEntities, type Scores } from '../src/eval/metrics.js';
import { disposeModel } from '../src/model/globalpointer.js';
import { loadModel } from '../src/model/io.js';
import { Rng } from '../src/rng.js';
import { READ_FLAGS_USAGE, parseReadArgs } from './read-options.js';

const USAGE = `usage: decoding-cv.ts MODEL_DIR DATA ${READ_FLAGS_USAGE} [--folds K] [--seed S] [--json]`;

async function main(): Promise<void> {
  const args = parseReadArgs(USAGE, 2, { folds: { type: 'string', default: '5' }, seed: { type: 'string', default: '1' }, json: { type: 'boolean', default: false } });
  if (!args) return;
  const [modelDir, dataFile] = args.positionals;
  const folds = Number(args.values.folds);
  const seed = Number(args.values.seed);
  if (!Number.isInteger(folds) || folds < 2) throw new GpError(`--folds: expected an integer ≥ 2, got ${String(args.values.folds)}`);
  if (!Number.isInteger(seed)) throw new GpError(`--seed: expected an integer, got ${String(args.values.seed)}`);

  await initBackend('auto', { log: () => {} });
  const { model, manifest, tokenizerJson } = loadModel(modelDir);
  const tokenizer = TextTokenizer.fromJSON(tokenizerJson as object, join(modelDir, 'tokenizer.json'));
  const { examples } = readCorpus(dataFile, args.read);
  const gold = examples.map((e) => e.spans);
  const own: Required<Decoding> = { threshold: manifest.threshold, flat: manifest.flat ?? false };
  const decodings = [...SWEEP_DECODINGS, own];
  const inference = { maxLength: manifest.spec.maxLength, overlap: manifest.windowOverlap, batchSize: 64 };
  const predictions = predictWithDecodings(model, tokenizer, manifest.labels, examples.map((e) => e.text), inference, decodings);
  disposeModel(model);

  const grid = predictions.slice(0, SWEEP_DECODINGS.length);
  const gridScores = grid.map((p) => scoreEntities(gold, p));
  const best = bestDecoding(SWEEP_DECODINGS, gridScores.map((s) => s.micro.f1));
  // Examples dealt into folds in a seeded random order, so that neighbouring (often related) sentences spread out.
  const order = new Rng(seed).shuffle(examples.map((_, k) => k));
  const foldOf = new Array<number>(examples.length);
  order.forEach((k, position) => (foldOf[k] = position % folds));
  const cv = crossValidateDecoding(gold, grid, SWEEP_DECODINGS, foldOf);

  const zero = SWEEP_DECODINGS.findIndex((d) => d.threshold === 0 && !d.flat);
  const label = (d: Required<Decoding>) => `${d.flat ? 'flat' : 'nested'} ${d.threshold}`;
  const rows: Array<{ name: string; decoding: string; scores: Scores }> = [
    { name: 'nested@0', decoding: label(SWEEP_DECODINGS[zero]), scores: gridScores[zero] },
    { name: 'model', decoding: label(own), scores: scoreEntities(gold, predictions[decodings.length - 1]) },
    { name: 'tuned', decoding: label(best.decoding), scores: gridScores[best.index] },
    { name: `cross-val. (${folds} folds)`, decoding: cv.chosen.map(label).join(', '), scores: cv.scores },
  ];
  if (args.values.json) {
    process.stdout.write(JSON.stringify({ model: modelDir, data: dataFile, examples: examples.length, folds, seed, rows: rows.map((r) => ({ ...r, scores: r.scores.micro })) }) + '\n');
    return;
  }
  const lines = rows.map((r) => `| ${r.name} | ${r.decoding} | ${r.scores.micro.precision.toFixed(4)} | ${r.scores.micro.recall.toFixed(4)} | ${r.scores.micro.f1.toFixed(4)} |`);
  process.stdout.write(`${modelDir} on ${dataFile} (${examples.length} examples)\n| decoding | chosen | P | R | F1 |\n|---|---|---|---|---|\n${lines.join('\n')}\n`);
}

main().catch((error: unknown) => {
  if (!(error instanceof GpError)) throw error;
  console.error(`error: ${error.message}`);
  process.exit(error.exitCode);
});
