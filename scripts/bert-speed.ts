/**
 * Training speed of a GlobalPointer on a bert-base-shaped encoder (random weights): the loop's own step, i.e. forward,
 * loss, gradients and AdamW, timed after one warm-up step. Numbers for docs/bert.md.
 *
 *   node --import tsx scripts/bert-speed.ts [backend=tensorflow] [steps=3] [batch=8] [length=128]
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend, type BackendName } from '../src/backend.js';
import { batchTensors, disposeBatch, type Window } from '../src/data/encode.js';
import { createModel, disposeModel, type ModelSpec } from '../src/model/globalpointer.js';
import { adamWStep, createAdamWState } from '../src/train/optimizer.js';
import { batchLoss } from '../src/train/regularizer.js';
import { validateConfig } from '../src/config/load.js';
import { Rng } from '../src/rng.js';

const [backend = 'tensorflow', steps = '3', batch = '8', length = '128'] = process.argv.slice(2);
const B = Number(batch);
const L = Number(length);
const NUM_TYPES = 10; // CLUENER's

// bert-base-chinese's sizes.
const spec: ModelSpec = {
  dim: 768,
  dropout: 0.1,
  encoder: {
    type: 'bert', path: '(random)', modelType: 'bert', layers: 12, heads: 12, intermediateSize: 3072, hiddenAct: 'gelu', layerNormEps: 1e-12,
    maxPositions: 512, typeVocabSize: 2, padTokenId: 0, hiddenDropout: 0.1, attentionDropout: 0.1,
  },
  head: { type: 'globalpointer', size: 64, rope: true },
  vocabSize: 21128,
  numTypes: NUM_TYPES,
  maxLength: L,
};

const info = await initBackend(backend as BackendName, { log: (l) => console.log(l) });
const rng = new Rng(1);
const model = createModel(spec, 1);
const optimizer = createAdamWState(model.params);
const config = validateConfig({ data: { train: '-' } });
const windows: Window[] = Array.from({ length: B }, (_, b) => ({
  example: b,
  ids: Array.from({ length: L }, () => 1 + Math.floor(rng.next() * 21000)),
  offsets: [],
  base: 1,
  targets: [[b % NUM_TYPES, 3, 5]],
}));

function step(): void {
  const input = batchTensors(windows, NUM_TYPES, 0, true);
  const { value, grads } = tf.variableGrads(() => batchLoss(model, input, config.regularizer, 0, {}, rng, null).total, [...model.params.values()]);
  const byName = new Map([...model.params].map(([name, v]) => [name, grads[v.name]] as const));
  adamWStep(model.params, byName, optimizer, 1e-5, 1, config.training);
  value.dataSync();
  tf.dispose([value, ...Object.values(grads)]);
  disposeBatch(input);
}

step(); // warm-up: kernel selection, first allocations
const started = process.hrtime.bigint();
for (let s = 0; s < Number(steps); s++) step();
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
const tokens = Number(steps) * B * L;
console.log(
  `${info.name}: bert-base shape (12 × 768, 12 heads, vocab 21128), batch ${B} × ${L}: ` +
    `${(seconds / Number(steps)).toFixed(2)} s/step, ${(tokens / seconds).toFixed(0)} tokens/s over ${steps} steps`,
);
disposeModel(model);
