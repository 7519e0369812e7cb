/**
 * From examples to model inputs: tokenize once, cut long texts into overlapping windows of at most maxLength
 * positions ([CLS] and [SEP] included when the tokenizer has them), map entity spans to token cells, and group
 * windows of similar length into padded batches.
 */
import * as tf from '@tensorflow/tfjs';
import type { Example } from '../types.js';
import type { Rng } from '../rng.js';
import { alignSpan } from './tokenizer.js';
import { WORD_FEATURE_COUNT, wordFeatureIds } from './features.js';
import { LEXICON_FEATURE_COUNT, lexiconFeatures, type Lexicon } from './lexicon.js';

/** What the encoder needs of a tokenizer (src/data/tokenizer.ts provides it). */
export interface TokenizerLike {
  encode(text: string): { ids: number[]; offsets: Array<[number, number]> };
  padId: number;
  clsId?: number;
  sepId?: number;
}

/** One model input: a window of one example's tokens. */
export interface Window {
  example: number;
  /** Token ids including [CLS]/[SEP] when used. */
  ids: number[];
  /** Character offsets of the content tokens (ids minus the specials), in the example's text. */
  offsets: Array<[number, number]>;
  /** Position of the first content token in `ids` (1 after a [CLS]). */
  base: number;
  /** Gold cells (type, first, last) in positions of `ids`. */
  targets: Array<[number, number, number]>;
  /** With word features: WORD_FEATURE_COUNT rows per position of `ids`, 0 on [CLS] and [SEP]. */
  wordFeatures?: number[];
  /** With a lexicon: LEXICON_FEATURE_COUNT 0/1 values per position of `ids`, 0 on [CLS] and [SEP]. */
  lexicon?: number[];
}

export interface EncodeStats {
  windows: number;
  tokens: number;
  entities: number;
  /** Entities whose start or end falls inside a token: they cannot be represented, so they are counted, not hidden. */
  misaligned: number;
  /** Entities longer than a window, or crossing every window they touch. */
  cut: number;
  /** Entities whose label is not among the model's labels. */
  unknownLabel: number;
  examples: Array<{ index: number; reason: string; label: string; text: string }>;
}

/**
 * Content-token ranges [start, end) of the windows covering n tokens. The overlap is capped at half a window, so
 * consecutive windows always advance by at least half a window whatever maxLength and overlap a config pairs.
 */
export function windowRanges(n: number, capacity: number, overlap: number): Array<[number, number]> {
  if (n <= capacity) return [[0, n]];
  const stride = capacity - Math.min(overlap, Math.floor(capacity / 2));
  const ranges: Array<[number, number]> = [];
  for (let start = 0; ; start += stride) {
    const end = Math.min(n, start + capacity);
    ranges.push([start, end]);
    if (end === n) break;
  }
  return ranges;
}

export function encodeExamples(
  examples: Example[],
  tokenizer: TokenizerLike,
  labels: string[],
  opts: { maxLength: number; overlap: number; wordFeatures?: number; lexicon?: Lexicon },
): { windows: Window[]; stats: EncodeStats } {
  const labelIndex = new Map(labels.map((l, i) => [l, i]));
  const specials = tokenizer.clsId !== undefined && tokenizer.sepId !== undefined;
  const capacity = opts.maxLength - (specials ? 2 : 0);
  if (capacity < 1) throw new Error(`maxLength ${opts.maxLength} leaves no room for tokens`);
  const stats: EncodeStats = { windows: 0, tokens: 0, entities: 0, misaligned: 0, cut: 0, unknownLabel: 0, examples: [] };
  const note = (index: number, reason: string, label: string, text: string) => {
    if (stats.examples.length < 20) stats.examples.push({ index, reason, label, text });
  };
  const windows: Window[] = [];
  examples.forEach((example, index) => {
    const { ids, offsets } = tokenizer.encode(example.text);
    const features = opts.wordFeatures ? wordFeatureIds(example.text, offsets, opts.wordFeatures) : null;
    const lexicon = opts.lexicon ? lexiconFeatures(example.text, offsets, opts.lexicon) : null;
    const cells: Array<[number, number, number]> = [];
    for (const span of example.spans) {
      stats.entities += 1;
      const type = labelIndex.get(span.label);
      const surface = example.text.slice(span.start, span.end);
      if (type === undefined) {
        stats.unknownLabel += 1;
        note(index, 'unknown label', span.label, surface);
        continue;
      }
      const aligned = alignSpan(offsets, span.start, span.end);
      if (!aligned) {
        stats.misaligned += 1;
        note(index, 'boundary inside a token', span.label, surface);
        continue;
      }
      cells.push([type, aligned.first, aligned.last]);
    }
    const covered = new Set<number>();
    for (const [start, end] of windowRanges(ids.length, capacity, opts.overlap)) {
      const base = specials ? 1 : 0;
      const windowIds = specials ? [tokenizer.clsId!, ...ids.slice(start, end), tokenizer.sepId!] : ids.slice(start, end);
      const targets: Array<[number, number, number]> = [];
      cells.forEach(([type, first, last], c) => {
        if (first >= start && last < end) {
          targets.push([type, first - start + base, last - start + base]);
          covered.add(c);
        }
      });
      const window: Window = { example: index, ids: windowIds, offsets: offsets.slice(start, end), base, targets };
      const slice = (values: number[], perToken: number) => {
        const none = new Array<number>(specials ? perToken : 0).fill(0);
        return [...none, ...values.slice(start * perToken, end * perToken), ...none];
      };
      if (features) window.wordFeatures = slice(features, WORD_FEATURE_COUNT);
      if (lexicon) window.lexicon = slice(lexicon, LEXICON_FEATURE_COUNT);
      windows.push(window);
      stats.windows += 1;
      stats.tokens += windowIds.length;
    }
    cells.forEach(([type], c) => {
      if (!covered.has(c)) {
        stats.cut += 1;
        note(index, 'longer than a window', labels[type], '');
      }
    });
  });
  return { windows, stats };
}

/**
 * Length-bucketed batches: shuffle, sort chunks of 50 batches by length, cut into batches, shuffle the batches.
 * Padding then stays small without every epoch seeing the same batches. Without rng: in order, for evaluation.
 */
export function makeBatches(windows: Window[], batchSize: number, rng?: Rng): Window[][] {
  const order = windows.map((_, i) => i);
  if (!rng) {
    // Sorting by length still saves padding at evaluation; callers map results back by window identity.
    order.sort((a, b) => windows[a].ids.length - windows[b].ids.length);
  } else {
    rng.shuffle(order);
    const chunk = batchSize * 50;
    for (let s = 0; s < order.length; s += chunk) {
      const part = order.slice(s, s + chunk).sort((a, b) => windows[a].ids.length - windows[b].ids.length);
      order.splice(s, part.length, ...part);
    }
  }
  const batches: Window[][] = [];
  for (let s = 0; s < order.length; s += batchSize) batches.push(order.slice(s, s + batchSize).map((i) => windows[i]));
  return rng ? rng.shuffle(batches) : batches;
}

/**
 * Token dropout (word dropout): each content token becomes `unkId` with probability `rate`, so the model learns to
 * read entities from context, bigrams and word features rather than from the identity of tokens it has memorised:
 * the situation of every unseen word at test time. [CLS] and [SEP] are kept.
 */
export function dropTokens(batch: Window[], rate: number, unkId: number, rng: Rng): Window[] {
  if (rate === 0) return batch;
  return batch.map((w) => {
    const ids = w.ids.map((id, i) => (i >= w.base && i < w.base + w.offsets.length && rng.next() < rate ? unkId : id));
    return { ...w, ids };
  });
}

/** Per-token inputs besides the ids, present when the windows carry them. */
export interface TokenFeatures {
  /** Word feature rows [B, L, F] int32, 0 on padding (src/data/features.ts). */
  wordFeatures?: tf.Tensor3D;
  /** Lexicon features [B, L, F] float32 0/1, 0 on padding (src/data/lexicon.ts). */
  lexicon?: tf.Tensor3D;
}

export interface BatchTensors extends TokenFeatures {
  ids: tf.Tensor2D; // [B, L] int32
  mask: tf.Tensor2D; // [B, L] 1 on real tokens
  targets: tf.Tensor4D | null; // [B, H, L, L] 0/1
  /** Real (unpadded) tokens in the batch. */
  tokens: number;
}

/** Pad a batch to its own longest window. */
export function batchTensors(batch: Window[], numTypes: number, padId: number, withTargets: boolean): BatchTensors {
  const B = batch.length;
  const L = Math.max(...batch.map((w) => w.ids.length));
  const ids = new Int32Array(B * L).fill(padId);
  const mask = new Float32Array(B * L);
  let tokens = 0;
  batch.forEach((w, b) => {
    ids.set(w.ids, b * L);
    mask.fill(1, b * L, b * L + w.ids.length);
    tokens += w.ids.length;
  });
  let targets: tf.Tensor4D | null = null;
  if (withTargets) {
    const y = new Float32Array(B * numTypes * L * L);
    batch.forEach((w, b) => {
      for (const [h, i, j] of w.targets) y[((b * numTypes + h) * L + i) * L + j] = 1;
    });
    targets = tf.tensor4d(y, [B, numTypes, L, L]);
  }
  const tensors: BatchTensors = { ids: tf.tensor2d(ids, [B, L], 'int32'), mask: tf.tensor2d(mask, [B, L]), targets, tokens };
  if (batch[0].wordFeatures) {
    const F = WORD_FEATURE_COUNT;
    const features = new Int32Array(B * L * F);
    batch.forEach((w, b) => features.set(w.wordFeatures!, b * L * F));
    tensors.wordFeatures = tf.tensor3d(features, [B, L, F], 'int32');
  }
  if (batch[0].lexicon) {
    const F = LEXICON_FEATURE_COUNT;
    const values = new Float32Array(B * L * F);
    batch.forEach((w, b) => values.set(w.lexicon!, b * L * F));
    tensors.lexicon = tf.tensor3d(values, [B, L, F]);
  }
  return tensors;
}

/** The batch's per-token inputs besides the ids, for forward's options. */
export function tokenFeatures(t: BatchTensors): TokenFeatures {
  return { wordFeatures: t.wordFeatures, lexicon: t.lexicon };
}

export function disposeBatch(t: BatchTensors): void {
  t.ids.dispose();
  t.mask.dispose();
  t.targets?.dispose();
  t.wordFeatures?.dispose();
  t.lexicon?.dispose();
}
