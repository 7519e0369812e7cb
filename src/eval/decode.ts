/**
 * From one sample's GlobalPointer logits to entities with character offsets.
 *
 * The head scores cell (h, i, j) of an [H, L, L] matrix as "tokens i..j, inclusive, form an entity of type h";
 * GlobalPointer's multilabel loss puts the decision boundary at logit 0, so every cell above the threshold is an
 * entity, and spans may nest or overlap unless the caller asks for flat decoding.
 * Character offsets are UTF-16 code-unit indices, end exclusive, as everywhere in gp.
 */
import { GpError } from '../errors.js';
import type { Entity } from '../types.js';

/** A decoded span in token positions of the model input (both ends inclusive); `score` is the raw logit. */
export interface TokenSpan {
  type: number;
  first: number;
  last: number;
  score: number;
}

export interface DecodeOptions {
  /** Keep cells whose logit is strictly greater than this. Default 0. */
  threshold?: number;
  /** Keep only spans that overlap no higher-scoring kept span of any type: for corpora annotated without nesting. */
  flat?: boolean;
  /** Positions 0..validLength-1 are real tokens; the rest of the padded length is ignored. Default: the padded length. */
  validLength?: number;
}

/**
 * The model masks padding and the lower triangle with −1e12 or −Infinity. No real logit comes near this, so cells
 * at or below it stay masked even when a caller passes a threshold lower still.
 */
const MASK_FLOOR = -1e11;

/**
 * All cells (type, first, last) with first ≤ last < validLength whose logit exceeds the threshold, ordered by
 * (first, last, type). `logits` is one sample's [numTypes, length, length] output, row-major.
 */
export function decodeSpans(
  logits: Float32Array,
  numTypes: number,
  length: number,
  opts: DecodeOptions = {},
): TokenSpan[] {
  const threshold = opts.threshold ?? 0;
  const validLength = opts.validLength ?? length;
  checkShape(logits, numTypes, length, validLength);
  if (Number.isNaN(threshold)) throw new GpError('decode threshold must be a number, got NaN');
  const spans = cellsAbove(logits, numTypes, length, validLength, Math.max(threshold, MASK_FLOOR)).sort(byPosition);
  return opts.flat ? keepNonOverlapping(spans, validLength) : spans;
}

function checkShape(logits: Float32Array, numTypes: number, length: number, validLength: number): void {
  if (!Number.isInteger(numTypes) || numTypes < 0 || !Number.isInteger(length) || length < 0) {
    throw new RangeError(`bad logits shape: numTypes=${numTypes}, length=${length}`);
  }
  if (logits.length !== numTypes * length * length) {
    throw new RangeError(`logits hold ${logits.length} values, expected ${numTypes}×${length}×${length}`);
  }
  if (!Number.isInteger(validLength) || validLength < 0 || validLength > length) {
    throw new RangeError(`validLength ${validLength} is outside 0..${length}`);
  }
}

/** One pass over the upper triangle of each type's plane; rows are contiguous, so the inner loop streams memory. */
function cellsAbove(
  logits: Float32Array,
  numTypes: number,
  length: number,
  validLength: number,
  cut: number,
): TokenSpan[] {
  const spans: TokenSpan[] = [];
  const plane = length * length;
  for (let type = 0; type < numTypes; type++) {
    for (let first = 0; first < validLength; first++) {
      const row = type * plane + first * length;
      for (let last = first; last < validLength; last++) {
        const score = logits[row + last];
        // NaN and −Infinity fail this comparison, so they are never returned.
        if (score > cut) spans.push({ type, first, last, score });
      }
    }
  }
  return spans;
}

/**
 * Greedy by score: a span survives if none of its tokens belongs to a span already kept. `spans` must be in
 * position order; that order breaks score ties and is kept in the output.
 */
function keepNonOverlapping(spans: TokenSpan[], validLength: number): TokenSpan[] {
  // Typed copies and an index sort: an untrained model puts half of all cells above the threshold, and sorting
  // and probing hundreds of thousands of objects is several times slower.
  const n = spans.length;
  const scores = new Float64Array(n);
  const firsts = new Int32Array(n);
  const lasts = new Int32Array(n);
  const byScore = new Uint32Array(n);
  for (let k = 0; k < n; k++) {
    scores[k] = spans[k].score;
    firsts[k] = spans[k].first;
    lasts[k] = spans[k].last;
    byScore[k] = k;
  }
  byScore.sort((a, b) => scores[b] - scores[a] || a - b);
  const taken = new Uint8Array(validLength);
  const kept: number[] = [];
  for (const k of byScore) {
    if (overlapsTaken(taken, firsts[k], lasts[k])) continue;
    taken.fill(1, firsts[k], lasts[k] + 1);
    kept.push(k);
  }
  return kept.sort((a, b) => a - b).map((k) => spans[k]);
}

function overlapsTaken(taken: Uint8Array, first: number, last: number): boolean {
  if (taken[first] === 1 || taken[last] === 1) return true;
  const next = taken.indexOf(1, first);
  return next !== -1 && next <= last;
}

function byPosition(a: TokenSpan, b: TokenSpan): number {
  return a.first - b.first || a.last - b.last || a.type - b.type;
}

/**
 * Maps token spans to character entities. `offsets[k]` is the [start, end) character range of model position
 * k + tokenBase, so tokenBase = 1 skips a leading [CLS] that has no entry in `offsets`.
 * Spans that touch a position without an offset (special tokens, padding) or cover no characters are dropped:
 * they cannot be entities. Token spans that land on the same characters and label (several tokens of one
 * character) become one entity with the highest score. Output is ordered by (start, end, label).
 */
export function tokenSpansToEntities(
  spans: TokenSpan[],
  offsets: Array<[number, number]>,
  text: string,
  labels: string[],
  tokenBase = 0,
): Entity[] {
  const entities: Entity[] = [];
  for (const span of spans) {
    const label = labels[span.type];
    if (label === undefined) {
      throw new RangeError(`span type ${span.type} has no label (the model has ${labels.length})`);
    }
    const from = offsets[span.first - tokenBase];
    const to = offsets[span.last - tokenBase];
    if (from === undefined || to === undefined) continue;
    const start = from[0];
    const end = to[1];
    if (end <= start) continue;
    entities.push({ start, end, label, text: text.slice(start, end), score: span.score });
  }
  return mergeIdentical(entities);
}

/** One window's predictions: the window covers characters [start, end) of the full text. */
export interface WindowPrediction {
  start: number;
  end: number;
  entities: Entity[];
}

/**
 * Merges the predictions of overlapping windows of one text (offsets already in the full text): each character
 * range is judged only by the window that sees it with the most context. Near a window's cut the model lacks
 * context and may predict a truncated entity ("New" for "New York" cut by the window end); a plain union would keep
 * such fragments, this merge drops them.
 *
 * For an entity's range, every window containing it is a candidate; its margin is the distance from the range
 * to the nearer cut of the window. The start of the earliest window and the end of the latest are the text's
 * own ends, not cuts, so they count as infinitely far. The candidate with the largest margin (the earliest on a
 * tie) decides: its prediction for that range is kept, other windows' predictions for it are dropped.
 * The windows must cover the text and be listed in text order.
 */
export function mergeWindowEntitiesByCentre(windows: WindowPrediction[]): Entity[] {
  const textStart = Math.min(...windows.map((w) => w.start));
  const textEnd = Math.max(...windows.map((w) => w.end));
  const margin = (w: WindowPrediction, e: Entity): number =>
    Math.min(w.start === textStart ? Infinity : e.start - w.start, w.end === textEnd ? Infinity : w.end - e.end);
  const kept: Entity[] = [];
  windows.forEach((window, index) => {
    for (const entity of window.entities) {
      if (entity.start < window.start || entity.end > window.end) {
        throw new RangeError(`entity [${entity.start}, ${entity.end}) lies outside its window [${window.start}, ${window.end})`);
      }
      if (bestWindow(windows, entity, margin) === index) kept.push(entity);
    }
  });
  return mergeIdentical(kept);
}

function bestWindow(
  windows: WindowPrediction[],
  entity: Entity,
  margin: (w: WindowPrediction, e: Entity) => number,
): number {
  let best = -1;
  let bestMargin = -Infinity;
  windows.forEach((w, index) => {
    if (w.start > entity.start || w.end < entity.end) return;
    const m = margin(w, entity);
    if (m > bestMargin) {
      best = index;
      bestMargin = m;
    }
  });
  return best;
}

function mergeIdentical(entities: Entity[]): Entity[] {
  const byKey = new Map<string, Entity>();
  for (const entity of entities) {
    // start and end are numbers, so the first two colons delimit them whatever the label contains.
    const key = `${entity.start}:${entity.end}:${entity.label}`;
    const seen = byKey.get(key);
    if (seen === undefined || entity.score > seen.score) byKey.set(key, entity);
  }
  return [...byKey.values()].sort(byCharPosition);
}

function byCharPosition(a: Entity, b: Entity): number {
  return a.start - b.start || a.end - b.end || compareStrings(a.label, b.label);
}

/** Code-unit order: unlike localeCompare, the same on every machine. */
function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
