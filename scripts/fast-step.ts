/**
 * Candidate rewrites of the training step (issue #5), measured here before any of them goes into src/. The model's
 * parameters, shapes and maths are src/model/globalpointer.ts's, src/train/loss.ts's and src/train/optimizer.ts's;
 * only how the ops are issued changes. Each rewrite is a feature that can be switched on alone, so bench.ts and
 * profile-step.ts can credit each one:
 *
 *   cube     src's GELU with x·x·x for x.pow(3): libtensorflow's Pow is ≈ 10× slower than a multiply, and Pow's
 *            gradient calls Pow again
 *   gelu     GELU as x·σ(2u) (= x·½(1 + tanh u), exactly) with a hand-written gradient: fewer [B, L, 4D] passes still
 *   dropout  dropout masks from libtensorflow's StatelessRandomUniform on the tensorflow backend; tf.randomUniform
 *            fills its buffer in JavaScript, one number at a time, about twice as slow (other backends keep tf.dropout)
 *   ln       LayerNorm with a hand-written gradient (three reductions instead of autodiff through tf.moments)
 *   attn     RoPE applied once to q and k stacked, with 1/√d folded into q's rotary tables
 *   dense    dense layers as tf.fused.matMul with the bias, and a hand-written gradient that on wasm transposes
 *            explicitly: its BatchMatMul with transposeA/transposeB is 20–50× slower than without
 *   mlce     src's multilabelCrossEntropy(logits, targets) as one custom-gradient op, same signature: the backward
 *            pass is two scaled copies of saved exponentials instead of autodiff through concat, where and logSumExp
 *   loss     the span logits and the multilabel CE as one custom-gradient op: no dense [B, H, L, L] targets (gold
 *            cells go in as indices), no second masked copy for the positives (they are gathered), the backward
 *            pass two scaled copies and two matMuls
 *   adam     AdamW with the bias corrections folded into a step size and ε (13 ops per parameter instead of 18)
 *   tidy     one tf.tidy per encoder layer: without it every intermediate of the forward pass lives until the
 *            forward's own tidy ends, which sets peak memory (tensors the gradient needs are kept by the tape anyway)
 *
 * `--backends tensorflow:fast` switches every feature on; `tensorflow:gelu+loss` only those named. Where two
 * rewrite the same thing, the later in the list wins when both are on: gelu over cube, loss over mlce.
 */
import * as tf from '@tensorflow/tfjs';
import { batchTensors, disposeBatch, encodeExamples, makeBatches, type BatchTensors, type TokenizerLike, type Window } from '../src/data/encode.js';
import { decodeSpans, mergeWindowEntitiesByCentre, tokenSpansToEntities, type WindowPrediction } from '../src/eval/decode.js';
import type { PredictOptions } from '../src/eval/evaluate.js';
import type { Entity } from '../src/types.js';
import { embeddingLookup, MASK_BIAS, spanMaskBias, type Model } from '../src/model/globalpointer.js';
import { multilabelCrossEntropy } from '../src/train/loss.js';
import { adamWStep, createAdamWState, disposeAdamWState, globalNorm, type AdamWState } from '../src/train/optimizer.js';
import type { Rng } from '../src/rng.js';
import type { BenchData, StepParts } from './bench-step.js';

const FEATURES = ['cube', 'gelu', 'dropout', 'ln', 'attn', 'dense', 'mlce', 'loss', 'adam', 'tidy'] as const;
type Feature = (typeof FEATURES)[number];
type Features = Record<Feature, boolean>;

function parseFeatures(impl: string): Features {
  const on = impl === 'fast' ? [...FEATURES] : impl.split('+');
  for (const f of on) if (!(FEATURES as readonly string[]).includes(f)) throw new Error(`unknown feature "${f}" (known: fast, ${FEATURES.join(', ')})`);
  return Object.fromEntries(FEATURES.map((f) => [f, on.includes(f)])) as Features;
}

// ---------------------------------------------------------------------------------------------- dropout

interface OpAttr {
  name: string;
  type: number;
  value: number;
}

/** The part of tfjs-node's backend used here: run any libtensorflow op by name. */
interface NativeBackend {
  binding: { TF_ATTR_TYPE: number; TF_FLOAT: number; TF_INT32: number };
  executeSingleOutput(name: string, attrs: OpAttr[], inputs: tf.Tensor[]): tf.Tensor;
}

function nativeBackend(): NativeBackend | null {
  if (tf.getBackend() !== 'tensorflow') return null;
  const backend: unknown = tf.backend();
  return typeof backend === 'object' && backend !== null && 'executeSingleOutput' in backend && 'binding' in backend ? (backend as NativeBackend) : null;
}

/** Uniform [0, 1) numbers from libtensorflow, a pure function of (shape, seed): reproducible like tf.randomUniform. */
function nativeUniform(native: NativeBackend, shape: number[], seed: number): tf.Tensor {
  const { TF_ATTR_TYPE, TF_FLOAT, TF_INT32 } = native.binding;
  const attrs = [
    { name: 'dtype', type: TF_ATTR_TYPE, value: TF_FLOAT },
    { name: 'T', type: TF_ATTR_TYPE, value: TF_INT32 },
    { name: 'Tseed', type: TF_ATTR_TYPE, value: TF_INT32 },
  ];
  return tf.tidy(() => native.executeSingleOutput('StatelessRandomUniform', attrs, [tf.tensor1d(shape, 'int32'), tf.tensor1d([seed, 0], 'int32')]));
}

interface Ctx {
  f: Features;
  training: boolean;
  rng?: Rng;
  native: NativeBackend | null;
}

function dropout(x: tf.Tensor, rate: number, c: Ctx): tf.Tensor {
  if (!c.training || rate === 0) return x;
  if (!c.f.dropout || !c.native) return tf.dropout(x, rate, undefined, c.rng!.seed());
  const keep = 1 - rate;
  // The same mask as tf.dropout's: ⌊u + keep⌋ / keep, 1/keep with probability keep, else 0.
  const mask = tf.tidy(() => nativeUniform(c.native!, x.shape, c.rng!.seed()).add(keep).floor().div(keep));
  return x.mul(mask);
}

// ---------------------------------------------------------------------------------------------- layers

/**
 * x W + b for x [N, in] with the weight gradients written out: on wasm, tfjs's BatchMatMul with transposeA or
 * transposeB runs a generic loop 20–50× slower than its XNNPACK path, and matMul's gradient uses both flags, so
 * there the operand is transposed explicitly first; libtensorflow takes the flags at no cost.
 */
const denseOp = tf.customGrad((xIn, kernelIn, biasIn, saveIn) => {
  const x = xIn as tf.Tensor2D;
  const kernel = kernelIn as tf.Tensor2D;
  (saveIn as tf.GradSaveFunc)([x, kernel]);
  return {
    value: tf.fused.matMul({ a: x, b: kernel, bias: biasIn as tf.Tensor }),
    gradFunc: (dy: tf.Tensor, [x0, k0]: tf.Tensor[]) => {
      const explicit = tf.getBackend() === 'wasm';
      const dx = explicit ? tf.matMul(dy as tf.Tensor2D, k0.transpose()) : tf.matMul(dy as tf.Tensor2D, k0 as tf.Tensor2D, false, true);
      const dk = explicit ? tf.matMul(x0.transpose(), dy as tf.Tensor2D) : tf.matMul(x0 as tf.Tensor2D, dy as tf.Tensor2D, true, false);
      return [dx, dk, dy.sum(0)];
    },
  };
});

function dense(x: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor, c: Ctx): tf.Tensor {
  const inDim = x.shape[x.shape.length - 1];
  const outShape = [...x.shape.slice(0, -1), kernel.shape[1] as number];
  const flat = x.reshape([-1, inDim]) as tf.Tensor2D;
  return (c.f.dense ? denseOp(flat, kernel, bias) : tf.matMul(flat, kernel as tf.Tensor2D).add(bias)).reshape(outShape);
}

const LN_EPS = 1e-12;

/** (x − mean) / √(var + ε) · γ + β over the last axis, as src's layerNorm, with the textbook gradient. */
const fusedLayerNorm = tf.customGrad((xIn, gammaIn, betaIn, saveIn) => {
  const x = xIn as tf.Tensor;
  const gamma = gammaIn as tf.Tensor1D;
  const save = saveIn as tf.GradSaveFunc;
  const D = x.shape[x.shape.length - 1];
  const centred = x.sub(x.mean(-1, true));
  const rstd = tf.rsqrt(centred.square().mean(-1, true).add(LN_EPS));
  const xhat = centred.mul(rstd);
  save([xhat, rstd, gamma]);
  return {
    value: xhat.mul(gamma).add(betaIn as tf.Tensor),
    gradFunc: (dy: tf.Tensor, [xh, r, g]: tf.Tensor[]) => {
      const dxhat = dy.mul(g);
      const dx = dxhat.sub(dxhat.mean(-1, true)).sub(xh.mul(dxhat.mul(xh).mean(-1, true))).mul(r);
      const rows = dy.reshape([-1, D]);
      return [dx, rows.mul(xh.reshape([-1, D])).sum(0), rows.sum(0)];
    },
  };
});

function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, c: Ctx): tf.Tensor {
  if (c.f.ln) return fusedLayerNorm(x, gamma, beta);
  const { mean, variance } = tf.moments(x, -1, true);
  return x.sub(mean).mul(tf.rsqrt(variance.add(LN_EPS))).mul(gamma).add(beta);
}

const GELU_A = 2 * Math.sqrt(2 / Math.PI);
const GELU_B = GELU_A * 0.044715;

/** ½x(1 + tanh(√(2/π)(x + 0.044715x³))) = x·σ(a·x + b·x³) with a = 2√(2/π), b = 0.044715·a. */
const fusedGelu = tf.customGrad((xIn, saveIn) => {
  const x = xIn as tf.Tensor;
  const square = x.square();
  const s = tf.sigmoid(square.mul(GELU_B).add(GELU_A).mul(x));
  (saveIn as tf.GradSaveFunc)([x, square, s]);
  return {
    value: x.mul(s),
    // d/dx x·σ(u) = σ(u) + x·σ(u)(1 − σ(u))·u',  u' = a + 3b·x²
    gradFunc: (dy: tf.Tensor, [x0, sq, sg]: tf.Tensor[]) => sg.sub(sg.square()).mul(sq.mul(3 * GELU_B).add(GELU_A)).mul(x0).add(sg).mul(dy),
  };
});

function gelu(x: tf.Tensor, c: Ctx): tf.Tensor {
  if (c.f.gelu) return fusedGelu(x);
  const inner = x.add((c.f.cube ? x.mul(x).mul(x) : x.pow(3)).mul(0.044715)).mul(Math.sqrt(2 / Math.PI));
  return x.mul(0.5).mul(tf.tanh(inner).add(1));
}

/** src's rotary angles: position p, pair k of a width-d vector turns by p · 10000^(−2k/d); layout [a, a]. */
function ropeAngles(length: number, d: number): Float32Array {
  const half = d / 2;
  const angles = new Float32Array(length * d);
  for (let p = 0; p < length; p++) {
    for (let k = 0; k < half; k++) {
      const a = p * Math.pow(10000, (-2 * k) / d);
      angles[p * d + k] = a;
      angles[p * d + k + half] = a;
    }
  }
  return angles;
}

/**
 * Tables to rotate q and k stacked as [2, N, L, d]: cos and sin [2, 1, L, d], q's scaled by `qScale`, so that one
 * rotation yields q/√d and k.
 */
function stackedRope(length: number, d: number, qScale: number): { cos: tf.Tensor; sin: tf.Tensor } {
  const angles = ropeAngles(length, d);
  const cos = new Float32Array(2 * length * d);
  const sin = new Float32Array(2 * length * d);
  for (let i = 0; i < angles.length; i++) {
    cos[i] = Math.cos(angles[i]) * qScale;
    sin[i] = Math.sin(angles[i]) * qScale;
    cos[angles.length + i] = Math.cos(angles[i]);
    sin[angles.length + i] = Math.sin(angles[i]);
  }
  return { cos: tf.tensor(cos, [2, 1, length, d]), sin: tf.tensor(sin, [2, 1, length, d]) };
}

function plainRope(length: number, d: number): { cos: tf.Tensor; sin: tf.Tensor } {
  const angles = ropeAngles(length, d);
  return { cos: tf.tensor(angles.map(Math.cos), [length, d]), sin: tf.tensor(angles.map(Math.sin), [length, d]) };
}

function rotate(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor): tf.Tensor {
  const [x1, x2] = tf.split(x, 2, -1);
  return x.mul(cos).add(tf.concat([x2.neg(), x1], -1).mul(sin));
}

/** q/√d and k after RoPE, [B, n, L, d] each, from q and k stacked as [2, B, n, L, d]. */
function ropedQK(stacked: tf.Tensor, c: Ctx): [tf.Tensor, tf.Tensor] {
  const [, B, n, L, d] = stacked.shape;
  if (c.f.attn) {
    const { cos, sin } = stackedRope(L, d, 1 / Math.sqrt(d));
    // Rank 4 for the rotation: wasm's slice (inside tf.split) on rank 5 takes a generic path ≈ 100× slower.
    const [q, k] = tf.unstack(rotate(stacked.reshape([2, B * n, L, d]), cos, sin)).map((t) => t.reshape([B, n, L, d]));
    return [q, k];
  }
  const { cos, sin } = plainRope(L, d);
  const [q, k] = tf.unstack(stacked).map((t) => rotate(t, cos, sin));
  return [q.mul(1 / Math.sqrt(d)), k];
}

function selfAttention(model: Model, layer: number, x: tf.Tensor, keyBias: tf.Tensor, c: Ctx): tf.Tensor {
  const p = (n: string) => model.params.get(`encoder.${layer}.attn.${n}`)!;
  const [B, L, D] = x.shape;
  const heads = model.spec.encoder.heads;
  const dh = D / heads;
  const qkv = dense(x, p('qkv.kernel'), p('qkv.bias'), c); // [B, L, 3D]: q | k | v, each heads × dh
  const [qk, v0] = tf.split(qkv, [2 * D, D], -1);
  const [q, k] = ropedQK(qk.reshape([B, L, 2, heads, dh]).transpose([2, 0, 3, 1, 4]), c);
  const v = v0.reshape([B, L, heads, dh]).transpose([0, 2, 1, 3]);
  const scores = tf.matMul(q, k, false, true).add(keyBias); // q is already divided by √dh
  const { encoder } = model.spec;
  const probs = dropout(tf.softmax(scores), encoder.type === 'transformer' ? encoder.attentionDropout : 0, c);
  const context = tf.matMul(probs, v).transpose([0, 2, 1, 3]).reshape([B, L, D]);
  return dense(context, p('out.kernel'), p('out.bias'), c);
}

function encode(model: Model, ids: tf.Tensor2D, mask: tf.Tensor2D, c: Ctx): tf.Tensor {
  const { spec, params } = model;
  const p = (n: string) => params.get(n)!;
  const [B, L] = ids.shape;
  const keyBias = mask.sub(1).mul(1e9).reshape([B, 1, 1, L]);
  let h = dropout(embeddingLookup(p('embeddings.word') as tf.Tensor2D, ids), spec.dropout, c);
  for (let l = 0; l < spec.encoder.layers; l++) {
    const layer = (x: tf.Tensor) => {
      const a = selfAttention(model, l, layerNorm(x, p(`encoder.${l}.ln1.gamma`), p(`encoder.${l}.ln1.beta`), c), keyBias, c);
      const x1 = x.add(dropout(a, spec.dropout, c));
      const hidden = dropout(gelu(dense(layerNorm(x1, p(`encoder.${l}.ln2.gamma`), p(`encoder.${l}.ln2.beta`), c), p(`encoder.${l}.ffn.in.kernel`), p(`encoder.${l}.ffn.in.bias`), c), c), spec.dropout, c);
      return x1.add(dropout(dense(hidden, p(`encoder.${l}.ffn.out.kernel`), p(`encoder.${l}.ffn.out.bias`), c), spec.dropout, c));
    };
    const input = h;
    h = c.f.tidy ? tf.tidy(() => layer(input)) : layer(input);
  }
  return layerNorm(h, p('encoder.ln.gamma'), p('encoder.ln.beta'), c);
}

/** The GlobalPointer head's q/√d and k after RoPE, [B, H, L, d] each. */
function headQK(model: Model, h: tf.Tensor, c: Ctx): [tf.Tensor, tf.Tensor] {
  const [B, L] = h.shape;
  const { numTypes: H, head } = model.spec;
  const qk = dense(h, model.params.get('head.qk.kernel')!, model.params.get('head.qk.bias')!, c); // [B, L, H·2d]
  return ropedQK(qk.reshape([B, L, H, 2, head.size]).transpose([3, 0, 2, 1, 4]), c);
}

// ---------------------------------------------------------------------------------------------- the loss

/** Gold cells of a batch as indices: the dense targets' ones, without building them. */
interface Gold {
  /** [G, 4] (b, h, i, j), each cell once. */
  cells: tf.Tensor2D;
  /** [B·H, P]: for each (sample, type), positions in the cell list, padded with G (a zero slot). */
  slots: tf.Tensor2D;
  /** [B·H, P]: true where `slots` holds a real cell. */
  valid: tf.Tensor2D;
  /** [G]: where each cell sits in `slots`, flattened. */
  back: tf.Tensor1D;
  count: number;
}

function goldOf(batch: Window[], H: number): Gold {
  const B = batch.length;
  const groups: number[][] = Array.from({ length: B * H }, () => []);
  const cells: number[] = [];
  batch.forEach((w, b) => {
    const seen = new Set<number>();
    for (const [h, i, j] of w.targets) {
      const key = (h * 4096 + i) * 4096 + j;
      if (seen.has(key)) continue;
      seen.add(key);
      groups[b * H + h].push(cells.length / 4);
      cells.push(b, h, i, j);
    }
  });
  const G = cells.length / 4;
  const P = Math.max(1, ...groups.map((g) => g.length));
  const slots = new Int32Array(B * H * P).fill(G);
  const valid = new Uint8Array(B * H * P);
  const back = new Int32Array(G);
  groups.forEach((g, r) =>
    g.forEach((cell, s) => {
      slots[r * P + s] = cell;
      valid[r * P + s] = 1;
      back[cell] = r * P + s;
    }),
  );
  return {
    cells: tf.tensor2d(cells, [G, 4], 'int32'),
    slots: tf.tensor2d(slots, [B * H, P], 'int32'),
    valid: tf.tensor2d(valid, [B * H, P], 'bool'),
    back: tf.tensor1d(back, 'int32'),
    count: G,
  };
}

/** log(1 + Σ e^x) over the last axis, stable: m = max(0, max x). */
function logOnePlusSumExp(x: tf.Tensor): tf.Tensor {
  const m = tf.maximum(x.max(-1, true), 0);
  return tf.log(tf.exp(x.sub(m)).sum(-1, true).add(tf.exp(m.neg()))).add(m);
}

/**
 * mean over (b, h) of log(1 + Σ_neg e^s) + log(1 + Σ_pos e^−s), s = q·kᵀ (q already /√d) + bias, from q and k.
 * Negatives are every valid non-gold cell: gold cells are overwritten with MASK_BIAS in one scatter. Positives
 * are gathered from s. Backward: ∂/∂s = (softmax₀ over the negatives − softmax₀ over the positives on gold cells)
 * · dy / (B·H), written in place of the gold cells with a second scatter, then two matMuls to q and k.
 */
function spanLoss(q: tf.Tensor, k: tf.Tensor, bias: tf.Tensor, gold: Gold): tf.Scalar {
  const [B, H, L] = q.shape;
  const rows = B * H;
  const op = tf.customGrad((qIn, kIn, saveIn) => {
    const s = tf.matMul(qIn as tf.Tensor4D, kIn as tf.Tensor4D, false, true); // [B, H, L, L]
    let negative = s.add(bias);
    if (gold.count > 0) negative = tf.tensorScatterUpdate(negative, gold.cells, tf.fill([gold.count], MASK_BIAS));
    const flat = negative.reshape([B, H, L * L]);
    const m = tf.maximum(flat.max(-1, true), 0); // [B, H, 1]
    const e = tf.exp(flat.sub(m));
    const total = e.sum(-1, true).add(tf.exp(m.neg())); // 1 + Σ e^s, over e^m
    const lseNeg = tf.log(total).add(m).reshape([rows]);
    // Positives: −s of each (sample, type)'s gold cells, padded with MASK_BIAS.
    const goldLogits = gold.count > 0 ? tf.gatherND(s, gold.cells) : tf.zeros([0]);
    const padded = tf.concat([goldLogits.neg(), tf.zeros([1])]);
    const x = tf.where(gold.valid, tf.gather(padded, gold.slots), tf.fill(gold.valid.shape, MASK_BIAS));
    const lsePos = logOnePlusSumExp(x).reshape([rows]);
    const softPos = tf.exp(x.sub(lsePos.reshape([rows, 1]))); // ∂lsePos/∂x, 0 on padding
    (saveIn as tf.GradSaveFunc)([qIn as tf.Tensor, kIn as tf.Tensor, e, total, softPos]);
    return {
      value: lseNeg.add(lsePos).mean() as tf.Scalar,
      gradFunc: (dy: tf.Scalar, [q0, k0, e0, total0, soft0]: tf.Tensor[]) => {
        const scale = dy.div(rows);
        let ds = e0.mul(scale.div(total0)).reshape([B, H, L, L]); // 0 on gold and masked cells
        if (gold.count > 0) ds = tf.tensorScatterUpdate(ds, gold.cells, tf.gather(soft0.reshape([-1]), gold.back).mul(scale).neg());
        return [tf.matMul(ds, k0), tf.matMul(ds, q0, true, false)];
      },
    };
  });
  return op(q, k) as tf.Scalar;
}

/**
 * src's multilabelCrossEntropy with its gradient written out: per (b, h), with softmax₀(x) = e^x / (1 + Σ e^x),
 * ∂/∂s = softmax₀ over the negatives − softmax₀ over the positives (on gold cells), times dy / (B·H).
 */
function fusedMultilabelCE(logits: tf.Tensor4D, targets: tf.Tensor4D): tf.Scalar {
  const [B, H, L] = logits.shape;
  // targets enter by closure, not as an input: as an input they would need a gradient, a [B, H, L, L] zeros.
  const op = tf.customGrad((logitsIn, saveIn) => {
    const s = (logitsIn as tf.Tensor).reshape([B, H, L * L]);
    const y = targets.reshape([B, H, L * L]);
    const [neg, pos] = [s.add(y.mul(MASK_BIAS)), tf.where(y.cast('bool'), s.neg(), tf.fill(s.shape, MASK_BIAS))].map((x) => {
      const m = tf.maximum(x.max(-1, true), 0);
      const e = tf.exp(x.sub(m));
      const total = e.sum(-1, true).add(tf.exp(m.neg()));
      return { e, total, lse: tf.log(total).add(m) };
    });
    (saveIn as tf.GradSaveFunc)([neg.e, neg.total, pos.e, pos.total]);
    return {
      value: neg.lse.add(pos.lse).mean() as tf.Scalar,
      gradFunc: (dy: tf.Scalar, [eNeg, tNeg, ePos, tPos]: tf.Tensor[]) => {
        const scale = dy.div(B * H);
        return eNeg.mul(scale.div(tNeg)).sub(ePos.mul(scale.div(tPos))).reshape([B, H, L, L]);
      },
    };
  });
  return op(logits);
}

// ---------------------------------------------------------------------------------------------- prediction

/** Masked span logits [B, H, L, L], as src's forward returns them. */
function logits(model: Model, ids: tf.Tensor2D, mask: tf.Tensor2D, c: Ctx): tf.Tensor4D {
  return tf.tidy(() => {
    const [q, k] = headQK(model, encode(model, ids, mask, c), c);
    return tf.matMul(q, k, false, true).add(spanMaskBias(mask)) as tf.Tensor4D;
  });
}

/** src's cap on logit values read back per batch (src/eval/evaluate.ts). */
const MAX_CELLS_PER_BATCH = 1 << 24;

/** src's predictEntities (src/eval/evaluate.ts) with this file's forward: the same windows, batches and decoding. */
export function fastPredictEntities(model: Model, tokenizer: TokenizerLike, labels: string[], texts: string[], opts: PredictOptions, impl: string): Entity[][] {
  const c: Ctx = { f: parseFeatures(impl), training: false, native: null };
  const { windows } = encodeExamples(texts.map((text) => ({ text, spans: [] })), tokenizer, labels, { maxLength: opts.maxLength, overlap: opts.overlap });
  const perWindow = new Map<Window, Entity[]>();
  const H = labels.length;
  const batches = makeBatches(windows, opts.batchSize).flatMap((batch) => {
    const L = Math.max(...batch.map((w) => w.ids.length));
    const fit = Math.max(1, Math.floor(MAX_CELLS_PER_BATCH / (H * L * L)));
    return Array.from({ length: Math.ceil(batch.length / fit) }, (_, i) => batch.slice(i * fit, (i + 1) * fit));
  });
  for (const batch of batches) {
    const input = batchTensors(batch, H, tokenizer.padId, false);
    const out = logits(model, input.ids, input.mask, c);
    const L = out.shape[2];
    const values = out.dataSync() as Float32Array;
    out.dispose();
    disposeBatch(input);
    batch.forEach((w, b) => {
      const spans = decodeSpans(values.subarray(b * H * L * L, (b + 1) * H * L * L), H, L, { threshold: opts.threshold, validLength: w.ids.length, flat: opts.flat });
      perWindow.set(w, tokenSpansToEntities(spans, w.offsets, texts[w.example], labels, w.base));
    });
  }
  const byText: WindowPrediction[][] = texts.map(() => []);
  for (const w of windows) {
    if (w.offsets.length === 0) continue;
    byText[w.example].push({ start: w.offsets[0][0], end: w.offsets[w.offsets.length - 1][1], entities: perWindow.get(w)! });
  }
  return byText.map((ws) => (ws.length === 0 ? [] : ws.length === 1 ? ws[0].entities : mergeWindowEntitiesByCentre(ws)));
}

// ---------------------------------------------------------------------------------------------- the step

interface FastInput {
  tensors: BatchTensors;
  gold: Gold | null;
  dispose(): void;
}

/** AdamW as src's adamWStep, with m̂/(√v̂ + ε) written as m·(√c₂/c₁)/(√v + ε√c₂) and the clip folded into g's factors. */
function foldedAdamW(model: Model, grads: tf.NamedTensorMap, state: AdamWState, lr: number, data: BenchData): number {
  const { beta1, beta2, epsilon, weightDecay, clipNorm } = data.training;
  const list = [...model.params.values()].map((v) => grads[v.name]);
  const norm = globalNorm(list);
  const gradNorm = norm.dataSync()[0];
  norm.dispose();
  if (!Number.isFinite(gradNorm)) return gradNorm;
  state.step += 1;
  const t = state.step;
  const scale = clipNorm > 0 && gradNorm > clipNorm ? clipNorm / gradNorm : 1;
  const c1 = 1 - Math.pow(beta1, t);
  const c2 = 1 - Math.pow(beta2, t);
  const stepSize = (lr * Math.sqrt(c2)) / c1;
  const eps = epsilon * Math.sqrt(c2);
  tf.tidy(() => {
    for (const [name, p] of model.params) {
      const g = grads[p.name];
      const m = state.m.get(name)!;
      const v = state.v.get(name)!;
      m.assign(m.mul(beta1).add(g.mul((1 - beta1) * scale)));
      v.assign(v.mul(beta2).add(g.square().mul((1 - beta2) * scale * scale)));
      const update = m.div(v.sqrt().add(eps)).mul(stepSize);
      const decays = !(name.endsWith('.bias') || name.endsWith('.gamma') || name.endsWith('.beta') || name.endsWith('LayerNorm.weight'));
      p.assign((decays && weightDecay > 0 ? p.mul(1 - lr * weightDecay) : p).sub(update));
    }
  });
  return gradNorm;
}

export function fastParts(model: Model, data: BenchData, rng: Rng, impl: string): StepParts<FastInput> {
  if (model.spec.head.type !== 'globalpointer') throw new Error(`fast-step rewrites the globalpointer head only, not ${model.spec.head.type}`);
  const f = parseFeatures(impl);
  const native = nativeBackend();
  const optimizer = createAdamWState(model.params);
  const H = data.shape.types;
  return {
    input(batch) {
      const tensors = batchTensors(batch, H, data.padId, !f.loss);
      const gold = f.loss ? goldOf(batch, H) : null;
      return {
        tensors,
        gold,
        dispose() {
          disposeBatch(tensors);
          if (gold) tf.dispose([gold.cells, gold.slots, gold.valid, gold.back]);
        },
      };
    },
    loss({ tensors, gold }, training) {
      return tf.tidy(() => {
        const c: Ctx = { f, training, rng, native };
        const [q, k] = headQK(model, encode(model, tensors.ids, tensors.mask, c), c);
        const bias = spanMaskBias(tensors.mask);
        if (gold) return spanLoss(q, k, bias, gold);
        const logits = tf.matMul(q, k, false, true).add(bias) as tf.Tensor4D;
        return f.mlce ? fusedMultilabelCE(logits, tensors.targets!) : multilabelCrossEntropy(logits, tensors.targets!);
      });
    },
    update(grads, lr) {
      if (f.adam) return foldedAdamW(model, grads, optimizer, lr, data);
      const byName = new Map([...model.params].map(([name, v]) => [name, grads[v.name]] as const));
      return adamWStep(model.params, byName, optimizer, lr, data.training.clipNorm, data.training);
    },
    dispose: () => disposeAdamWState(optimizer),
  };
}
