/**
 * The pieces scripts/bench.ts, scripts/profile-step.ts and scripts/torch-parity.ts share: their flags, the
 * benchmark's inputs, the model spec they imply, and the loop's training step split into its parts (inputs, loss,
 * update) so that the profile can time each part.
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { validateConfig } from '../src/config/load.js';
import { batchTensors, disposeBatch, type BatchTensors, type Window } from '../src/data/encode.js';
import { forward, type Model, type ModelSpec } from '../src/model/globalpointer.js';
import { multilabelCrossEntropy } from '../src/train/loss.js';
import { adamWStep, createAdamWState, disposeAdamWState, type AdamWOptions } from '../src/train/optimizer.js';
import { Rng } from '../src/rng.js';

/** Everything both sides need, written once by bench.ts so that tfjs and PyTorch see the same inputs. */
export interface BenchData {
  shape: {
    vocab: number; dim: number; layers: number; heads: number; headSize: number; types: number; ffnMultiplier: number;
    dropout: number; attentionDropout: number; batch: number; length: number; head: 'globalpointer' | 'efficient';
  };
  training: AdamWOptions & { lr: number; clipNorm: number };
  seed: number;
  padId: number;
  warmup: number;
  steps: number;
  repeats: number;
  threads: number;
  predictBatchSize: number;
  threshold: number;
  batches: Array<Array<Pick<Window, 'ids' | 'targets'>>>;
  texts: string[];
}

export function specOf(data: BenchData): ModelSpec {
  const s = data.shape;
  return {
    dim: s.dim,
    dropout: s.dropout,
    encoder: { type: 'transformer', layers: s.layers, heads: s.heads, ffnMultiplier: s.ffnMultiplier, positions: 'rope', attentionDropout: s.attentionDropout },
    head: { type: s.head, size: s.headSize, rope: true },
    vocabSize: s.vocab,
    numTypes: s.types,
    maxLength: s.length,
  };
}

export function asWindows(batch: BenchData['batches'][number]): Window[] {
  return batch.map((w, example) => ({ example, ids: w.ids, offsets: [], base: 1, targets: w.targets }));
}

/** A batch as the loop uploads it: ids, mask and dense targets. */
export type StepInput = BatchTensors & { dispose(): void };

/** The loop's training step (src/train/train.ts, no regulariser) in parts. */
export interface StepParts {
  input(batch: Window[]): StepInput;
  /** The scalar to differentiate with respect to every parameter (called inside tf.variableGrads). */
  loss(input: StepInput, training: boolean): tf.Scalar;
  /** Clip and apply the gradients (keyed by variable name); returns the gradient norm. */
  update(grads: tf.NamedTensorMap, lr: number): number;
  dispose(): void;
}

export function stepParts(model: Model, data: BenchData, rng: Rng): StepParts {
  const optimizer = createAdamWState(model.params);
  return {
    input(batch) {
      const t = batchTensors(batch, data.shape.types, data.padId, true);
      return { ...t, dispose: () => disposeBatch(t) };
    },
    loss: (t, training) => multilabelCrossEntropy(forward(model, t.ids, t.mask, { training, rng }), t.targets!),
    update(grads, lr) {
      const byName = new Map([...model.params].map(([name, v]) => [name, grads[v.name]] as const));
      return adamWStep(model.params, byName, optimizer, lr, data.training.clipNorm, data.training);
    },
    dispose: () => disposeAdamWState(optimizer),
  };
}

/** As the loop does it: inputs, loss and gradients, loss read back, update unless the loss is not finite, dispose. */
export function runStep(parts: StepParts, variables: tf.Variable[], batch: Window[], lr: number): number {
  const input = parts.input(batch);
  const { value, grads } = tf.variableGrads(() => parts.loss(input, true), variables);
  const loss = value.dataSync()[0];
  if (Number.isFinite(loss)) parts.update(grads, lr);
  value.dispose();
  tf.dispose(grads);
  input.dispose();
  return loss;
}

// ---------------------------------------------------------------------------------------------- options and inputs

export interface BenchOptions {
  steps?: number;
  warmup: number;
  repeats: number;
  batch: number;
  length: number;
  minLength: number;
  dim: number;
  layers: number;
  heads: number;
  headSize: number;
  types: number;
  vocab: number;
  gold: number;
  texts: number;
  predictBatch: number;
  threshold: number;
  threads: number;
  seed: number;
  head: 'globalpointer' | 'efficient';
}

type FlagSpec = { type: 'string' | 'boolean'; multiple?: boolean };
export type FlagValues = Record<string, string | boolean | Array<string | boolean> | undefined>;

const SHARED_FLAGS: Record<string, FlagSpec> = Object.fromEntries(
  ['steps', 'warmup', 'repeats', 'batch', 'length', 'min-length', 'dim', 'layers', 'heads', 'head-size', 'types', 'vocab', 'gold', 'texts', 'predict-batch', 'threshold', 'threads', 'seed', 'head'].map(
    (f) => [f, { type: 'string' }],
  ),
);

/** The shape, input and run-length flags every script shares, plus each script's own `extra` flags (returned raw). */
export function parseBenchOptions(argv: string[], extra: Record<string, FlagSpec>): { o: BenchOptions; values: FlagValues } {
  const options = { ...SHARED_FLAGS, ...extra };
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`flags: ${Object.entries(options).map(([f, spec]) => `--${f}${spec.type === 'string' ? ' VALUE' : ''}`).join(' ')}\n(see the script's header comment for what each means)\n`);
    process.exit(0);
  }
  let values: FlagValues;
  try {
    values = parseArgs({ args: argv, strict: true, options }).values;
  } catch (err) {
    // parseArgs reports a typo'd or valueless flag as a TypeError; it is a usage error, not a bug.
    process.stderr.write(`${(err as Error).message} (--help lists the flags)\n`);
    process.exit(2);
  }
  const int = (flag: string, fallback: number): number => {
    const raw = values[flag];
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${flag}: expected a non-negative integer, got "${String(raw)}"`);
    return n;
  };
  const length = int('length', 128);
  const o: BenchOptions = {
    steps: values.steps === undefined ? undefined : int('steps', 0),
    warmup: int('warmup', 2),
    repeats: int('repeats', 3),
    batch: int('batch', 16),
    length,
    minLength: int('min-length', length),
    dim: int('dim', 256),
    layers: int('layers', 2),
    heads: int('heads', 4),
    headSize: int('head-size', 64),
    types: int('types', 10),
    vocab: int('vocab', 4000),
    gold: int('gold', 3),
    texts: int('texts', 256),
    predictBatch: int('predict-batch', 64),
    threshold: int('threshold', 100),
    threads: int('threads', 2),
    seed: int('seed', 1),
    head: values.head === 'efficient' ? 'efficient' : 'globalpointer',
  };
  if (values.head !== undefined && values.head !== o.head) throw new Error(`--head: globalpointer or efficient, got "${String(values.head)}"`);
  return { o, values };
}

/** gp's training defaults (lr, AdamW, clipping), so both sides follow what `gp train` would do. */
export function trainingDefaults(): BenchData['training'] {
  const t = validateConfig({ data: { train: '-' } }).training;
  return { lr: t.lr, clipNorm: t.clipNorm, beta1: t.beta1, beta2: t.beta2, epsilon: t.epsilon, weightDecay: t.weightDecay };
}

const FIRST_CJK = 0x4e00;

/** Random ids and gold cells for the training batches and random CJK texts for prediction, from one seed. */
export function makeData(o: BenchOptions, steps: number): BenchData {
  const rng = new Rng(o.seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rng.next() * (hi - lo + 1)); // inclusive
  const batches: BenchData['batches'] = [];
  // Four distinct batches cycled: enough that nothing is cached by identity, few enough to keep the file small.
  for (let k = 0; k < 4; k++) {
    const batch: BenchData['batches'][number] = [];
    for (let b = 0; b < o.batch; b++) {
      const n = int(o.minLength, o.length);
      const ids = Array.from({ length: n }, () => int(5, o.vocab - 1));
      const targets: Array<[number, number, number]> = [];
      for (let g = int(1, o.gold); g > 0; g--) {
        const i = int(1, n - 2);
        targets.push([int(0, o.types - 1), i, Math.min(n - 2, i + int(0, 5))]);
      }
      batch.push({ ids, targets });
    }
    batches.push(batch);
  }
  // The char tokenizer built from these texts has ≈ vocab entries: CJK characters stand alone, no ## forms.
  const alphabet = o.vocab - 5;
  const texts = Array.from({ length: o.texts }, () =>
    String.fromCodePoint(...Array.from({ length: int(Math.min(32, o.length - 2), o.length - 2) }, () => FIRST_CJK + int(0, alphabet - 1))),
  );
  return {
    shape: {
      vocab: o.vocab, dim: o.dim, layers: o.layers, heads: o.heads, headSize: o.headSize, types: o.types, ffnMultiplier: 4,
      dropout: 0.1, attentionDropout: 0.1, batch: o.batch, length: o.length, head: o.head,
    },
    training: trainingDefaults(), seed: o.seed, padId: 0, warmup: o.warmup, steps, repeats: o.repeats, threads: o.threads,
    predictBatchSize: o.predictBatch, threshold: o.threshold, batches, texts,
  };
}
