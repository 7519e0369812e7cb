/**
 * Token → character alignment. Tokenizers.js returns token strings but no offsets, so we recover them the way
 * bert4keras does: normalise the original text piece by piece with the tokenizer's own normalizer, remembering
 * which original characters produced each normalised character, then walk the tokens through that stream.
 *
 * Offsets are UTF-16 code-unit indices into the original text (what JS strings index), `end` exclusive.
 */

export type Offset = [number, number];

export interface RematchOptions {
  /**
   * The tokenizer's normalizer applied to one cluster: a code point with the combining marks that follow it, or a
   * single code point of such a cluster. Whitespace in its output (e.g. the spaces BERT puts around CJK) separates
   * words and never belongs to a token.
   */
  normalize: (cluster: string) => string;
  /** WordPiece's continuing-subword prefix (`##`), stripped from tokens before matching. */
  continuingPrefix: string;
  unkToken: string;
  /**
   * Added tokens ([CLS], [SEP], [MASK], …). They are matched verbatim in the original text, where the tokenizer
   * also finds them; one absent from the text (a post-processor's [CLS]) gets an empty offset.
   */
  addedTokens: ReadonlySet<string>;
}

/** The normalised text with, per UTF-16 unit, the original range [from, to) that produced it. */
interface NormalizedView {
  norm: string;
  from: number[];
  to: number[];
}

const CLUSTER = /\P{M}\p{M}*|\p{M}+/gu;
// BERT's notion of punctuation: Unicode P* plus every ASCII symbol. Each is a word of its own.
const PUNCT = /^[\p{P}\u0021-\u002F\u003A-\u0040\u005B-\u0060\u007B-\u007E]$/u;
const SPACE = /^\s$/u;

function isSpace(unit: string): boolean {
  const c = unit.charCodeAt(0);
  return c === 32 || (c >= 9 && c <= 13) || (c > 127 && SPACE.test(unit));
}

function codePointAt(s: string, i: number): string {
  const c = s.codePointAt(i);
  return c === undefined ? '' : String.fromCodePoint(c);
}

function codePointBefore(s: string, i: number): string {
  if (i <= 0) return '';
  const low = s.charCodeAt(i - 1);
  const pair = low >= 0xdc00 && low <= 0xdfff && i >= 2;
  return codePointAt(s, pair ? i - 2 : i - 1);
}

const isPunct = (cp: string): boolean => cp !== '' && PUNCT.test(cp);

/**
 * Normalises cluster by cluster. A cluster's code points are normalised one by one so that, say, a Devanagari
 * vowel sign keeps its own range; a mark the normalizer deletes (a stripped accent) joins the range of the character
 * before it, so `é` written as e + U+0301 stays inside its token. Only when normalising the whole cluster differs
 * from the pieces (NFC composing e + U+0301) does the cluster map as one unit.
 */
function normalizedView(text: string, normalize: (s: string) => string): NormalizedView {
  const parts: string[] = [];
  const from: number[] = [];
  const to: number[] = [];
  const emit = (s: string, start: number, end: number): void => {
    parts.push(s);
    for (let k = 0; k < s.length; k++) {
      from.push(start);
      to.push(end);
    }
  };
  for (const match of text.matchAll(CLUSTER)) {
    const cluster = match[0];
    const start = match.index;
    if (cluster.length === 1 || (cluster.length === 2 && cluster.codePointAt(0)! > 0xffff)) {
      emit(normalize(cluster), start, start + cluster.length);
      continue;
    }
    const codePoints = [...cluster];
    const pieces = codePoints.map(normalize);
    if (pieces.join('') !== normalize(cluster)) {
      emit(normalize(cluster), start, start + cluster.length);
      continue;
    }
    let pos = start;
    let lastEmitted = -1;
    codePoints.forEach((cp, k) => {
      const end = pos + cp.length;
      if (pieces[k] !== '') {
        lastEmitted = to.length;
        emit(pieces[k], pos, end);
      } else if (lastEmitted >= 0) {
        to.fill(end, lastEmitted);
      }
      pos = end;
    });
  }
  return { norm: parts.join(''), from, to };
}

/** Where a word may begin: the pre-tokenizer splits at whitespace and around punctuation. */
function isWordStart(norm: string, q: number): boolean {
  return q === 0 || isSpace(norm[q - 1]) || isPunct(codePointBefore(norm, q)) || isPunct(codePointAt(norm, q));
}

function isWordEnd(norm: string, p: number): boolean {
  return p === norm.length || isSpace(norm[p]) || isPunct(codePointAt(norm, p)) || isPunct(codePointBefore(norm, p));
}

/**
 * Where `word` occurs next as a whole word at or after `from`. The pending [UNK]s before it own whole words, one of
 * which may well begin like it. Failing that (a pre-tokenizer that splits more than BERT's), its next occurrence.
 */
function findWord(norm: string, word: string, from: number, boundary: number): number {
  let loose = -1;
  for (let q = norm.indexOf(word, from); q >= 0; q = norm.indexOf(word, q + 1)) {
    if ((q === boundary || isWordStart(norm, q)) && isWordEnd(norm, q + word.length)) return q;
    if (loose < 0) loose = q;
  }
  return loose;
}

/** Original ranges of the words in normalised units [lo, hi): split at whitespace, punctuation alone. */
function wordsIn(view: NormalizedView, lo: number, hi: number): Offset[] {
  const words: Offset[] = [];
  let open = -1;
  const close = (last: number): void => {
    if (open >= 0) words.push([view.from[open], view.to[last]]);
    open = -1;
  };
  for (let u = lo; u < hi; ) {
    const cp = codePointAt(view.norm, u);
    const next = u + cp.length;
    if (isSpace(view.norm[u])) {
      close(u - 1);
    } else if (isPunct(cp)) {
      close(u - 1);
      words.push([view.from[u], view.to[next - 1]]);
    } else if (open < 0) {
      open = u;
    }
    u = next;
  }
  close(hi - 1);
  return words;
}

type Pending = { index: number; surface: boolean };

/**
 * Gives the pending tokens the words of a gap. [UNK] (and any token we failed to place) stands for whole words:
 * one word each, the last taking whatever is left; a token with no word, and an added token absent from the text,
 * gets an empty offset where the previous token ended.
 */
function settle(pending: Pending[], words: Offset[], offsets: Offset[], origin: number): void {
  const surfaced = pending.filter((p) => p.surface).length;
  let w = 0;
  let seen = 0;
  let at = origin;
  for (const p of pending) {
    if (p.surface && w < words.length) {
      seen += 1;
      const take = seen === surfaced ? words.length - w : 1;
      offsets[p.index] = [words[w][0], words[w + take - 1][1]];
      w += take;
      at = offsets[p.index][1];
    } else {
      offsets[p.index] = [at, at];
    }
  }
  pending.length = 0;
}

/** Makes offsets monotone, non-overlapping and within [0, length], whatever happened upstream. */
function sanitize(offsets: Offset[], length: number): Offset[] {
  let prev = 0;
  return offsets.map(([s, e]) => {
    const start = Math.min(Math.max(s, prev), length);
    const end = Math.min(Math.max(e, start), length);
    prev = end;
    return [start, end];
  });
}

function firstUnitFrom(view: NormalizedView, orig: number, u: number): number {
  while (u < view.from.length && view.from[u] < orig) u++;
  return u;
}

function skipSpaces(s: string, i: number): number {
  while (i < s.length && isSpace(s[i])) i++;
  return i;
}

const onlySpaces = (s: string, lo: number, hi: number): boolean => skipSpaces(s, lo) >= hi;

/**
 * UTF-16 offsets in `text` of each of `tokens` (as the tokenizer produced them from `text`). Never throws: a token
 * that cannot be found is treated like [UNK]; the result is always monotone, non-overlapping and within the text.
 */
export function rematch(text: string, tokens: readonly string[], opts: RematchOptions): Offset[] {
  const view = normalizedView(text, opts.normalize);
  const { norm } = view;
  const offsets: Offset[] = tokens.map(() => [0, 0]);
  const pending: Pending[] = [];
  let cur = 0; // next normalised unit to consume
  let lastEnd = 0; // original index where the last placed token ended
  let boundary = 0; // a word always starts right after an added token

  const place = (index: number, lo: number, hi: number, start: number, end: number): void => {
    settle(pending, wordsIn(view, cur, lo), offsets, lastEnd);
    offsets[index] = [start, end];
    cur = hi;
    lastEnd = end;
  };

  // Whether pending tokens own words still ahead, which a search may skip over to find the next token.
  const owed = (): boolean => pending.some((p) => p.surface);
  const prefix = opts.continuingPrefix;
  const isContinuing = (t: string): boolean => t.length > prefix.length && t.startsWith(prefix);
  // The normalised word that tokens[i] begins: it and the continuing pieces after it.
  const wordFrom = (i: number): string => {
    let word = tokens[i];
    for (let j = i + 1; j < tokens.length && isContinuing(tokens[j]); j++) word += tokens[j].slice(prefix.length);
    return word;
  };

  tokens.forEach((token, index) => {
    if (token === opts.unkToken) {
      pending.push({ index, surface: true });
      return;
    }
    if (opts.addedTokens.has(token)) {
      const at = text.indexOf(token, lastEnd);
      const lo = at < 0 ? -1 : firstUnitFrom(view, at, cur);
      if (at < 0 || (!owed() && !onlySpaces(norm, cur, lo))) {
        pending.push({ index, surface: false });
        return;
      }
      const end = at + token.length;
      place(index, lo, firstUnitFrom(view, end, lo), at, end);
      boundary = cur;
      return;
    }
    const continuing = isContinuing(token);
    const piece = continuing ? token.slice(prefix.length) : token;
    let at = -1;
    if (continuing) {
      if (norm.startsWith(piece, cur)) at = cur;
    } else if (!owed()) {
      const from = skipSpaces(norm, cur);
      if (norm.startsWith(piece, from)) at = from;
    } else {
      at = findWord(norm, wordFrom(index), cur, boundary);
    }
    if (at < 0) {
      pending.push({ index, surface: true });
      return;
    }
    const hi = at + piece.length;
    place(index, at, hi, view.from[at], view.to[hi - 1]);
  });
  settle(pending, wordsIn(view, cur, norm.length), offsets, lastEnd);
  return sanitize(offsets, text.length);
}

/**
 * The tokens [first, last] (inclusive) that exactly cover the characters [start, end), or null when a boundary
 * falls inside a token or no token lies in the span — callers count those as misaligned entities.
 *
 * A boundary in text no token covers (whitespace, or characters the normalizer drops such as control characters
 * and zero-width joiners) moves inward to the nearest token: `' Beijing '` aligns like `'Beijing'`. Empty offsets
 * carry no text and never decide a boundary.
 */
export function alignSpan(offsets: readonly Offset[], start: number, end: number): { first: number; last: number } | null {
  let first = -1;
  let last = -1;
  for (let i = 0; i < offsets.length; i++) {
    const [s, e] = offsets[i];
    if (s === e) continue;
    if ((s < start && start < e) || (s < end && end < e)) return null;
    if (first < 0 && s >= start) first = i;
    if (e <= end) last = i;
  }
  if (first < 0 || last < first) return null;
  return { first, last };
}
