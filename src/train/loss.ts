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

/** log(1 + Σ e^x) over the last axis, with the pieces its gradient needs: e^(x − m) and their sum plus e^−m. */
function lseParts(x: tf.Tensor): { e: tf.Tensor; total: tf.Tensor; value: tf.Tensor } {
  const m = tf.maximum(x.max(-1, true), 0);
  const e = tf.exp(x.sub(m));
  const total = e.sum(-1, true).add(tf.exp(m.neg()));
  return { e, total, value: tf.log(total).add(m) };
}

/**
 * logits, targets [B, H, L, L] (targets 0/1) → scalar mean over B·H of the per-(sample, type) loss.
 * The gradient is written out: ∂/∂s = (e^s / (1 + Σ_neg e^s) on negatives − e^−s / (1 + Σ_pos e^−s) on positives)
 * · dy / (B·H), two scaled copies of exponentials the forward pass already has; autodiff through concat, where
 * and logSumExp took about twice as many [B, H, L, L] passes.
 */
export function multilabelCrossEntropy(logits: tf.Tensor4D, targets: tf.Tensor4D): tf.Scalar {
  const [B, H, L] = logits.shape;
  // targets enter by closure, not as an input: as an input they would need a gradient, a [B, H, L, L] zeros.
  const op = tf.customGrad((logitsIn, save) => {
    const s = (logitsIn as tf.Tensor).reshape([B, H, L * L]);
    const y = targets.reshape([B, H, L * L]);
    // Negatives: gold cells pushed to MASK_BIAS so they drop out; masked cells are already there.
    const negative = lseParts(s.add(y.mul(MASK_BIAS)));
    // Positives: −s on gold cells, MASK_BIAS elsewhere (a where, not an add: −s on a masked cell is +1e12).
    const positive = lseParts(tf.where(y.cast('bool'), s.neg(), tf.fill(s.shape, MASK_BIAS)));
    (save as tf.GradSaveFunc)([negative.e, negative.total, positive.e, positive.total]);
    return {
      value: negative.value.add(positive.value).mean() as tf.Scalar,
      gradFunc: (dy: tf.Scalar, [eNeg, totalNeg, ePos, totalPos]: tf.Tensor[]) => {
        const scale = dy.div(B * H);
        return eNeg.mul(scale.div(totalNeg)).sub(ePos.mul(scale.div(totalPos))).reshape([B, H, L, L]);
      },
    };
  });
  return op(logits);
}
