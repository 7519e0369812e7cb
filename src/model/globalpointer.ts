/**
 * The model: token embedding → pre-LN transformer → GlobalPointer span head. A BiLSTM, or a pretrained BERT
 * encoder (src/model/bert.ts), can take the transformer's place.
 *
 *   ids [B, L] ─► embed [B, L, D] (token + hashed bigram + word features + lexicon) ─► encoder ─► LN ─► head ─► logits [B, H, L, L]
 *   transformer: N × (x + attn(LN x), x + ffn(LN x))      bilstm: N × [LSTM→(x); LSTM←(x)], D/2 units each
 *
 * logits[b, h, i, j] scores "tokens i..j form an entity of type h". Cells with j < i or on padding hold −1e12
 * (added as a bias), so decoding and the loss never see them.
 *
 * Parameters are plain tf.Variables in a name → variable map; the names are the keys of the saved safetensors file.
 * Only ops every backend can differentiate are used (no einsum; the embedding gradient goes through scatterND
 * because wasm has no UnsortedSegmentSum and the cpu backend's gather gradient is pathologically slow).
 */
import * as tf from '@tensorflow/tfjs';
import type { BilstmConfig, ModelConfig, TransformerConfig } from '../config/schema.js';
import { nativeUniform } from '../backend.js';
import { Rng } from '../rng.js';
import { bertEncode, bertParameterShapes, bertWordEmbeddings, type BertEncoderSpec } from './bert.js';
import { LEXICON_FEATURE_COUNT, type Lexicon } from '../data/lexicon.js';
import type { TokenFeatures } from '../data/encode.js';

/** A BERT encoder's spec holds config.json's sizes, so a saved model never needs its checkpoint again. */
export type EncoderSpec = TransformerConfig | BilstmConfig | BertEncoderSpec;

/** Everything needed to rebuild the model's shapes; saved in the model directory. */
export interface ModelSpec extends Omit<ModelConfig, 'encoder' | 'bigramBuckets' | 'wordFeatures' | 'lexicon'> {
  encoder: EncoderSpec;
  /** Absent in models saved before bigrams existed: none. */
  bigramBuckets?: number;
  /** Absent in models saved before word features existed: none. */
  wordFeatures?: number;
  /** Lexicon features (src/data/lexicon.ts), the words kept in the model directory; absent: none. */
  lexicon?: boolean;
  vocabSize: number;
  numTypes: number;
  /** Longest sequence (for learned positions and windowing). */
  maxLength: number;
}

export interface Model {
  spec: ModelSpec;
  params: Map<string, tf.Variable>;
  /** The word list behind the lexicon features, when spec.lexicon. */
  lexicon?: Lexicon;
}

/** Masked cells get this added: large enough that exp() is exactly 0, finite so no inf − inf appears. */
export const MASK_BIAS = -1e12;

// ---------------------------------------------------------------------------------------------- parameters

function parameterShapes(spec: ModelSpec): Map<string, number[]> {
  const { dim: D, vocabSize: V, numTypes: H, encoder, head } = spec;
  const shapes =
    encoder.type === 'bert'
      ? bertParameterShapes(encoder, D, V)
      : embeddingShapes(D, V, spec.bigramBuckets ?? 0, spec.wordFeatures ?? 0, spec.lexicon ?? false, encoder.type === 'transformer' && encoder.positions === 'learned' ? spec.maxLength : 0);
  if (encoder.type === 'transformer') transformerShapes(shapes, encoder, D);
  if (encoder.type === 'bilstm') bilstmShapes(shapes, encoder, D);
  if (head.type === 'globalpointer') {
    shapes.set('head.qk.kernel', [D, H * 2 * head.size]).set('head.qk.bias', [H * 2 * head.size]);
  } else {
    shapes.set('head.qk.kernel', [D, 2 * head.size]).set('head.qk.bias', [2 * head.size]);
    shapes.set('head.bias.kernel', [2 * head.size, 2 * H]).set('head.bias.bias', [2 * H]);
  }
  return shapes;
}

function embeddingShapes(D: number, V: number, bigramBuckets: number, wordFeatures: number, lexicon: boolean, positions: number): Map<string, number[]> {
  const shapes = new Map<string, number[]>([['embeddings.word', [V, D]]]);
  if (bigramBuckets > 0) shapes.set('embeddings.bigram', [bigramBuckets, D]);
  if (wordFeatures > 0) shapes.set('embeddings.wordFeatures', [wordFeatures, D]);
  if (lexicon) shapes.set('embeddings.lexicon', [LEXICON_FEATURE_COUNT, D]);
  if (positions > 0) shapes.set('embeddings.position', [positions, D]);
  return shapes;
}

function transformerShapes(shapes: Map<string, number[]>, encoder: TransformerConfig, D: number): void {
  const F = Math.round(D * encoder.ffnMultiplier);
  for (let l = 0; l < encoder.layers; l++) {
    const p = `encoder.${l}`;
    shapes.set(`${p}.ln1.gamma`, [D]).set(`${p}.ln1.beta`, [D]);
    shapes.set(`${p}.attn.qkv.kernel`, [D, 3 * D]).set(`${p}.attn.qkv.bias`, [3 * D]);
    shapes.set(`${p}.attn.out.kernel`, [D, D]).set(`${p}.attn.out.bias`, [D]);
    shapes.set(`${p}.ln2.gamma`, [D]).set(`${p}.ln2.beta`, [D]);
    shapes.set(`${p}.ffn.in.kernel`, [D, F]).set(`${p}.ffn.in.bias`, [F]);
    shapes.set(`${p}.ffn.out.kernel`, [F, D]).set(`${p}.ffn.out.bias`, [D]);
  }
  shapes.set('encoder.ln.gamma', [D]).set('encoder.ln.beta', [D]);
}

/** Each layer: a forward and a backward LSTM of D/2 units, their outputs concatenated back to D. */
function bilstmShapes(shapes: Map<string, number[]>, encoder: BilstmConfig, D: number): void {
  const units = D / 2;
  for (let l = 0; l < encoder.layers; l++) {
    for (const dir of ['fw', 'bw']) {
      const p = `encoder.${l}.${dir}`;
      shapes.set(`${p}.input.kernel`, [D, 4 * units]).set(`${p}.input.bias`, [4 * units]).set(`${p}.recurrent.kernel`, [units, 4 * units]);
    }
  }
  shapes.set('encoder.ln.gamma', [D]).set('encoder.ln.beta', [D]);
}

/** Which learning rate a parameter follows: the span head's, or the (possibly pretrained) encoder's. */
export function parameterGroup(name: string): 'head' | 'encoder' {
  return name.startsWith('head.') ? 'head' : 'encoder';
}

/** BERT's initialisation: N(0, 0.02) truncated for matrices, ones for LayerNorm gains, zeros for biases. */
function initialValue(name: string, shape: number[], rng: Rng): tf.Tensor {
  if (name.endsWith('.gamma') || name.endsWith('LayerNorm.weight')) return tf.ones(shape);
  if (name.endsWith('.beta') || name.endsWith('.bias')) return tf.zeros(shape);
  return tf.truncatedNormal(shape, 0, 0.02, 'float32', rng.seed());
}

export function createModel(spec: ModelSpec, seed: number): Model {
  const rng = new Rng(seed);
  const params = new Map<string, tf.Variable>();
  for (const [name, shape] of parameterShapes(spec)) {
    const value = initialValue(name, shape, rng);
    params.set(name, tf.variable(value, true));
    value.dispose();
  }
  return { spec, params };
}

/** The shapes a model of this spec expects, to check loaded weights against. */
export function expectedShapes(spec: ModelSpec): Map<string, number[]> {
  return parameterShapes(spec);
}

export function disposeModel(model: Model): void {
  for (const v of model.params.values()) v.dispose();
  model.params.clear();
}

// ---------------------------------------------------------------------------------------------- building blocks

/** Embedding lookup whose gradient is a scatterND into the table (summing repeated ids), valid on every backend. */
export function embeddingLookup(table: tf.Tensor2D, ids: tf.Tensor2D): tf.Tensor3D {
  const [B, L] = ids.shape;
  const [V, D] = table.shape;
  const lookup = tf.customGrad((t, i, save) => {
    const flatIds = (i as tf.Tensor).reshape([B * L]);
    (save as tf.GradSaveFunc)([flatIds]);
    const value = tf.gather(t as tf.Tensor2D, flatIds).reshape([B, L, D]) as tf.Tensor3D;
    const gradFunc = (dy: tf.Tensor3D, [savedIds]: tf.Tensor[]): tf.Tensor[] => [
      tf.scatterND(savedIds.reshape([B * L, 1]), dy.reshape([B * L, D]), [V, D]),
      tf.zerosLike(savedIds).reshape([B, L]),
    ];
    return { value, gradFunc };
  });
  return lookup(table, ids) as tf.Tensor3D;
}

/**
 * x W + b for x [N, in], gradient written out: wasm's BatchMatMul with transposeA or transposeB runs a generic loop
 * 20–50× slower than its XNNPACK path, and matMul's own gradient uses both flags, so on wasm the operands are
 * transposed explicitly; libtensorflow and cpu take the flags at no cost (docs/performance.md).
 */
const denseOp = tf.customGrad((x, kernel, bias, save) => {
  (save as tf.GradSaveFunc)([x as tf.Tensor, kernel as tf.Tensor]);
  return {
    value: tf.fused.matMul({ a: x as tf.Tensor2D, b: kernel as tf.Tensor2D, bias: bias as tf.Tensor }),
    gradFunc: (dy: tf.Tensor, [x0, k0]: tf.Tensor[]) => {
      const g = dy as tf.Tensor2D;
      const explicit = tf.getBackend() === 'wasm';
      return [
        explicit ? tf.matMul(g, k0.transpose()) : tf.matMul(g, k0 as tf.Tensor2D, false, true),
        explicit ? tf.matMul(x0.transpose(), g) : tf.matMul(x0 as tf.Tensor2D, g, true, false),
        g.sum(0),
      ];
    },
  };
});

/** x W + b over the last axis, for any rank ≥ 2. */
export function dense(x: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor): tf.Tensor {
  const inDim = x.shape[x.shape.length - 1];
  const outShape = [...x.shape.slice(0, -1), kernel.shape[1] as number];
  return denseOp(x.reshape([-1, inDim]), kernel, bias).reshape(outShape);
}

/** LayerNorm over the last axis with its textbook gradient: three reductions, not autodiff through tf.moments. */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps = 1e-12): tf.Tensor {
  const D = x.shape[x.shape.length - 1];
  const op = tf.customGrad((xIn, g, b, save) => {
    const centred = (xIn as tf.Tensor).sub((xIn as tf.Tensor).mean(-1, true));
    const rstd = tf.rsqrt(centred.square().mean(-1, true).add(eps));
    const xhat = centred.mul(rstd);
    (save as tf.GradSaveFunc)([xhat, rstd, g as tf.Tensor]);
    return {
      value: xhat.mul(g as tf.Tensor).add(b as tf.Tensor),
      gradFunc: (dy: tf.Tensor, [xh, r, g0]: tf.Tensor[]) => {
        const dxhat = dy.mul(g0);
        const dx = dxhat.sub(dxhat.mean(-1, true)).sub(xh.mul(dxhat.mul(xh).mean(-1, true))).mul(r);
        const rows = dy.reshape([-1, D]);
        return [dx, rows.mul(xh.reshape([-1, D])).sum(0), rows.sum(0)];
      },
    };
  });
  return op(x, gamma, beta);
}

const GELU_A = 2 * Math.sqrt(2 / Math.PI);
const GELU_B = GELU_A * 0.044715;

/**
 * GELU, tanh form (every backend has tanh; exact erf-GELU is for BERT checkpoints), as x·σ(a·x + b·x³), which is
 * exactly ½x(1 + tanh(√(2/π)(x + 0.044715x³))) with a = 2√(2/π), b = 0.044715·a. Written out with its gradient:
 * x.pow(3) is slow on libtensorflow, and autodiff through the tanh form costs several more [B, L, 4D] passes.
 */
export const gelu = tf.customGrad((xIn, save) => {
  const x = xIn as tf.Tensor;
  const square = x.square();
  const s = tf.sigmoid(square.mul(GELU_B).add(GELU_A).mul(x));
  (save as tf.GradSaveFunc)([x, square, s]);
  return {
    value: x.mul(s),
    // d/dx x·σ(u) = σ(u) + x·σ(u)(1 − σ(u))·u′, u′ = a + 3b·x²
    gradFunc: (dy: tf.Tensor, [x0, sq, sg]: tf.Tensor[]) => sg.sub(sg.square()).mul(sq.mul(3 * GELU_B).add(GELU_A)).mul(x0).add(sg).mul(dy),
  };
}) as (x: tf.Tensor) => tf.Tensor;

export interface RopeTables {
  cos: tf.Tensor2D; // [L, d]
  sin: tf.Tensor2D; // [L, d]
}

/**
 * Rotary tables for positions 0..L−1 and an even width d: angle(p, k) = p · 10000^(−2k/d), k < d/2, laid out
 * [cos(angles), cos(angles)] so that `applyRope` can rotate the pairs (x_k, x_{k+d/2}).
 */
export function ropeTables(length: number, d: number): RopeTables {
  const half = d / 2;
  const angles = new Float32Array(length * d);
  for (let p = 0; p < length; p++) {
    for (let k = 0; k < half; k++) {
      const a = p * Math.pow(10000, (-2 * k) / d);
      angles[p * d + k] = a;
      angles[p * d + k + half] = a;
    }
  }
  return tf.tidy(() => {
    const t = tf.tensor2d(angles, [length, d]);
    return { cos: tf.cos(t), sin: tf.sin(t) };
  });
}

/**
 * RoPE: rotate each pair (x_k, x_{k+d/2}) at position p by angle(p, k). Then ⟨rope(q, m), rope(k, n)⟩ depends on
 * m and n only through n − m, which is what gives GlobalPointer its sense of span length.
 * x [..., L, d]; cos, sin [L, d].
 */
export function applyRope(x: tf.Tensor, cos: tf.Tensor2D, sin: tf.Tensor2D): tf.Tensor {
  const [x1, x2] = tf.split(x, 2, -1);
  const rotated = tf.concat([x2.neg(), x1], -1); // [..., L, d]
  return x.mul(cos).add(rotated.mul(sin));
}

/**
 * q·qScale and k after RoPE, from q and k stacked as [2, N, L, d]: one rotation for both, with qScale folded into
 * q's half of the tables (so attention's 1/√d costs nothing). `rope` holds ropeTables(L, d), or null for no rotation
 * (only the scaling). Returns [N, L, d] each.
 */
export function scaledRopePair(stacked: tf.Tensor, qScale: number, rope: RopeTables | null): [tf.Tensor, tf.Tensor] {
  if (!rope) {
    const [q, k] = tf.unstack(stacked);
    return [q.mul(qScale), k];
  }
  const scales = tf.tensor1d([qScale, 1]).reshape([2, 1, 1, 1]);
  const [q, k] = tf.unstack(applyRope(stacked, rope.cos.mul(scales) as tf.Tensor2D, rope.sin.mul(scales) as tf.Tensor2D)); // tables [2, 1, L, d]
  return [q, k];
}

/** Valid cells [B, 1, L, L]: 1 where i ≤ j and both tokens are real, else 0. mask [B, L] of 0/1. */
export function spanValidity(mask: tf.Tensor2D): tf.Tensor4D {
  return tf.tidy(() => {
    const [B, L] = mask.shape;
    const upper = tf.linalg.bandPart(tf.ones([L, L]), 0, -1); // [L, L], 1 where j ≥ i
    return mask.reshape([B, 1, L, 1]).mul(mask.reshape([B, 1, 1, L])).mul(upper) as tf.Tensor4D;
  });
}

/** Bias [B, 1, L, L]: 0 on valid cells, MASK_BIAS elsewhere. */
export function spanMaskBias(mask: tf.Tensor2D): tf.Tensor4D {
  return tf.tidy(() => spanValidity(mask).sub(1).mul(-MASK_BIAS) as tf.Tensor4D); // (valid − 1) · 1e12
}

// ---------------------------------------------------------------------------------------------- the network

/** A model with word or lexicon features needs the batch's (TokenFeatures) here. */
export interface ForwardOptions extends TokenFeatures {
  training: boolean;
  /** Supplies dropout seeds; required when training. */
  rng?: Rng;
  /** Added to the token embeddings before the encoder (virtual adversarial training). */
  perturbation?: tf.Tensor3D;
}

export function dropout(x: tf.Tensor, rate: number, opts: ForwardOptions): tf.Tensor {
  if (!opts.training || rate === 0) return x;
  const seed = opts.rng!.seed();
  const uniform = nativeUniform(x.shape, seed);
  if (!uniform) return tf.dropout(x, rate, undefined, seed);
  // tf.dropout's mask, ⌊u + keep⌋ / keep, from libtensorflow's numbers: tf.randomUniform fills its buffer in JavaScript.
  const keep = 1 - rate;
  return x.mul(tf.tidy(() => uniform.add(keep).floor().div(keep)));
}

function selfAttention(
  model: Model,
  layer: number,
  x: tf.Tensor3D, // [B, L, D]
  keyBias: tf.Tensor, // [B, 1, 1, L]
  rope: RopeTables | null, // [L, dh] each
  opts: ForwardOptions,
): tf.Tensor3D {
  const p = (n: string) => model.params.get(`encoder.${layer}.attn.${n}`)!;
  const [B, L, D] = x.shape;
  const { heads, attentionDropout } = model.spec.encoder as TransformerConfig;
  const dh = D / heads;
  const [qk, v0] = tf.split(dense(x, p('qkv.kernel'), p('qkv.bias')), [2 * D, D], -1); // [B, L, 2D], [B, L, D]
  // q and k as [2, B·h, L, dh]: rank 4, since wasm slices rank-5 tensors on a generic path ≈ 100× slower.
  const stacked = qk.reshape([B, L, 2, heads, dh]).transpose([2, 0, 3, 1, 4]).reshape([2, B * heads, L, dh]);
  const [q, k] = scaledRopePair(stacked, 1 / Math.sqrt(dh), rope).map((t) => t.reshape([B, heads, L, dh]));
  const v = v0.reshape([B, L, heads, dh]).transpose([0, 2, 1, 3]); // [B, h, L, dh]
  const scores = tf.matMul(q, k, false, true).add(keyBias); // [B, h, L, L]
  const probs = dropout(tf.softmax(scores), attentionDropout, opts);
  const context = tf.matMul(probs, v).transpose([0, 2, 1, 3]).reshape([B, L, D]); // [B, L, D]
  return dense(context, p('out.kernel'), p('out.bias')) as tf.Tensor3D;
}

function feedForward(model: Model, layer: number, x: tf.Tensor3D, opts: ForwardOptions): tf.Tensor3D {
  const p = (n: string) => model.params.get(`encoder.${layer}.ffn.${n}`)!;
  const hidden = dropout(gelu(dense(x, p('in.kernel'), p('in.bias'))), model.spec.dropout, opts);
  return dense(hidden, p('out.kernel'), p('out.bias')) as tf.Tensor3D;
}

/**
 * Bucket of each bigram (ids[b, i], ids[b, i+1]) [B, L], where a token followed by padding or by nothing pairs with
 * id 0, so a text's buckets do not depend on how much its batch pads it: (a·V + b) mod buckets, which is the pair
 * itself when buckets ≥ V², and below 2³¹ for any vocabulary under 46,341.
 */
export function bigramBuckets(ids: tf.Tensor2D, mask: tf.Tensor2D, vocabSize: number, buckets: number): tf.Tensor2D {
  return tf.tidy(() => {
    const [B, L] = ids.shape;
    const next = ids.slice([0, 1], [B, L - 1]).mul(mask.slice([0, 1], [B, L - 1]).cast('int32'));
    const paired = tf.concat([next, tf.zeros([B, 1], 'int32')], 1); // [B, L]
    return ids.mul(tf.scalar(vocabSize, 'int32')).add(paired).mod(tf.scalar(buckets, 'int32')) as tf.Tensor2D;
  });
}

/**
 * Token embeddings [B, L, D] for ids, mask [B, L]: token, plus hashed bigram, the sum of the word feature rows, the
 * sum of the rows of the lexicon features present, and learned position where configured.
 */
export function embed(model: Model, ids: tf.Tensor2D, mask: tf.Tensor2D, features: TokenFeatures = {}): tf.Tensor3D {
  const { wordFeatures, lexicon } = features;
  if (model.spec.encoder.type === 'bert') return bertWordEmbeddings(model, ids);
  let x = embeddingLookup(model.params.get('embeddings.word')! as tf.Tensor2D, ids);
  const bigrams = model.params.get('embeddings.bigram');
  if (bigrams) x = x.add(embeddingLookup(bigrams as tf.Tensor2D, bigramBuckets(ids, mask, model.spec.vocabSize, bigrams.shape[0]))) as tf.Tensor3D;
  const featureTable = model.params.get('embeddings.wordFeatures');
  if (featureTable) {
    if (!wordFeatures) throw new Error('this model has word features: pass the batch\'s wordFeatures to forward');
    const [B, L, F] = wordFeatures.shape;
    const rows = embeddingLookup(featureTable as tf.Tensor2D, wordFeatures.reshape([B, L * F])); // [B, L·F, D]
    x = x.add(rows.reshape([B, L, F, -1]).sum(2)) as tf.Tensor3D;
  }
  const lexiconTable = model.params.get('embeddings.lexicon');
  if (lexiconTable) {
    if (!lexicon) throw new Error('this model has lexicon features: pass the batch\'s lexicon to forward');
    const [B, L, F] = lexicon.shape;
    x = x.add(tf.matMul(lexicon.reshape([B * L, F]), lexiconTable as tf.Tensor2D).reshape([B, L, -1])) as tf.Tensor3D; // [B·L, F]·[F, D]
  }
  const positions = model.params.get('embeddings.position');
  if (!positions) return x;
  const L = ids.shape[1];
  return x.add(positions.slice([0, 0], [L, -1])) as tf.Tensor3D;
}

/**
 * One LSTM direction over x [B, L, D] → [B, L, units]. The input projection of every position is one matMul; the
 * recurrence then costs one [B, units] × [units, 4·units] matMul per step. Gates i, f, g, o; the forget gate's
 * bias starts at +1 (remember by default). Going backwards, the right padding comes first and the state is held at
 * zero through it, so a sequence's real tokens never see its padding.
 */
export function lstmDirection(model: Model, prefix: string, x: tf.Tensor3D, mask: tf.Tensor2D, reverse: boolean): tf.Tensor3D {
  const p = (n: string) => model.params.get(`${prefix}.${n}`)!;
  const [B, L] = x.shape;
  const recurrent = p('recurrent.kernel') as tf.Tensor2D; // [units, 4·units]
  const units = recurrent.shape[0];
  const inputs = tf.unstack(dense(x, p('input.kernel'), p('input.bias')).transpose([1, 0, 2])); // L × [B, 4·units]
  const keep = reverse ? tf.unstack(mask.transpose().expandDims(2)) : []; // L × [B, 1], for holding the state at zero
  let h: tf.Tensor = tf.zeros([B, units]);
  let c: tf.Tensor = tf.zeros([B, units]);
  const outputs: tf.Tensor[] = new Array(L);
  for (let step = 0; step < L; step++) {
    const t = reverse ? L - 1 - step : step;
    const [i, f, g, o] = tf.split(inputs[t].add(tf.matMul(h, recurrent)), 4, 1); // [B, units] each
    c = tf.sigmoid(f.add(1)).mul(c).add(tf.sigmoid(i).mul(tf.tanh(g)));
    h = tf.sigmoid(o).mul(tf.tanh(c));
    if (reverse) {
      c = c.mul(keep[t]);
      h = h.mul(keep[t]);
    }
    outputs[t] = h;
  }
  return tf.stack(outputs, 1) as tf.Tensor3D; // [B, L, units]
}

/** Stacked BiLSTM over embeddings x [B, L, D]; returns hidden states [B, L, D]. */
function bilstmEncode(model: Model, encoder: BilstmConfig, x: tf.Tensor3D, mask: tf.Tensor2D, opts: ForwardOptions): tf.Tensor3D {
  const p = (n: string) => model.params.get(n)!;
  let h = dropout(x, model.spec.dropout, opts) as tf.Tensor3D;
  for (let l = 0; l < encoder.layers; l++) {
    const input = h;
    h = tf.tidy(() => {
      const both = tf.concat([lstmDirection(model, `encoder.${l}.fw`, input, mask, false), lstmDirection(model, `encoder.${l}.bw`, input, mask, true)], -1);
      return dropout(both, model.spec.dropout, opts) as tf.Tensor3D; // [B, L, D]
    });
  }
  return layerNorm(h, p('encoder.ln.gamma'), p('encoder.ln.beta')) as tf.Tensor3D;
}

/** The encoder over embeddings x [B, L, D] with mask [B, L]; returns hidden states [B, L, D]. */
export function encode(model: Model, x: tf.Tensor3D, mask: tf.Tensor2D, opts: ForwardOptions): tf.Tensor3D {
  const { spec, params } = model;
  if (spec.encoder.type === 'bert') return bertEncode(model, spec.encoder, x, mask, opts);
  if (spec.encoder.type === 'bilstm') return bilstmEncode(model, spec.encoder, x, mask, opts);
  const [B, L, D] = x.shape;
  const p = (n: string) => params.get(n)!;
  const keyBias = mask.sub(1).mul(1e9).reshape([B, 1, 1, L]); // padding keys get −1e9 before softmax
  const rope = spec.encoder.positions === 'rope' ? ropeTables(L, D / spec.encoder.heads) : null; // one set for all layers
  let h = dropout(x, spec.dropout, opts) as tf.Tensor3D;
  for (let l = 0; l < spec.encoder.layers; l++) {
    const x = h;
    // One tidy per layer frees its intermediates as it ends, not when the whole forward does (the tensors the
    // gradient needs are kept by the tape): half the peak memory of prediction (docs/performance.md).
    h = tf.tidy(() => {
      const a = selfAttention(model, l, layerNorm(x, p(`encoder.${l}.ln1.gamma`), p(`encoder.${l}.ln1.beta`)) as tf.Tensor3D, keyBias, rope, opts);
      const x1 = x.add(dropout(a, spec.dropout, opts)) as tf.Tensor3D;
      const f = feedForward(model, l, layerNorm(x1, p(`encoder.${l}.ln2.gamma`), p(`encoder.${l}.ln2.beta`)) as tf.Tensor3D, opts);
      return x1.add(dropout(f, spec.dropout, opts)) as tf.Tensor3D;
    });
  }
  return layerNorm(h, p('encoder.ln.gamma'), p('encoder.ln.beta')) as tf.Tensor3D;
}

/**
 * GlobalPointer: per type h, q_i and k_j from a dense layer, RoPE on both, logits[b, h, i, j] = q_i · k_j / √d.
 * h [B, L, D] → [B, H, L, L] (unmasked).
 */
export function globalPointer(model: Model, h: tf.Tensor3D): tf.Tensor4D {
  const [B, L] = h.shape;
  const { numTypes: H, head } = model.spec;
  const d = head.size;
  const qk = dense(h, model.params.get('head.qk.kernel')!, model.params.get('head.qk.bias')!); // [B, L, H·2d]
  const stacked = qk.reshape([B, L, H, 2, d]).transpose([3, 0, 2, 1, 4]).reshape([2, B * H, L, d]);
  const [q, k] = scaledRopePair(stacked, 1 / Math.sqrt(d), head.rope ? ropeTables(L, d) : null).map((t) => t.reshape([B, H, L, d]));
  return tf.matMul(q, k, false, true) as tf.Tensor4D; // [B, H, L, L]
}

/**
 * Efficient GlobalPointer: one shared q·k/√d span score plus per-type start and end biases from a small dense
 * layer over [q; k]: logits[b, h, i, j] = q_i·k_j/√d + (w_h,start · [q;k]_i + w_h,end · [q;k]_j) / 2.
 */
export function efficientGlobalPointer(model: Model, h: tf.Tensor3D): tf.Tensor4D {
  const [B, L] = h.shape;
  const { numTypes: H, head } = model.spec;
  const d = head.size;
  const qkRaw = dense(h, model.params.get('head.qk.kernel')!, model.params.get('head.qk.bias')!); // [B, L, 2d]
  const [q, k] = scaledRopePair(qkRaw.reshape([B, L, 2, d]).transpose([2, 0, 1, 3]), 1 / Math.sqrt(d), head.rope ? ropeTables(L, d) : null); // [B, L, d] each
  const shared = tf.matMul(q, k, false, true).expandDims(1); // [B, 1, L, L]
  const bias = dense(qkRaw, model.params.get('head.bias.kernel')!, model.params.get('head.bias.bias')!).div(2); // [B, L, 2H]
  const [startBias, endBias] = tf.split(bias.reshape([B, L, H, 2]).transpose([0, 2, 1, 3]), 2, -1); // [B, H, L, 1]
  return shared.add(startBias).add(endBias.transpose([0, 1, 3, 2])) as tf.Tensor4D;
}

/** ids [B, L] int32, mask [B, L] 0/1 → masked span logits [B, H, L, L]. */
export function forward(model: Model, ids: tf.Tensor2D, mask: tf.Tensor2D, opts: ForwardOptions): tf.Tensor4D {
  return tf.tidy(() => {
    let x = embed(model, ids, mask, opts);
    if (opts.perturbation) x = x.add(opts.perturbation) as tf.Tensor3D;
    return forwardFromEmbeddings(model, x, mask, opts);
  });
}

/** The part of `forward` after the embedding, for regularisers that perturb the embeddings. */
export function forwardFromEmbeddings(model: Model, x: tf.Tensor3D, mask: tf.Tensor2D, opts: ForwardOptions): tf.Tensor4D {
  return tf.tidy(() => {
    const h = encode(model, x, mask, opts);
    const logits = model.spec.head.type === 'globalpointer' ? globalPointer(model, h) : efficientGlobalPointer(model, h);
    return logits.add(spanMaskBias(mask)) as tf.Tensor4D;
  });
}
