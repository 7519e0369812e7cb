/**
 * Entity-level scores: a predicted span counts only if (start, end, label) match a gold span exactly.
 *
 * Empty cases: a ratio whose denominator is 0 is 0. So a type never predicted has precision 0, a type absent from
 * gold has recall 0, and a corpus with no gold and no predicted spans scores P = R = F1 = 0 (not 1).
 */
import { GpError } from '../errors.js';
import type { Span } from '../types.js';

export interface PRF {
  precision: number;
  recall: number;
  f1: number;
  tp: number;
  fp: number;
  fn: number;
  /** Gold spans of this type: tp + fn. */
  support: number;
}

export interface Scores {
  micro: PRF;
  /** Every label seen in gold or in predictions, in code-unit order of the label. */
  perType: Record<string, PRF>;
}

interface Counts {
  tp: number;
  fp: number;
  fn: number;
}

/**
 * Scores predictions against gold, sample by sample (gold[k] pairs with pred[k]). A span listed twice in one
 * sample counts once, on either side.
 */
export function scoreEntities(gold: Span[][], pred: Span[][]): Scores {
  if (gold.length !== pred.length) {
    throw new GpError(`cannot score: ${gold.length} gold samples but ${pred.length} predicted`);
  }
  const counts = new Map<string, Counts>();
  gold.forEach((goldSpans, k) => countSample(goldSpans, pred[k], counts));
  const types = [...counts.entries()].sort(([a], [b]) => compareStrings(a, b));
  const total = types.reduce((sum, [, c]) => addCounts(sum, c), { tp: 0, fp: 0, fn: 0 });
  return {
    micro: toPRF(total),
    perType: Object.fromEntries(types.map(([label, c]) => [label, toPRF(c)])),
  };
}

function countSample(gold: Span[], pred: Span[], counts: Map<string, Counts>): void {
  const goldKeys = uniqueByKey(gold);
  const predKeys = uniqueByKey(pred);
  for (const [key, label] of predKeys) bump(counts, label, goldKeys.has(key) ? 'tp' : 'fp');
  for (const [key, label] of goldKeys) if (!predKeys.has(key)) bump(counts, label, 'fn');
}

/** Key → label; start and end are numbers, so the first two colons delimit them whatever the label contains. */
function uniqueByKey(spans: Span[]): Map<string, string> {
  return new Map(spans.map((s) => [`${s.start}:${s.end}:${s.label}`, s.label]));
}

function bump(counts: Map<string, Counts>, label: string, field: keyof Counts): void {
  let c = counts.get(label);
  if (c === undefined) {
    c = { tp: 0, fp: 0, fn: 0 };
    counts.set(label, c);
  }
  c[field] += 1;
}

function addCounts(a: Counts, b: Counts): Counts {
  return { tp: a.tp + b.tp, fp: a.fp + b.fp, fn: a.fn + b.fn };
}

function ratio(numerator: number, denominator: number): number {
  return denominator === 0 ? 0 : numerator / denominator;
}

/** F1 as 2tp / (2tp + fp + fn): equal to 2PR / (P + R), and defined whenever that is. */
function toPRF({ tp, fp, fn }: Counts): PRF {
  return {
    precision: ratio(tp, tp + fp),
    recall: ratio(tp, tp + fn),
    f1: ratio(2 * tp, 2 * tp + fp + fn),
    tp,
    fp,
    fn,
    support: tp + fn,
  };
}

/** Unweighted mean of the per-type F1 scores (types only in predictions count, with F1 0); 0 when there are none. */
export function macroF1(scores: Scores): number {
  const f1s = Object.values(scores.perType).map((s) => s.f1);
  return f1s.length === 0 ? 0 : f1s.reduce((a, b) => a + b, 0) / f1s.length;
}

const HEADER = ['type', 'precision', 'recall', 'f1', 'support'];

/**
 * A plain-text table for the terminal: one row per type, then the micro average under a rule.
 * Widths count UTF-16 code units, so labels in wide scripts may misalign.
 */
export function formatScoresTable(scores: Scores): string {
  const rows = Object.entries(scores.perType).map(([label, s]) => tableRow(label, s));
  const micro = tableRow('micro', scores.micro);
  const widths = HEADER.map((h, col) => Math.max(h.length, ...[...rows, micro].map((r) => r[col].length)));
  const rule = '-'.repeat(widths.reduce((a, b) => a + b, 0) + 2 * (widths.length - 1));
  const render = (cells: string[]): string =>
    cells.map((cell, col) => (col === 0 ? cell.padEnd(widths[col]) : cell.padStart(widths[col]))).join('  ');
  return [render(HEADER), rule, ...rows.map(render), rule, render(micro)].join('\n');
}

function tableRow(label: string, s: PRF): string[] {
  return [label, s.precision.toFixed(4), s.recall.toFixed(4), s.f1.toFixed(4), String(s.support)];
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
