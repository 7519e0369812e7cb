/**
 * The training objective of one batch, with or without a consistency regulariser:
 *
 *   none:  CE(s(x))
 *   rdrop: (CE(s¹) + CE(s²)) / 2 + λ · D(s¹, s²)       s¹, s² two dropout samples (one concatenated batch)
 *   vat:   CE(s(x)) + λ · D(sg(s(x)), s(x + r_adv))    r_adv = ε · g/‖g‖, g = ∇_r D(sg(s(x)), s(x + r)), r = ξ · d/‖d‖
 *
 * D is a divergence of src/train/divergence.ts; sg is stop-gradient. The parts are returned kept (outside any tidy)
 * so that the loop can report the regulariser's share; the caller disposes them.
 */
import * as tf from '@tensorflow/tfjs';
import type { RegularizerConfig } from '../config/schema.js';
import { tokenFeatures, type BatchTensors } from '../data/encode.js';
import { embed, forward, forwardFromEmbeddings, spanValidity, type Model } from '../model/globalpointer.js';
import type { Rng } from '../rng.js';
import { divergence, type DivergenceOptions } from './divergence.js';
import { multilabelCrossEntropy } from './loss.js';

export interface LossParts {
  total: tf.Scalar;
  ce: tf.Scalar;
  /** D before weighting by λ; null when no regulariser ran this step. */
  divergence: tf.Scalar | null;
}

/** Identity forward, zero gradient backward. */
export const stopGradient = tf.customGrad((x) => ({
  value: (x as tf.Tensor).clone(),
  gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
})) as <T extends tf.Tensor>(x: T) => T;

export function divergenceOptions(config: RegularizerConfig, labels: string[]): DivergenceOptions {
  const weights = config.typeWeights;
  return { temperature: config.temperature, typeWeights: weights ? labels.map((l) => weights[l] ?? 1) : undefined };
}

/** Unit-norm per sample over [L, D], zero on padding. x, mask3 [B, L, 1] → [B, L, D]. */
function normalizePerSample(x: tf.Tensor3D, mask3: tf.Tensor): tf.Tensor3D {
  const masked = x.mul(mask3);
  const norm = tf.sqrt(masked.square().sum([1, 2], true)).add(1e-12); // [B, 1, 1]
  return masked.div(norm) as tf.Tensor3D;
}

/**
 * The adversarial direction of VAT, found by K power iterations from a random start. Computed outside the
 * parameters' gradient tape: it only steers where the perturbation points.
 */
export function vatPerturbation(
  model: Model,
  input: BatchTensors,
  target: tf.Tensor4D,
  config: RegularizerConfig,
  opts: DivergenceOptions,
  rng: Rng,
): tf.Tensor3D {
  return tf.tidy(() => {
    const x = embed(model, input.ids, input.mask, input); // [B, L, D]
    const mask3 = input.mask.expandDims(2); // [B, L, 1]
    const valid = spanValidity(input.mask);
    let d = normalizePerSample(tf.randomNormal(x.shape, 0, 1, 'float32', rng.seed()) as tf.Tensor3D, mask3);
    for (let k = 0; k < config.vat.iterations; k++) {
      const probe = (r: tf.Tensor) => {
        const s = forwardFromEmbeddings(model, x.add(r) as tf.Tensor3D, input.mask, { training: true, rng });
        return divergence(config.divergence, target, s, valid, opts);
      };
      d = normalizePerSample(tf.grad(probe)(d.mul(config.vat.xi)) as tf.Tensor3D, mask3);
    }
    return d.mul(config.vat.epsilon) as tf.Tensor3D;
  });
}

/** The batch's loss under `config`; call inside tf.variableGrads. */
export function batchLoss(
  model: Model,
  input: BatchTensors,
  config: RegularizerConfig,
  lambda: number,
  opts: DivergenceOptions,
  rng: Rng,
  vatDirection: tf.Tensor3D | null,
): LossParts {
  const targets = input.targets!;
  if (config.type === 'none' || lambda === 0) {
    const ce = multilabelCrossEntropy(forward(model, input.ids, input.mask, { ...tokenFeatures(input), training: true, rng }), targets);
    return { total: ce, ce: tf.keep(ce.clone()), divergence: null };
  }
  const valid = spanValidity(input.mask);
  if (config.type === 'rdrop') {
    const B = input.ids.shape[0];
    const twice = <T extends tf.Tensor>(t: T) => tf.concat([t, t]) as T;
    const wordFeatures = input.wordFeatures && twice(input.wordFeatures);
    const lexicon = input.lexicon && twice(input.lexicon);
    const logits = forward(model, twice(input.ids), twice(input.mask), { training: true, rng, wordFeatures, lexicon }); // [2B, H, L, L]
    const [s1, s2] = tf.split(logits, [B, B]) as [tf.Tensor4D, tf.Tensor4D];
    const ce = multilabelCrossEntropy(s1, targets).add(multilabelCrossEntropy(s2, targets)).div(2) as tf.Scalar;
    const d = divergence(config.divergence, s1, s2, valid, opts);
    return { total: ce.add(d.mul(lambda)) as tf.Scalar, ce: tf.keep(ce), divergence: tf.keep(d) };
  }
  // VAT
  const clean = forward(model, input.ids, input.mask, { ...tokenFeatures(input), training: true, rng });
  const ce = multilabelCrossEntropy(clean, targets);
  const perturbed = forward(model, input.ids, input.mask, { ...tokenFeatures(input), training: true, rng, perturbation: vatDirection! });
  const d = divergence(config.divergence, stopGradient(clean), perturbed, valid, opts);
  return { total: ce.add(d.mul(lambda)) as tf.Scalar, ce: tf.keep(ce), divergence: tf.keep(d) };
}
