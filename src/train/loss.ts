/**
 * The multilabel categorical cross-entropy of GlobalPointer, per (sample, type):
 *
 *   loss = log(1 + Σ_{neg} e^{s}) + log(1 + Σ_{pos} e^{−s})
 *
 * where pos are the gold cells and neg every other valid cell. It pushes positives above 0 and negatives below 0,
 * which is why decoding thresholds at 0. Masked cells carry MASK_BIAS (−1e12) in s, so e^{s} is exactly 0 for them in
 * the negative sum; in the positive sum they are excluded explicitly, because −s would be +1e12 there.
 */
import * as tf from '@tensorflow/tfjs';
import { MASK_BIAS } from '../model/globalpointer.js';

/** logsumexp over the last axis with an implicit extra 0 term: log(1 + Σ e^{x}). */
export function logOnePlusSumExp(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const padded = tf.concat([x, tf.zeros([...x.shape.slice(0, -1), 1])], -1);
    return tf.logSumExp(padded, -1);
  });
}

/**
 * logits, targets [B, H, L, L] (targets 0/1) → scalar mean over B·H of the per-(sample, type) loss.
 */
export function multilabelCrossEntropy(logits: tf.Tensor4D, targets: tf.Tensor4D): tf.Scalar {
  return tf.tidy(() => {
    const [B, H, L] = logits.shape;
    const s = logits.reshape([B, H, L * L]);
    const y = targets.reshape([B, H, L * L]);
    // Negatives: gold cells pushed to MASK_BIAS so they drop out; masked cells are already there.
    const negative = s.add(y.mul(MASK_BIAS));
    // Positives: −s on gold cells, MASK_BIAS elsewhere (a where, not an add: −s on a masked cell is +1e12).
    const positive = tf.where(y.cast('bool'), s.neg(), tf.fill(s.shape, MASK_BIAS));
    return logOnePlusSumExp(negative).add(logOnePlusSumExp(positive)).mean() as tf.Scalar;
  });
}
