/**
 * Divergences between two sets of span logits s, t [B, H, L, L] for R-Drop and VAT, over valid cells only.
 *
 * sigmoid-kl (the seed's proposal): D(s, t) = Σᵢ (σ(sᵢ) − σ(tᵢ))(sᵢ − tᵢ). Each term is the symmetric KL between the
 *   binary distributions [σ(sᵢ), 1 − σ(sᵢ)] and [σ(tᵢ), 1 − σ(tᵢ)], so D treats every cell as its own yes/no
 *   decision, exactly as the multilabel loss and the threshold-at-0 decoding do.
 * softmax-kl (the ablation): the symmetric KL of softmax over each (sample, type)'s valid cells, which by the same
 *   identity is Σᵢ (pᵢ − qᵢ)(sᵢ − tᵢ). It treats the cells as competing for one unit of mass, which GlobalPointer's
 *   outputs are not.
 *
 * Both are summed over cells and types and averaged over samples. Masked cells are replaced by 0 in both inputs
 * before anything is computed, so they contribute exactly 0 and no NaN, whatever they hold (−1e12, −∞).
 */
import * as tf from '@tensorflow/tfjs';

export type DivergenceName = 'sigmoid-kl' | 'softmax-kl';

export interface DivergenceOptions {
  /** Compare σ(s/τ) and σ(t/τ) (and the softmax of s/τ): τ > 1 softens, τ < 1 sharpens. */
  temperature?: number;
  /** Weight per entity type (length H): rare types can be made to count more. */
  typeWeights?: number[];
}

/** valid [B, 1 or H, L, L] (0/1) broadcast to the logits' shape, as booleans. */
function validCells(valid: tf.Tensor, shape: number[]): tf.Tensor {
  return tf.broadcastTo(valid, shape).cast('bool');
}

function perTypeSum(cells: tf.Tensor, opts: DivergenceOptions): tf.Tensor {
  const perType = cells.sum([2, 3]); // [B, H]
  return opts.typeWeights ? perType.mul(tf.tensor1d(opts.typeWeights)) : perType;
}

/** Σᵢ (σ(sᵢ/τ) − σ(tᵢ/τ))(sᵢ − tᵢ)/τ over valid cells, mean over the batch. */
export function sigmoidKL(s: tf.Tensor4D, t: tf.Tensor4D, valid: tf.Tensor, opts: DivergenceOptions = {}): tf.Scalar {
  return tf.tidy(() => {
    const tau = opts.temperature ?? 1;
    const ok = validCells(valid, s.shape);
    const zero = tf.zerosLike(s);
    const sv = tf.where(ok, s, zero).div(tau);
    const tv = tf.where(ok, t, zero).div(tau);
    const cells = tf.sigmoid(sv).sub(tf.sigmoid(tv)).mul(sv.sub(tv)); // [B, H, L, L]
    return perTypeSum(cells, opts).sum(1).mean() as tf.Scalar;
  });
}

/** Symmetric KL of softmax over each (sample, type)'s valid cells: Σᵢ (pᵢ − qᵢ)(sᵢ − tᵢ)/τ, mean over the batch. */
export function softmaxKL(s: tf.Tensor4D, t: tf.Tensor4D, valid: tf.Tensor, opts: DivergenceOptions = {}): tf.Scalar {
  return tf.tidy(() => {
    const tau = opts.temperature ?? 1;
    const [B, H, L] = s.shape;
    const ok = validCells(valid, s.shape);
    const zero = tf.zerosLike(s);
    const sv = tf.where(ok, s, zero).div(tau);
    const tv = tf.where(ok, t, zero).div(tau);
    const floor = tf.fill(s.shape, -1e12);
    const softmax = (x: tf.Tensor) => tf.softmax(tf.where(ok, x, floor).reshape([B, H, L * L])).reshape([B, H, L, L]);
    const cells = softmax(sv).sub(softmax(tv)).mul(sv.sub(tv)); // masked: (0 − 0) · 0
    return perTypeSum(cells, opts).sum(1).mean() as tf.Scalar;
  });
}

export function divergence(name: DivergenceName, s: tf.Tensor4D, t: tf.Tensor4D, valid: tf.Tensor, opts: DivergenceOptions = {}): tf.Scalar {
  return name === 'sigmoid-kl' ? sigmoidKL(s, t, valid, opts) : softmaxKL(s, t, valid, opts);
}
