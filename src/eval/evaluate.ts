/**
 * Running a trained model over texts: window, batch, forward, decode the span logits, map tokens back to
 * characters, merge windows. `gp predict`, `gp eval` and the dev evaluation during training all come through here.
 */
import type { Example, Entity, Span } from '../types.js';
import { encodeExamples, makeBatches, batchTensors, disposeBatch, tokenFeatures, type TokenizerLike, type Window } from '../data/encode.js';
import { forward, type Model } from '../model/globalpointer.js';
import { decodeSpans, mergeWindowEntitiesByCentre, tokenSpansToEntities, type WindowPrediction } from './decode.js';
import { scoreEntities, type Scores } from './metrics.js';

export interface PredictOptions {
  maxLength: number;
  overlap: number;
  batchSize: number;
  threshold: number;
  /** Keep only non-overlapping spans (highest score first). */
  flat?: boolean;
}

/** Logit values read back per batch are capped so long texts cannot exhaust memory: B·H·L² ≤ this. */
const MAX_CELLS_PER_BATCH = 1 << 24;

function splitByCells(batch: Window[], numTypes: number): Window[][] {
  const L = Math.max(...batch.map((w) => w.ids.length));
  const fit = Math.max(1, Math.floor(MAX_CELLS_PER_BATCH / (numTypes * L * L)));
  const parts: Window[][] = [];
  for (let s = 0; s < batch.length; s += fit) parts.push(batch.slice(s, s + fit));
  return parts;
}

/** One way of reading spans off the logits. */
export interface Decoding {
  threshold: number;
  flat?: boolean;
}

/** The thresholds `gp eval --sweep` and `training.tuneDecoding` try, each nested and flat. */
export const SWEEP_THRESHOLDS = [-10, -8, -6, -5, -4, -3, -2, -1, -0.5, 0, 0.5, 1, 2];
export const SWEEP_DECODINGS: Array<Required<Decoding>> = [false, true].flatMap((flat) => SWEEP_THRESHOLDS.map((threshold) => ({ threshold, flat })));

/**
 * The best of decodings scored by micro F1 (f1s[d] for decodings[d]): the first of equals, so ties keep the smaller
 * threshold and nested decoding, in SWEEP_DECODINGS' order.
 */
export function bestDecoding(decodings: Decoding[], f1s: number[]): { index: number; decoding: Required<Decoding> } {
  const index = f1s.reduce((b, v, i) => (v > f1s[b] ? i : b), 0);
  return { index, decoding: { threshold: decodings[index].threshold, flat: Boolean(decodings[index].flat) } };
}

/** Entities per text, with offsets into that text (UTF-16, end exclusive). */
export function predictEntities(model: Model, tokenizer: TokenizerLike, labels: string[], texts: string[], opts: PredictOptions): Entity[][] {
  return predictWithDecodings(model, tokenizer, labels, texts, opts, [opts])[0];
}

/** predictEntities for several decodings from one forward pass: [decoding][text] → entities. */
export function predictWithDecodings(
  model: Model,
  tokenizer: TokenizerLike,
  labels: string[],
  texts: string[],
  opts: Omit<PredictOptions, 'threshold' | 'flat'>,
  decodings: Decoding[],
): Entity[][][] {
  const examples = texts.map((text) => ({ text, spans: [] }));
  const { windows } = encodeExamples(examples, tokenizer, labels, { maxLength: opts.maxLength, overlap: opts.overlap, wordFeatures: model.spec.wordFeatures, lexicon: model.lexicon });
  const perWindow = decodings.map(() => new Map<Window, Entity[]>());
  const H = labels.length;
  for (const batch of makeBatches(windows, opts.batchSize).flatMap((b) => splitByCells(b, H))) {
    const input = batchTensors(batch, H, tokenizer.padId, false);
    const logits = forward(model, input.ids, input.mask, { ...tokenFeatures(input), training: false }); // [B, H, L, L]
    const L = logits.shape[2];
    const values = logits.dataSync() as Float32Array;
    logits.dispose();
    disposeBatch(input);
    batch.forEach((w, b) => {
      const sample = values.subarray(b * H * L * L, (b + 1) * H * L * L);
      decodings.forEach(({ threshold, flat }, d) => {
        const spans = decodeSpans(sample, H, L, { threshold, validLength: w.ids.length, flat });
        perWindow[d].set(w, tokenSpansToEntities(spans, w.offsets, texts[w.example], labels, w.base));
      });
    });
  }
  return perWindow.map((entitiesOf) => {
    const byText: WindowPrediction[][] = texts.map(() => []);
    for (const w of windows) {
      if (w.offsets.length === 0) continue;
      byText[w.example].push({ start: w.offsets[0][0], end: w.offsets[w.offsets.length - 1][1], entities: entitiesOf.get(w)! });
    }
    return byText.map((ws) => (ws.length === 0 ? [] : ws.length === 1 ? ws[0].entities : mergeWindowEntitiesByCentre(ws)));
  });
}

export interface EvalResult {
  scores: Scores;
  predictions: Entity[][];
}

/** Exact-match entity scores of the model's predictions against the gold character spans. */
export function evaluateExamples(model: Model, tokenizer: TokenizerLike, labels: string[], examples: Example[], opts: PredictOptions): EvalResult {
  const predictions = predictEntities(model, tokenizer, labels, examples.map((e) => e.text), opts);
  const scores = scoreEntities(examples.map((e) => e.spans), predictions);
  return { scores, predictions };
}

/** Scores of each decoding on the examples, one forward pass for all (choosing a threshold on dev). */
export function sweepDecodings(model: Model, tokenizer: TokenizerLike, labels: string[], examples: Example[], opts: Omit<PredictOptions, 'threshold' | 'flat'>, decodings: Decoding[]): Scores[] {
  const gold = examples.map((e) => e.spans);
  return predictWithDecodings(model, tokenizer, labels, examples.map((e) => e.text), opts, decodings).map((predictions) => scoreEntities(gold, predictions));
}

/** The decoding with the best micro F1 on the examples (bestDecoding's choice). */
export function tuneDecoding(
  model: Model,
  tokenizer: TokenizerLike,
  labels: string[],
  examples: Example[],
  opts: Omit<PredictOptions, 'threshold' | 'flat'>,
  decodings: Decoding[] = SWEEP_DECODINGS,
): { decoding: Required<Decoding>; scores: Scores } {
  const all = sweepDecodings(model, tokenizer, labels, examples, opts, decodings);
  const { index, decoding } = bestDecoding(decodings, all.map((s) => s.micro.f1));
  return { decoding, scores: all[index] };
}

/**
 * An honest estimate of the F1 a decoding chosen on dev gets: the examples are dealt into `folds` parts; for each
 * part the decoding is chosen (as tuneDecoding does) on the other parts and scored on that part; the held-out
 * predictions of all parts are scored together. predictions[d][k]: entities of example k under decodings[d].
 */
export function crossValidateDecoding(
  gold: Span[][],
  predictions: Entity[][][],
  decodings: Decoding[],
  foldOf: number[],
): { scores: Scores; chosen: Array<Required<Decoding>> } {
  const folds = Math.max(...foldOf) + 1;
  const pooled: Entity[][] = gold.map(() => []);
  const chosen: Array<Required<Decoding>> = [];
  for (let f = 0; f < folds; f++) {
    const rest = gold.flatMap((_, k) => (foldOf[k] === f ? [] : [k]));
    const f1s = predictions.map((byExample) => scoreEntities(rest.map((k) => gold[k]), rest.map((k) => byExample[k])).micro.f1);
    const { index, decoding } = bestDecoding(decodings, f1s);
    chosen.push(decoding);
    gold.forEach((_, k) => {
      if (foldOf[k] === f) pooled[k] = predictions[index][k];
    });
  }
  return { scores: scoreEntities(gold, pooled), chosen };
}
