/**
 * Checks, on a small model with dropout off, that scripts/torch_reference.py computes gp's model: from gp's initial
 * parameters, the same loss, gradient norm and loss after one AdamW step (`--head efficient` for the efficient head);
 * then that gp's dropout masks (libtensorflow's StatelessRandomUniform on the tensorflow backend, tf.dropout
 * elsewhere) change from call to call.
 *
 *   GP_TORCH_PYTHON=/path/to/python node --import tsx scripts/torch-parity.ts [--backend tensorflow] [--head efficient]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend, nativeUniform, type LoadedBackendName } from '../src/backend.js';
import { createModel, disposeModel } from '../src/model/globalpointer.js';
import { Rng } from '../src/rng.js';
import { asWindows, makeData, parseBenchOptions, specOf, stepParts } from './bench-step.js';

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
  const parts = stepParts(model, data, rng);
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
    console.log(`torch (${data.shape.head} head): loss ${torch.loss.toFixed(6)} vs gp ${loss.toFixed(6)}, ‖g‖ ${torch.gradNorm!.toFixed(6)} vs ${gradNorm.toFixed(6)}, after one AdamW step ${torch.lossAfterStep!.toFixed(6)} vs ${after.toFixed(6)} (max rel ${diff.toExponential(1)})`);
    if (diff > 1e-4) {
      console.log("FAIL: the PyTorch reference does not compute gp's model");
      process.exitCode = 1;
    }
  }
}

// Dropout: four training-mode losses of the same batch from the same parameters differ only if the masks do.
{
  const probe = nativeUniform([1], 0);
  const source = probe ? "libtensorflow's StatelessRandomUniform" : 'tf.dropout';
  probe?.dispose();
  const parts = stepParts(model, data, rng);
  const input = parts.input(batch);
  const losses = Array.from({ length: 4 }, () => tf.tidy(() => parts.loss(input, true).dataSync()[0]));
  input.dispose();
  parts.dispose();
  const distinct = new Set(losses).size === losses.length;
  console.log(`dropout (${source}): four training-mode losses ${losses.map((l) => l.toFixed(6)).join(', ')} (${distinct ? 'all differ: masks change per call' : 'FAIL: some are equal'})`);
  if (!distinct) process.exitCode = 1;
}
disposeModel(model);
