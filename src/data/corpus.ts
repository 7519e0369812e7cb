/**
 * Corpus readers (CLUENER JSON lines, canonical JSONL, one-token-per-line "conll") and the JSONL writer.
 * Every reader yields `Example`s with UTF-16 character spans, end exclusive, and `source` = the 1-based line
 * where the example starts. Every problem in the data is a DataError naming file:line.
 *
 * Decisions worth knowing:
 * - Nested and overlapping spans are kept (GlobalPointer scores every span independently).
 * - Exact duplicate spans (same start, end, label) are dropped and counted in a warning.
 * - A JSON record with empty `text` is kept (with a warning) so that outputs stay line-aligned with inputs.
 *   In conll a sentence has at least one token: a run of break lines is one break.
 * - Blank (whitespace-only) lines are skipped in JSON formats and are sentence breaks in conll.
 * - A UTF-8 BOM at the start is dropped; `\r` before `\n` is stripped.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join as joinPath } from 'node:path';
import { DataError, GpError } from '../errors.js';
import type { Example, Span } from '../types.js';
import { type ConcreteScheme, type Scheme, type Tag, decodeTags, detectScheme, prefixProblem, splitTag } from './bio.js';

export { SCHEMES, type ConcreteScheme, type Scheme } from './bio.js';

export const FORMATS = ['auto', 'cluener', 'jsonl', 'conll'] as const;
export const JOINS = ['auto', 'none', 'space'] as const;
export const INVALID_TAGS = ['repair', 'reject'] as const;
export type Format = (typeof FORMATS)[number];
export type Join = (typeof JOINS)[number];
export type InvalidTags = (typeof INVALID_TAGS)[number];

export interface ReadOptions {
  /** `auto`: a file whose first non-blank line starts with `{` is JSON (CLUENER if its records use `label`, else JSONL); anything else is conll. */
  format?: Format;
  /** conll only. `auto` detects from the tags: M- → bmes; E-/S-/L-/U- → bioes; I- but no B- → iob1; else bio. */
  scheme?: Scheme;
  /**
   * conll only: how tokens become text. `auto`: no separator when at least 90% of the file's tokens are one
   * character (code point) long — char-per-line corpora such as Resume, Weibo, People's Daily — else one space.
   */
  join?: Join;
  /**
   * conll only: the first column ends in a number to remove (Weibo's `科0`: the character's position in its
   * word). The whole trailing run of ASCII digits goes, since positions reach 10 and more (`p10`); when the
   * token is nothing but digits its first character is the token (`110` is `1` at position 10).
   */
  stripTokenDigit?: boolean;
  /** conll only: `repair` an invalid tag sequence (and count it) or `reject` the file with a DataError. */
  invalidTags?: InvalidTags;
}

export const READ_DEFAULTS: Readonly<Required<ReadOptions>> = {
  format: 'auto',
  scheme: 'auto',
  join: 'auto',
  stripTokenDigit: false,
  invalidTags: 'repair',
};

export interface ReadReport {
  file: string;
  format: Exclude<Format, 'auto'>;
  /** conll only: the scheme used (detected when `auto`). */
  scheme?: ConcreteScheme;
  /** conll only: the join used (decided from the data when `auto`). */
  join?: Exclude<Join, 'auto'>;
  examples: number;
  entities: number;
  perType: Record<string, number>;
  /** conll only: tags where an invalid sequence was repaired (always 0 under `reject`). */
  repairedTags: number;
  warnings: string[];
}

export interface ReadResult {
  examples: Example[];
  report: ReadReport;
}

/** Reads a corpus file; see `ReadOptions` for formats and `parseCorpus` for what is checked. */
export function readCorpus(file: string, opts: ReadOptions = {}): ReadResult {
  return parseCorpus(decodeUtf8(readBytes(file), file), file, opts);
}

/** Parses corpus content already in memory (a leading BOM is ignored); `file` only names it in errors and `source`. */
export function parseCorpus(content: string, file: string, opts: ReadOptions = {}): ReadResult {
  const options = { ...READ_DEFAULTS, ...opts };
  const lines = content.replace(/^\uFEFF/, '').split('\n').map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
  const format = options.format === 'auto' ? sniffFormat(lines) : options.format;
  const notes = new Notes();
  let parsed: Parsed;
  if (format === 'conll') parsed = readConll(lines, file, options, notes);
  else parsed = { examples: readJsonRecords(lines, file, format, notes), repairedTags: 0 };

  const perType: Record<string, number> = {};
  let entities = 0;
  for (const example of parsed.examples) {
    for (const span of example.spans) perType[span.label] = (perType[span.label] ?? 0) + 1;
    entities += example.spans.length;
  }
  if (parsed.examples.length === 0) notes.add('no examples in the file', 1);
  const report: ReadReport = {
    file,
    format,
    ...(parsed.scheme && { scheme: parsed.scheme }),
    ...(parsed.join && { join: parsed.join }),
    examples: parsed.examples.length,
    entities,
    perType: Object.fromEntries(Object.entries(perType).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    repairedTags: parsed.repairedTags,
    warnings: notes.warnings(file),
  };
  return { examples: parsed.examples, report };
}

/**
 * Strict UTF-8 decoding (a BOM is dropped). On invalid bytes the error names the first bad line; finding it
 * costs a second pass, paid only on failure.
 */
export function decodeUtf8(bytes: Uint8Array, file: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const strict = new TextDecoder('utf-8', { fatal: true });
    let start = 0;
    for (let line = 1; start <= bytes.length; line++) {
      const newline = bytes.indexOf(0x0a, start);
      const end = newline < 0 ? bytes.length : newline;
      try {
        strict.decode(bytes.subarray(start, end));
      } catch {
        throw new DataError(file, line, 'invalid UTF-8');
      }
      start = end + 1;
    }
    // Not reached (a bad sequence never straddles a newline byte); the compiler cannot know that.
    throw new DataError(file, 1, 'invalid UTF-8');
  }
}

/** One canonical JSONL line (no newline): entities carry their `text`, and `score` when the span has one. */
export function formatJsonlLine(example: Example): string {
  const entities = example.spans.map((span) => {
    const score = (span as Span & { score?: unknown }).score;
    return {
      start: span.start,
      end: span.end,
      label: span.label,
      text: example.text.slice(span.start, span.end),
      ...(typeof score === 'number' && { score }),
    };
  });
  return JSON.stringify({ text: example.text, entities });
}

/** Writes canonical JSONL atomically: a temp file in the same directory, then a rename over `path`. */
export function writeJsonl(path: string, examples: Iterable<Example>): void {
  let body = '';
  for (const example of examples) body += `${formatJsonlLine(example)}\n`;
  const temp = joinPath(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    writeFileSync(temp, body, 'utf8');
    renameSync(temp, path);
  } catch (error) {
    rmSync(temp, { force: true });
    throw new GpError(`cannot write ${path}: ${(error as Error).message}`, 73);
  }
}

interface Parsed {
  examples: Example[];
  scheme?: ConcreteScheme;
  join?: Exclude<Join, 'auto'>;
  repairedTags: number;
}

/** Counts recurring conditions and where each first happened, so one warning line can stand for many. */
class Notes {
  private readonly seen = new Map<string, { count: number; line: number }>();

  add(what: string, line: number): void {
    const entry = this.seen.get(what);
    if (entry) entry.count++;
    else this.seen.set(what, { count: 1, line });
  }

  warnings(file: string): string[] {
    return [...this.seen].map(([what, { count, line }]) =>
      count === 1 ? `${what} (${file}:${line})` : `${count}× ${what} (first at ${file}:${line})`,
    );
  }
}

function readBytes(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new GpError(`cannot read ${file}: ${(error as Error).message}`, 66);
  }
}

/**
 * JSON when the first non-blank line starts with `{`; then the first record that has `label` or `entities`
 * decides, since unlabelled records (CLUENER's test split) fit both. Unparsable lines are left to the reader.
 */
function sniffFormat(lines: readonly string[]): Exclude<Format, 'auto'> {
  const first = lines.find((line) => line.trim() !== '');
  if (first === undefined || !first.trimStart().startsWith('{')) return 'conll';
  for (const line of lines) {
    if (line.trim() === '') continue;
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch {
      break;
    }
    if (isObject(record) && 'entities' in record) return 'jsonl';
    if (isObject(record) && 'label' in record) return 'cluener';
  }
  return 'jsonl';
}

// ---------------------------------------------------------------------------------------------- JSON lines

function readJsonRecords(lines: readonly string[], file: string, format: 'cluener' | 'jsonl', notes: Notes): Example[] {
  const examples: Example[] = [];
  lines.forEach((raw, index) => {
    if (raw.trim() === '') return;
    const line = index + 1;
    const fail: Fail = (problem) => {
      throw new DataError(file, line, problem);
    };
    let record: unknown;
    try {
      record = JSON.parse(raw);
    } catch (error) {
      fail(`malformed JSON: ${(error as Error).message}`);
    }
    if (!isObject(record)) fail(`expected a JSON object, found ${kind(record)}`);
    if (!('text' in record)) fail('missing "text"');
    const text = record.text;
    if (typeof text !== 'string') fail(`"text" must be a string, found ${kind(text)}`);
    if (text === '') notes.add('example with empty text kept', line);

    const spans = format === 'cluener' ? cluenerSpans(record, text, fail, notes, line) : jsonlSpans(record, text, fail, notes, line);
    examples.push({ text, spans: dedupe(spans, notes, line), source: { file, line } });
  });
  return examples;
}

type Fail = (problem: string) => never;

/** CLUENER offsets are inclusive and count code points (the data was made in Python); spans are sorted by position. */
function cluenerSpans(record: Record<string, unknown>, text: string, fail: Fail, notes: Notes, line: number): Span[] {
  if (!('label' in record)) {
    if ('entities' in record) fail('has "entities" but no "label": canonical JSONL, not CLUENER');
    notes.add('record without "label" read as unlabelled', line);
    return [];
  }
  const label = record.label;
  if (!isObject(label)) fail(`"label" must be an object {type: {surface: [[start, end], …]}}, found ${kind(label)}`);
  const toUtf16 = codePointOffsets(text);
  const length = toUtf16.length - 1;
  const spans: Span[] = [];
  for (const [type, surfaces] of Object.entries(label)) {
    if (type === '') fail('empty type name in "label"');
    const at = `label[${JSON.stringify(type)}]`;
    if (!isObject(surfaces)) fail(`${at} must be an object {surface: [[start, end], …]}, found ${kind(surfaces)}`);
    for (const [surface, positions] of Object.entries(surfaces)) {
      const where = `${at}[${JSON.stringify(surface)}]`;
      if (!Array.isArray(positions)) fail(`${where} must be a list of [start, end] pairs, found ${kind(positions)}`);
      positions.forEach((pair: unknown, k) => {
        const here = `${where}[${k}]`;
        if (!Array.isArray(pair) || pair.length !== 2) fail(`${here} must be a [start, end] pair, found ${JSON.stringify(pair)}`);
        const [s, e]: unknown[] = pair;
        if (!isInteger(s) || !isInteger(e)) fail(`${here} offsets must be integers, found ${JSON.stringify(pair)}`);
        if (s > e) fail(`${here} = [${s}, ${e}]: start > end (CLUENER ends are inclusive)`);
        if (s < 0 || e >= length) fail(`${here} = [${s}, ${e}] is out of range for a text of ${length} characters`);
        const span = { start: toUtf16[s], end: toUtf16[e + 1], label: type };
        const slice = text.slice(span.start, span.end);
        if (slice !== surface) fail(`${here} = [${s}, ${e}] covers ${JSON.stringify(slice)}, not the surface ${JSON.stringify(surface)}`);
        spans.push(span);
      });
    }
  }
  return spans.sort((a, b) => a.start - b.start || a.end - b.end || (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
}

/** `result[i]` is the UTF-16 offset of code point `i`; the last entry is `text.length`. */
function codePointOffsets(text: string): number[] {
  const offsets: number[] = [];
  let offset = 0;
  for (const char of text) {
    offsets.push(offset);
    offset += char.length;
  }
  offsets.push(offset);
  return offsets;
}

/** Canonical JSONL: UTF-16 offsets, end exclusive, in file order. */
function jsonlSpans(record: Record<string, unknown>, text: string, fail: Fail, notes: Notes, line: number): Span[] {
  if (!('entities' in record)) {
    if ('label' in record) fail('has "label" but no "entities": CLUENER, not canonical JSONL');
    notes.add('record without "entities" read as unlabelled', line);
    return [];
  }
  const entities = record.entities;
  if (!Array.isArray(entities)) fail(`"entities" must be a list, found ${kind(entities)}`);
  return entities.map((entity: unknown, k): Span => {
    const at = `entities[${k}]`;
    if (!isObject(entity)) fail(`${at} must be an object {start, end, label}, found ${kind(entity)}`);
    const { start, end, label } = entity;
    if (!isInteger(start)) fail(`${at}.start must be an integer, found ${JSON.stringify(start) ?? 'nothing'}`);
    if (!isInteger(end)) fail(`${at}.end must be an integer, found ${JSON.stringify(end) ?? 'nothing'}`);
    if (typeof label !== 'string' || label === '') fail(`${at}.label must be a non-empty string, found ${JSON.stringify(label) ?? 'nothing'}`);
    if (start >= end) fail(`${at}: start ${start} >= end ${end}`);
    if (start < 0 || end > text.length) fail(`${at} = [${start}, ${end}) is out of range for a text of length ${text.length}`);
    const slice = text.slice(start, end);
    if ('text' in entity && entity.text !== slice) fail(`${at}.text is ${JSON.stringify(entity.text)} but text[${start}:${end}] is ${JSON.stringify(slice)}`);
    if ('score' in entity && !(typeof entity.score === 'number' && Number.isFinite(entity.score))) {
      fail(`${at}.score must be a finite number, found ${JSON.stringify(entity.score)}`);
    }
    return { start, end, label };
  });
}

function dedupe(spans: Span[], notes: Notes, line: number): Span[] {
  const seen = new Set<string>();
  return spans.filter((span) => {
    const key = `${span.start}:${span.end}:${span.label}`;
    if (seen.has(key)) {
      notes.add('duplicate span dropped', line);
      return false;
    }
    seen.add(key);
    return true;
  });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isInteger(value: unknown): value is number {
  return Number.isInteger(value);
}

function kind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${JSON.stringify(value)}`;
}

// ---------------------------------------------------------------------------------------------- conll

interface Row {
  token: string;
  tag: Tag;
  line: number;
}

function readConll(lines: readonly string[], file: string, options: Required<ReadOptions>, notes: Notes): Parsed {
  const sentences = conllSentences(lines, file, options.stripTokenDigit);
  const rows = sentences.flat();
  const scheme = options.scheme === 'auto' ? detectScheme(new Set(rows.map((row) => row.tag.prefix))) : options.scheme;
  for (const row of rows) {
    const problem = prefixProblem(row.tag, scheme);
    if (problem) throw new DataError(file, row.line, problem);
  }
  const join = options.join === 'auto' ? autoJoin(rows) : options.join;
  if (!options.stripTokenDigit && rows.length > 0 && rows.every((row) => /[0-9]$/.test(row.token))) {
    notes.add('every token ends with a digit (Weibo-style segmentation marks?): consider stripTokenDigit', rows[0].line);
  }

  let repairedTags = 0;
  const examples = sentences.map((sentence): Example => {
    const { spans, problems } = decodeTags(
      sentence.map((row) => row.tag),
      scheme,
    );
    if (problems.length > 0 && options.invalidTags === 'reject') {
      throw new DataError(file, sentence[problems[0].index].line, problems[0].problem);
    }
    for (const index of new Set(problems.map((p) => p.index))) {
      repairedTags++;
      notes.add(`invalid tag sequence repaired${options.scheme === 'auto' && scheme === 'bio' ? ' (set scheme iob1 if the file is IOB1)' : ''}`, sentence[index].line);
    }
    const { text, offsets } = joinTokens(
      sentence.map((row) => row.token),
      join,
    );
    return {
      text,
      spans: spans.map((span) => ({ start: offsets[span.start].start, end: offsets[span.end - 1].end, label: span.label })),
      source: { file, line: sentence[0].line },
    };
  });
  return { examples, scheme, join, repairedTags };
}

/**
 * Groups token lines into sentences. Columns are split on tabs when the first token line has a tab, else on
 * runs of spaces; the token is the first column and the tag the last (middle columns, as in CoNLL-2003, are
 * ignored).
 */
function conllSentences(lines: readonly string[], file: string, stripTokenDigit: boolean): Row[][] {
  const firstTokenLine = lines.findIndex((line) => line.trim() !== '');
  const separator = firstTokenLine >= 0 && lines[firstTokenLine].includes('\t') ? '\t' : / +/;
  const separatorName = separator === '\t' ? 'a tab' : 'spaces';
  const sentences: Row[][] = [];
  let current: Row[] = [];
  lines.forEach((raw, index) => {
    const line = index + 1;
    if (raw.trim() === '') {
      if (current.length > 0) sentences.push(current);
      current = [];
      return;
    }
    const columns = raw.trimEnd().split(separator);
    if (columns.length < 2) {
      throw new DataError(file, line, `one column ${JSON.stringify(raw)}: expected a token and a tag separated by ${separatorName} (as on line ${firstTokenLine + 1})`);
    }
    let token = columns[0];
    if (token === '') throw new DataError(file, line, `empty token in ${JSON.stringify(raw)}`);
    if (stripTokenDigit) {
      if (!/[0-9]$/.test(token)) throw new DataError(file, line, `token ${JSON.stringify(token)} has no trailing digit to strip (stripTokenDigit)`);
      token = token.replace(/[0-9]+$/, '') || String.fromCodePoint(token.codePointAt(0) as number);
    }
    const rawTag = columns[columns.length - 1].trim();
    const tag = splitTag(rawTag);
    if (!tag) throw new DataError(file, line, `malformed tag ${JSON.stringify(rawTag)}: expected O or PREFIX-label such as B-PER`);
    current.push({ token, tag, line });
  });
  if (current.length > 0) sentences.push(current);
  return sentences;
}

function autoJoin(rows: readonly Row[]): 'none' | 'space' {
  const singles = rows.filter((row) => row.token.length === 1 || [...row.token].length === 1).length;
  return rows.length > 0 && singles >= 0.9 * rows.length ? 'none' : 'space';
}

function joinTokens(tokens: readonly string[], join: 'none' | 'space'): { text: string; offsets: { start: number; end: number }[] } {
  const separator = join === 'space' ? ' ' : '';
  const offsets: { start: number; end: number }[] = [];
  let position = 0;
  for (const token of tokens) {
    offsets.push({ start: position, end: position + token.length });
    position += token.length + separator.length;
  }
  return { text: tokens.join(separator), offsets };
}
