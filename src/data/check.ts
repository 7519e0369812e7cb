/**
 * `gp data check`: what a corpus looks like to the model before any training time is spent on it. Pure analysis
 * of corpora already read (reading errors are the reader's DataErrors); findings worth acting on are collected in
 * `warnings`, the rest is description.
 *
 * Characters are code points (what a reader counts), offsets in examples are UTF-16 like everywhere in gp, and
 * token counts exclude [CLS]/[SEP] (they are added when comparing with maxLength, as the encoder does).
 */
import type { Example, Span } from '../types.js';
import type { ReadResult } from './corpus.js';
import type { TokenizerLike } from './encode.js';
import { alignSpan } from './tokenizer.js';

/** Nearest-rank statistics; null for a file without examples. */
export interface Distribution {
  min: number;
  median: number;
  p95: number;
  max: number;
}

export interface SpanRef {
  start: number;
  end: number;
  label: string;
  text: string;
}

/** One instance of a finding, located by the line its example starts on. */
export interface Instance {
  line: number;
  spans: SpanRef[];
  note?: string;
}

export interface Finding {
  count: number;
  examples: Instance[];
}

export interface FileCheck {
  file: string;
  format: string;
  scheme?: string;
  join?: string;
  examples: number;
  entities: number;
  perType: Record<string, number>;
  emptyTexts: number;
  /** Examples whose (non-empty) text already occurred earlier in the same file. */
  duplicateTexts: number;
  /** Non-empty texts the tokenizer turns into no tokens at all (the model sees nothing of them). */
  noTokens: Finding;
  /** Texts with U+FFFD, the mark of bytes that were not valid in some earlier decoding. */
  replacementChars: Finding;
  chars: Distribution | null;
  tokens: Distribution | null;
  /** Examples with more tokens than one window holds; they are cut into overlapping windows, not dropped. */
  overMaxLength: number;
  /** Pairs of spans where one contains the other (same extent with two labels included). */
  nested: Finding;
  /** Pairs of spans that cross: they overlap and neither contains the other. */
  overlapping: Finding;
  /** Entities the tokenizer cannot represent: a boundary inside a token, or no token in the span. */
  misaligned: Finding;
  /** Entities with more tokens than a window: no window holds them whole. */
  longerThanWindow: Finding;
  /** conll: tags of invalid sequences the reader repaired. */
  repairedTags: number;
  readerWarnings: string[];
}

/** Two files compared, in the order given (train first, by convention). */
export interface PairCheck {
  a: string;
  b: string;
  /** Distinct non-empty texts present in both. */
  sharedTexts: number;
  examples: Array<{ text: string; lineA: number; lineB: number }>;
  labelsOnlyInA: string[];
  labelsOnlyInB: string[];
}

export interface CheckReport {
  tokenizer: string;
  maxLength: number;
  /** Content tokens one window holds: maxLength less [CLS]/[SEP] when the tokenizer has them. */
  windowTokens: number;
  labels: string[];
  files: FileCheck[];
  pairs: PairCheck[];
  warnings: string[];
}

export interface CheckOptions {
  maxLength: number;
  /** Names the tokenizer in the report. */
  tokenizerSource: string;
  /** Instances kept per finding. Default 3. */
  keep?: number;
}

export type CheckTokenizer = Pick<TokenizerLike, 'encode' | 'clsId' | 'sepId'>;

export function checkCorpora(corpora: readonly ReadResult[], tokenizer: CheckTokenizer, opts: CheckOptions): CheckReport {
  const keep = opts.keep ?? 3;
  const windowTokens = opts.maxLength - (tokenizer.clsId !== undefined && tokenizer.sepId !== undefined ? 2 : 0);
  const files = corpora.map((corpus) => checkFile(corpus, tokenizer, windowTokens, keep));
  const pairs: PairCheck[] = [];
  for (let i = 0; i < corpora.length; i++) {
    for (let j = i + 1; j < corpora.length; j++) pairs.push(comparePair(corpora[i], corpora[j], keep));
  }
  const labels = [...new Set(files.flatMap((f) => Object.keys(f.perType)))].sort(compareStrings);
  const report: CheckReport = { tokenizer: opts.tokenizerSource, maxLength: opts.maxLength, windowTokens, labels, files, pairs, warnings: [] };
  report.warnings = collectWarnings(report);
  return report;
}

/** Nearest rank: the smallest value with at least p of the data at or below it. */
export function distribution(values: readonly number[]): Distribution | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p: number) => sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)];
  return { min: sorted[0], median: rank(0.5), p95: rank(0.95), max: sorted[sorted.length - 1] };
}

/** How two spans relate: nested (one inside the other), crossing, or apart. */
export function spanRelation(a: Span, b: Span): 'nested' | 'crossing' | 'apart' {
  if (a.end <= b.start || b.end <= a.start) return 'apart';
  if ((a.start <= b.start && b.end <= a.end) || (b.start <= a.start && a.end <= b.end)) return 'nested';
  return 'crossing';
}

function emptyFinding(): Finding {
  return { count: 0, examples: [] };
}

function record(finding: Finding, keep: number, instance: () => Instance): void {
  finding.count += 1;
  if (finding.examples.length < keep) finding.examples.push(instance());
}

function ref(example: Example, span: Span): SpanRef {
  return { start: span.start, end: span.end, label: span.label, text: example.text.slice(span.start, span.end) };
}

function lineOf(example: Example, index: number): number {
  return example.source?.line ?? index + 1;
}

function checkFile(corpus: ReadResult, tokenizer: CheckTokenizer, windowTokens: number, keep: number): FileCheck {
  const { examples, report } = corpus;
  const nested = emptyFinding();
  const overlapping = emptyFinding();
  const misaligned = emptyFinding();
  const longerThanWindow = emptyFinding();
  const noTokens = emptyFinding();
  const replacementChars = emptyFinding();
  const chars: number[] = [];
  const tokens: number[] = [];
  const seen = new Set<string>();
  let emptyTexts = 0;
  let duplicateTexts = 0;
  let overMaxLength = 0;

  examples.forEach((example, index) => {
    const line = lineOf(example, index);
    if (example.text === '') emptyTexts += 1;
    else if (seen.has(example.text)) duplicateTexts += 1;
    else seen.add(example.text);

    const { offsets } = tokenizer.encode(example.text);
    chars.push(codePoints(example.text));
    tokens.push(offsets.length);
    if (offsets.length > windowTokens) overMaxLength += 1;
    if (offsets.length === 0 && example.text !== '') record(noTokens, keep, () => ({ line, spans: [], note: clip(example.text) }));
    if (example.text.includes('\uFFFD')) record(replacementChars, keep, () => ({ line, spans: [], note: clip(example.text) }));

    const spans = [...example.spans].sort((a, b) => a.start - b.start || b.end - a.end);
    for (let i = 0; i < spans.length; i++) {
      for (let j = i + 1; j < spans.length && spans[j].start < spans[i].end; j++) {
        const target = spanRelation(spans[i], spans[j]) === 'nested' ? nested : overlapping;
        record(target, keep, () => ({ line, spans: [ref(example, spans[i]), ref(example, spans[j])] }));
      }
    }
    for (const span of example.spans) {
      const aligned = alignSpan(offsets, span.start, span.end);
      if (!aligned) {
        record(misaligned, keep, () => ({ line, spans: [ref(example, span)], note: misalignment(offsets, span) }));
      } else if (aligned.last - aligned.first + 1 > windowTokens) {
        record(longerThanWindow, keep, () => ({ line, spans: [ref(example, span)], note: `${aligned.last - aligned.first + 1} tokens` }));
      }
    }
  });

  return {
    file: report.file,
    format: report.format,
    ...(report.scheme && { scheme: report.scheme }),
    ...(report.join && { join: report.join }),
    examples: report.examples,
    entities: report.entities,
    perType: report.perType,
    emptyTexts,
    duplicateTexts,
    noTokens,
    replacementChars,
    chars: distribution(chars),
    tokens: distribution(tokens),
    overMaxLength,
    nested,
    overlapping,
    misaligned,
    longerThanWindow,
    repairedTags: report.repairedTags,
    readerWarnings: report.warnings,
  };
}

function misalignment(offsets: ReadonlyArray<readonly [number, number]>, span: Span): string {
  const straddles = offsets.find(([s, e]) => (s < span.start && span.start < e) || (s < span.end && span.end < e));
  return straddles ? `a boundary falls inside the token at [${straddles[0]}, ${straddles[1]})` : 'no token lies in the span';
}

function codePoints(text: string): number {
  let n = 0;
  for (const _ of text) n += 1;
  return n;
}

/** First line of each distinct non-empty text. */
function firstLines(examples: readonly Example[]): Map<string, number> {
  const lines = new Map<string, number>();
  examples.forEach((example, index) => {
    if (example.text !== '' && !lines.has(example.text)) lines.set(example.text, lineOf(example, index));
  });
  return lines;
}

function comparePair(a: ReadResult, b: ReadResult, keep: number): PairCheck {
  const linesA = firstLines(a.examples);
  const linesB = firstLines(b.examples);
  const shared = [...linesB.keys()].filter((text) => linesA.has(text));
  const labelsA = Object.keys(a.report.perType);
  const labelsB = Object.keys(b.report.perType);
  return {
    a: a.report.file,
    b: b.report.file,
    sharedTexts: shared.length,
    examples: shared.slice(0, keep).map((text) => ({ text, lineA: linesA.get(text)!, lineB: linesB.get(text)! })),
    labelsOnlyInA: labelsA.filter((l) => !labelsB.includes(l)),
    labelsOnlyInB: labelsB.filter((l) => !labelsA.includes(l)),
  };
}

function collectWarnings(report: CheckReport): string[] {
  const warnings: string[] = [];
  for (const f of report.files) {
    // The reader's warnings name their file already.
    warnings.push(...f.readerWarnings);
    if (f.noTokens.count) warnings.push(`${f.file}: ${f.noTokens.count} non-empty texts have no tokens`);
    if (f.replacementChars.count) warnings.push(`${f.file}: ${f.replacementChars.count} texts contain U+FFFD (damaged by an earlier decoding?)`);
    if (f.misaligned.count) warnings.push(`${f.file}: ${f.misaligned.count} entities the tokenizer cannot represent (they are lost in training)`);
    if (f.longerThanWindow.count) {
      warnings.push(`${f.file}: ${f.longerThanWindow.count} entities longer than a window of ${report.windowTokens} tokens (raise maxLength)`);
    }
    if (f.duplicateTexts) warnings.push(`${f.file}: ${f.duplicateTexts} texts repeat an earlier text of the same file`);
  }
  for (const p of report.pairs) {
    if (p.sharedTexts) warnings.push(`${p.a} and ${p.b} share ${p.sharedTexts} identical texts (train/dev leakage?)`);
    if (p.labelsOnlyInB.length) warnings.push(`${p.b} has labels ${p.a} lacks: ${p.labelsOnlyInB.join(', ')}`);
    if (p.labelsOnlyInA.length) warnings.push(`${p.a} has labels ${p.b} lacks: ${p.labelsOnlyInA.join(', ')}`);
  }
  return warnings;
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------- text output

/** The report as the tables `gp data check` prints. */
export function formatCheckReport(report: CheckReport): string {
  const names = shortNames(report.files.map((f) => f.file));
  const sections = [
    report.files
      .map((f) => `${f.file}: ${f.format}${f.scheme ? ` (${f.scheme}, join ${f.join})` : ''}, ${f.examples} examples, ${f.entities} entities`)
      .join('\n'),
    table(
      ['entities per type', ...names],
      [
        ...report.labels.map((label) => [label, ...report.files.map((f) => String(f.perType[label] ?? 0))]),
        ['total', ...report.files.map((f) => String(f.entities))],
      ],
    ),
    table(
      ['lengths', 'min', 'median', 'p95', 'max', `> ${report.maxLength} tokens`],
      report.files.flatMap((f, i) => [
        [`${names[i]} characters`, ...cells(f.chars), ''],
        [`${names[i]} tokens`, ...cells(f.tokens), String(f.overMaxLength)],
      ]),
    ) + `\n(tokens: ${report.tokenizer}; a text over ${report.maxLength} tokens is cut into overlapping windows)`,
    table(
      ['spans', ...names],
      [
        ['nested', ...report.files.map((f) => String(f.nested.count))],
        ['overlapping (crossing)', ...report.files.map((f) => String(f.overlapping.count))],
        ['boundary inside a token', ...report.files.map((f) => String(f.misaligned.count))],
        ['longer than a window', ...report.files.map((f) => String(f.longerThanWindow.count))],
        ['repaired tags', ...report.files.map((f) => String(f.repairedTags))],
        ['empty texts', ...report.files.map((f) => String(f.emptyTexts))],
        ['texts without tokens', ...report.files.map((f) => String(f.noTokens.count))],
        ['texts with U+FFFD', ...report.files.map((f) => String(f.replacementChars.count))],
        ['repeated texts', ...report.files.map((f) => String(f.duplicateTexts))],
      ],
    ),
    formatInstances(report),
    report.pairs.length ? formatPairs(report.pairs) : '',
    report.warnings.length ? `${report.warnings.length} warnings:\n${report.warnings.map((w) => `  ${w}`).join('\n')}` : 'no warnings',
  ];
  return sections.filter((s) => s !== '').join('\n\n');
}

function cells(d: Distribution | null): string[] {
  return d ? [d.min, d.median, d.p95, d.max].map(String) : ['-', '-', '-', '-'];
}

/** Base names, unless two files share one (train/a.json, dev/a.json): then the full paths. */
function shortNames(files: readonly string[]): string[] {
  const base = files.map((f) => f.replace(/^.*[\\/]/, ''));
  return new Set(base).size === base.length ? base : [...files];
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, col) => Math.max(h.length, ...rows.map((r) => r[col].length)));
  const render = (row: string[]) =>
    row.map((cell, col) => (col === 0 ? cell.padEnd(widths[col]) : cell.padStart(widths[col]))).join('  ').trimEnd();
  return [render(header), '-'.repeat(widths.reduce((a, b) => a + b + 2, -2)), ...rows.map(render)].join('\n');
}

function formatInstances(report: CheckReport): string {
  const lines: string[] = [];
  const kinds: Array<[string, (f: FileCheck) => Finding]> = [
    ['nested', (f) => f.nested],
    ['overlapping', (f) => f.overlapping],
    ['boundary inside a token', (f) => f.misaligned],
    ['longer than a window', (f) => f.longerThanWindow],
    ['no tokens', (f) => f.noTokens],
    ['U+FFFD', (f) => f.replacementChars],
  ];
  for (const [kind, pick] of kinds) {
    for (const f of report.files) {
      for (const instance of pick(f).examples) {
        const spans = instance.spans.map((s) => `${s.label} ${JSON.stringify(clip(s.text))} [${s.start}, ${s.end})`);
        const note = instance.note === undefined ? [] : [spans.length ? `(${instance.note})` : JSON.stringify(instance.note)];
        lines.push(`  ${kind}: ${f.file}:${instance.line}: ${[spans.join(' / '), ...note].filter(Boolean).join(' ')}`);
      }
    }
  }
  return lines.length ? `examples:\n${lines.join('\n')}` : '';
}

function formatPairs(pairs: readonly PairCheck[]): string {
  return pairs
    .map((p) => {
      const lines = [`${p.a} vs ${p.b}: ${p.sharedTexts} identical texts`];
      for (const e of p.examples) lines.push(`  ${JSON.stringify(clip(e.text))} (lines ${e.lineA} and ${e.lineB})`);
      if (p.labelsOnlyInA.length) lines.push(`  labels only in ${p.a}: ${p.labelsOnlyInA.join(', ')}`);
      if (p.labelsOnlyInB.length) lines.push(`  labels only in ${p.b}: ${p.labelsOnlyInB.join(', ')}`);
      return lines.join('\n');
    })
    .join('\n');
}

function clip(text: string, max = 40): string {
  const points = [...text];
  return points.length <= max ? text : `${points.slice(0, max - 1).join('')}…`;
}
