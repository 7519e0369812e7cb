/**
 * AdamW (Loshchilov & Hutter): Adam moments with bias correction, and weight decay applied to the weights directly
 * rather than through the gradient. LayerNorm gains and biases are not decayed. Written out here (rather than
 * tf.train.adam) so that its state is plain named tensors that checkpoints can save and restore.
 */
import * as tf from '@tensorflow/tfjs';

export interface AdamWOptions {
  beta1: number;
  beta2: number;
  epsilon: number;
  weightDecay: number;
}

export interface AdamWState {
  step: number;
  m: Map<string, tf.Variable>;
  v: Map<string, tf.Variable>;
  /** Exponential moving average of the parameters (training.ema > 0), which evaluation and the saved model use. */
  average: Map<string, tf.Variable> | null;
}

export function createAdamWState(params: Map<string, tf.Variable>, withAverage = false): AdamWState {
  // tidy frees each initial zeros tensor; the variable keeps the data.
  const zeros = () => new Map([...params].map(([name, p]) => [name, tf.tidy(() => tf.variable(tf.zeros(p.shape), false))] as const));
  const average = withAverage ? new Map([...params].map(([name, p]) => [name, tf.tidy(() => tf.variable(p.clone(), false))] as const)) : null;
  return { step: 0, m: zeros(), v: zeros(), average };
}

export function disposeAdamWState(state: AdamWState): void {
  for (const t of [...state.m.values(), ...state.v.values(), ...(state.average?.values() ?? [])]) t.dispose();
}

/**
 * average ← d·average + (1 − d)·p after step t, with d = min(decay, (1 + t) / (10 + t)) so that the early average is
 * not dominated by the random initialisation (TensorFlow's ExponentialMovingAverage with num_updates).
 */
export function updateAverage(params: Map<string, tf.Variable>, average: Map<string, tf.Variable>, decay: number, step: number): void {
  const d = Math.min(decay, (1 + step) / (10 + step));
  tf.tidy(() => {
    for (const [name, p] of params) {
      const a = average.get(name)!;
      a.assign(a.mul(d).add(p.mul(1 - d)));
    }
  });
}

/** Run `fn` with the averaged values in the parameters, then put the trained values back. */
export function withAverage<T>(params: Map<string, tf.Variable>, average: Map<string, tf.Variable>, fn: () => T): T {
  const trained = new Map([...params].map(([name, p]) => [name, p.clone()] as const));
  try {
    for (const [name, p] of params) p.assign(average.get(name)!);
    return fn();
  } finally {
    for (const [name, p] of params) p.assign(trained.get(name)!);
    tf.dispose([...trained.values()]);
  }
}

function decays(name: string): boolean {
  // `LayerNorm.weight` is how Hugging Face checkpoints name a LayerNorm gain.
  return !(name.endsWith('.bias') || name.endsWith('.gamma') || name.endsWith('.beta') || name.endsWith('LayerNorm.weight'));
}

/** Global L2 norm of all gradients. */
export function globalNorm(grads: tf.Tensor[]): tf.Scalar {
  return tf.tidy(() => tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g))))) as tf.Scalar);
}

/**
 * One update. Gradients are scaled by min(1, clipNorm / ‖g‖) first when clipNorm > 0. Returns ‖g‖ before clipping;
 * when it is not finite, nothing is updated. `lrScale(name)` multiplies `lr` (decay included) for one parameter,
 * e.g. a pretrained encoder fine-tuned more gently than a fresh head.
 */
export function adamWStep(
  params: Map<string, tf.Variable>,
  grads: Map<string, tf.Tensor>,
  state: AdamWState,
  lr: number,
  clipNorm: number,
  opts: AdamWOptions,
  lrScale: (name: string) => number = () => 1,
): number {
  const { beta1, beta2, epsilon, weightDecay } = opts;
  const norm = globalNorm([...grads.values()]);
  const gradNorm = norm.dataSync()[0];
  norm.dispose();
  // A non-finite gradient would poison the moments for good: leave everything as it was and let the caller count it.
  if (!Number.isFinite(gradNorm)) return gradNorm;
  state.step += 1;
  const t = state.step;
  const scale = clipNorm > 0 && gradNorm > clipNorm ? clipNorm / gradNorm : 1;
  // m̂ / (√v̂ + ε) = m · (√c₂ / c₁) / (√v + ε√c₂): the bias corrections become one step size and one ε, and the
  // clip joins the moments' factors, so a parameter takes 13 ops instead of 18 (docs/performance.md).
  const correction1 = 1 - Math.pow(beta1, t);
  const correction2 = 1 - Math.pow(beta2, t);
  const epsilonHat = epsilon * Math.sqrt(correction2);
  tf.tidy(() => {
    for (const [name, p] of params) {
      const g = grads.get(name);
      if (!g) continue;
      const m = state.m.get(name)!;
      const v = state.v.get(name)!;
      m.assign(m.mul(beta1).add(g.mul((1 - beta1) * scale)));
      v.assign(v.mul(beta2).add(g.square().mul((1 - beta2) * scale * scale)));
      const rate = lr * lrScale(name);
      const update = m.div(v.sqrt().add(epsilonHat)).mul((rate * Math.sqrt(correction2)) / correction1);
      p.assign((decays(name) && weightDecay > 0 ? p.mul(1 - rate * weightDecay) : p).sub(update));
    }
  });
  return gradNorm;
}
