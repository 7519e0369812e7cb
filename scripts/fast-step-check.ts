/**
 * Checks, on a small model with dropout off, that scripts/torch_reference.py computes gp's model (loss, gradient
 * norm, the loss after one AdamW step, from gp's parameters), and that scripts/fast-step.ts computes src's step: the
 * loss and every parameter's gradient of each feature and of all together, AdamW, prediction; then that the native
 * dropout masks change from call to call.
 *
 *   GP_TORCH_PYTHON=/path/to/python node --import tsx scripts/fast-step-check.ts [--backend tensorflow] [--head efficient]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend, type LoadedBackendName } from '../src/backend.js';
import { buildTokenizer } from '../src/data/tokenizer.js';
import { predictEntities } from '../src/eval/evaluate.js';
import { createModel, disposeModel } from '../src/model/globalpointer.js';
import { Rng } from '../src/rng.js';
import { asWindows, makeData, parseBenchOptions, specOf, srcParts, type AnyStepParts } from './bench-step.js';
import type { Entity } from '../src/types.js';
import { fastParts, fastPredictEntities } from './fast-step.js';

const { o, values } = parseBenchOptions(process.argv.slice(2), { backend: { type: 'string' } });
const backend = (typeof values.backend === 'string' ? values.backend : 'tensorflow') as LoadedBackendName;
await initBackend(backend);
const small = { ...o, batch: Number(values.batch ?? 3), length: 24, minLength: 10, dim: 32, layers: 2, heads: 2, headSize: 8, types: 4, vocab: 200, gold: 6 };
const data = makeData(small, 1);
const model = createModel(specOf(data), 7);
const variables = [...model.params.values()];
const rng = new Rng(1);
const batch = asWindows(data.batches[0]);

// The PyTorch reference, loaded with these parameters, must compute the same loss, gradient norm and first update.
{
  const dir = mkdtempSync(join(tmpdir(), 'gp-torch-check-'));
  const dataFile = join(dir, 'data.json');
  const weightsFile = join(dir, 'weights.json');
  writeFileSync(dataFile, JSON.stringify(data));
  writeFileSync(weightsFile, JSON.stringify(Object.fromEntries([...model.params].map(([n, v]) => [n, Array.from(v.dataSync())]))));
  const snapshot = new Map([...model.params].map(([n, v]) => [n, v.clone()]));
  const parts = srcParts(model, data, rng);
  const input = parts.input(batch);
  const { value, grads } = tf.variableGrads(() => parts.loss(input, false), variables);
  const loss = value.dataSync()[0];
  const gradNorm = parts.update(grads, data.training.lr);
  const after = tf.tidy(() => parts.loss(input, false).dataSync()[0]);
  tf.dispose([value, ...Object.values(grads)]);
  input.dispose();
  parts.dispose();
  for (const [n, v] of model.params) v.assign(snapshot.get(n)!);
  tf.dispose([...snapshot.values()]);
  const python = process.env.GP_TORCH_PYTHON ?? 'python3';
  const child = spawnSync(python, [join(import.meta.dirname, 'torch_reference.py'), dataFile, '--check', weightsFile], { encoding: 'utf8' });
  rmSync(dir, { recursive: true, force: true });
  const line = child.stdout?.trim().split('\n').pop() ?? '';
  const torch = line.startsWith('{') ? (JSON.parse(line) as { loss?: number; gradNorm?: number; lossAfterStep?: number; error?: string }) : { error: child.stderr || String(child.error) };
  if (torch.error !== undefined || torch.loss === undefined) console.log(`torch: skipped (${torch.error})`);
  else {
    const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);
    const diff = Math.max(rel(torch.loss, loss), rel(torch.gradNorm!, gradNorm), rel(torch.lossAfterStep!, after));
    console.log(`torch: loss ${torch.loss.toFixed(6)} vs gp ${loss.toFixed(6)}, ‖g‖ ${torch.gradNorm!.toFixed(6)} vs ${gradNorm.toFixed(6)}, after one AdamW step ${torch.lossAfterStep!.toFixed(6)} vs ${after.toFixed(6)} (max rel ${diff.toExponential(1)})`);
    if (diff > 1e-4) {
      console.log('FAIL: the PyTorch reference does not compute gp\'s model');
      process.exitCode = 1;
    }
  }
}

if (data.shape.head !== 'globalpointer') {
  console.log(`the rewrites cover the globalpointer head only; ${data.shape.head}: torch check only`);
  disposeModel(model);
  process.exit();
}

function lossAndGrads(parts: AnyStepParts) {
  const input = parts.input(batch);
  const { value, grads } = tf.variableGrads(() => parts.loss(input, false), variables);
  input.dispose();
  const out = { loss: value.dataSync()[0], grads: new Map([...model.params].map(([n, v]) => [n, grads[v.name].dataSync() as Float32Array])) };
  tf.dispose([value, ...Object.values(grads)]);
  parts.dispose();
  return out;
}

const reference = lossAndGrads(srcParts(model, data, rng));
let worst = 0;
for (const impl of ['cube', 'gelu', 'ln', 'attn', 'dense', 'mlce', 'loss', 'tidy', 'fast']) {
  const got = lossAndGrads(fastParts(model, data, rng, impl));
  let maxRel = 0;
  for (const [name, g] of reference.grads) {
    const h = got.grads.get(name)!;
    const scale = Math.max(1e-6, ...g.map(Math.abs));
    for (let i = 0; i < g.length; i++) maxRel = Math.max(maxRel, Math.abs(g[i] - h[i]) / scale);
  }
  const lossDiff = Math.abs(got.loss - reference.loss) / Math.abs(reference.loss);
  worst = Math.max(worst, maxRel, lossDiff);
  console.log(`${impl}: loss ${got.loss.toFixed(6)} vs ${reference.loss.toFixed(6)} (rel ${lossDiff.toExponential(1)}), gradients: max |Δ| / max |g| per tensor ${maxRel.toExponential(1)}`);
}

// Prediction: the same entities from src's predictEntities and the rewrite's, at threshold 0 (an untrained model puts
// about half its cells above it, so this compares many spans).
const tokenizer = buildTokenizer(data.texts, { mode: 'char' });
const labels = Array.from({ length: data.shape.types }, (_, i) => `T${i}`);
const predictOpts = { maxLength: data.shape.length, overlap: 4, batchSize: 8, threshold: 0 };
const texts = data.texts.slice(0, 12);
const want = predictEntities(model, tokenizer, labels, texts, predictOpts);
const got = fastPredictEntities(model, tokenizer, labels, texts, predictOpts, 'fast');
// Spans compared exactly; scores to float32 noise (a cell within noise of 0 could flip, none did here).
const spansOf = (es: Entity[][]) => es.map((e) => JSON.stringify(e.map(({ score: _, ...span }) => span)));
const same = spansOf(want).filter((w, i) => w === spansOf(got)[i]).length;
let scoreDiff = 0;
want.forEach((es, t) => es.forEach((e, i) => (scoreDiff = Math.max(scoreDiff, Math.abs(e.score - (got[t][i]?.score ?? Infinity))))));
console.log(`predict: ${same} of ${texts.length} texts with the same entities (${want.flat().length} in all), scores max |Δ| ${scoreDiff.toExponential(1)}`);
if (same < texts.length || scoreDiff > 1e-3) worst = Infinity;

// AdamW: one update each from the same gradients, parameters compared.
const snapshot = new Map([...model.params].map(([n, v]) => [n, v.clone()]));
function afterUpdate(impl: 'src' | 'adam'): Map<string, Float32Array> {
  for (const [n, v] of model.params) v.assign(snapshot.get(n)!);
  const parts: AnyStepParts = impl === 'src' ? srcParts(model, data, rng) : fastParts(model, data, rng, 'adam');
  for (let s = 0; s < 3; s++) {
    const input = parts.input(batch);
    const { value, grads } = tf.variableGrads(() => parts.loss(input, false), variables);
    parts.update(grads, 1e-2);
    tf.dispose([value, ...Object.values(grads)]);
    input.dispose();
  }
  parts.dispose();
  return new Map([...model.params].map(([n, v]) => [n, v.dataSync() as Float32Array]));
}
const a = afterUpdate('src');
const b = afterUpdate('adam');
let adamDiff = 0;
for (const [n, x] of a) x.forEach((xi, i) => (adamDiff = Math.max(adamDiff, Math.abs(xi - b.get(n)![i]))));
console.log(`adam: parameters after 3 updates (lr 1e-2), max |Δ| ${adamDiff.toExponential(1)}`);

// Dropout masks: the fraction dropped and the mean, for the native masks.
const withDropout = fastParts(model, data, rng, 'dropout');
const input = withDropout.input(batch);
const losses = Array.from({ length: 4 }, () => tf.tidy(() => withDropout.loss(input, true).dataSync()[0]));
console.log(`dropout: four training-mode losses ${losses.map((l) => l.toFixed(6)).join(', ')} (differ: masks change per call)`);
input.dispose();
withDropout.dispose();
tf.dispose([...snapshot.values()]);
disposeModel(model);
if (worst > 1e-3) {
  console.log(`FAIL: worst relative difference ${worst}`);
  process.exit(1);
}
