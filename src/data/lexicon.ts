/**
 * Lexicon features: which dictionary words each token lies in, and where. Character-level Chinese NER sees no word
 * boundaries; a word list supplies them, the idea behind Lattice LSTM and SoftLexicon, here without word embeddings
 * (none can be pretrained here, and a word seen only at test time would bring an untrained row). What every token
 * gets instead is a 0/1 vector: for each role a word can give it (Begin, Middle, End, or Single when the token is the
 * whole word) and each word length (2, 3, 4, 5, 6 or more), whether some matching word gives it that role at that
 * length. A boundary learned from one word then carries over to every other word of the list.
 *
 * Matching is exact on the text, and only words whose ends fall on token boundaries count; lengths are in characters.
 */
import { readFileSync } from 'node:fs';
import { GpError } from '../errors.js';

export const LEXICON_ROLES = ['B', 'M', 'E', 'S'] as const;
export const LEXICON_LENGTHS = [2, 3, 4, 5, 6] as const; // the last bucket is "6 or more"
export const LEXICON_FEATURE_COUNT = LEXICON_ROLES.length * LEXICON_LENGTHS.length;

export interface Lexicon {
  words: Set<string>;
  /** Longest word, in UTF-16 code units: no longer substring needs looking up. */
  maxLength: number;
}

export function makeLexicon(words: Iterable<string>): Lexicon {
  const set = new Set<string>();
  let maxLength = 0;
  for (const w of words) {
    if (w.length < 2) continue; // a one-character word says nothing about boundaries
    set.add(w);
    maxLength = Math.max(maxLength, w.length);
  }
  return { words: set, maxLength };
}

/**
 * A word list: one word per line, anything after the first whitespace ignored (so jieba's "word freq tag" lines
 * read as they are); blank lines are skipped.
 */
export function readLexicon(file: string): Lexicon {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new GpError(`${file}: cannot read lexicon: ${(err as Error).message}`, 66);
  }
  const lexicon = makeLexicon(text.split(/\r?\n/).map((line) => line.trim().split(/\s/u)[0]).filter((w) => w.length > 0));
  if (lexicon.words.size === 0) throw new GpError(`${file}: lexicon has no words of two or more characters`, 65);
  return lexicon;
}

/** The lexicon as the file the model directory keeps: one word per line, sorted. */
export function lexiconText(lexicon: Lexicon): string {
  return [...lexicon.words].sort().join('\n') + '\n';
}

const lengthBucket = (n: number) => Math.min(n, LEXICON_LENGTHS[LEXICON_LENGTHS.length - 1]) - LEXICON_LENGTHS[0];

/**
 * LEXICON_FEATURE_COUNT values (0 or 1) per token, feature index role · |LENGTHS| + length bucket. `offsets` are the
 * tokens' character spans in `text`. Cost: text length × the lexicon's longest word lookups.
 */
export function lexiconFeatures(text: string, offsets: Array<[number, number]>, lexicon: Lexicon): number[] {
  const out = new Array<number>(offsets.length * LEXICON_FEATURE_COUNT).fill(0);
  const startsAt = new Map<number, number>(); // character offset → the token starting there
  const endsAt = new Map<number, number>(); // character offset → the token ending there
  offsets.forEach(([s, e], t) => {
    if (!startsAt.has(s)) startsAt.set(s, t);
    endsAt.set(e, t);
  });
  const mark = (token: number, role: number, length: number) => {
    out[token * LEXICON_FEATURE_COUNT + role * LEXICON_LENGTHS.length + lengthBucket(length)] = 1;
  };
  for (const [s, first] of startsAt) {
    for (let n = 2; n <= lexicon.maxLength && s + n <= text.length; n++) {
      const last = endsAt.get(s + n);
      if (last === undefined || last < first) continue;
      const word = text.slice(s, s + n);
      if (!lexicon.words.has(word)) continue;
      const length = [...word].length; // in characters, not UTF-16 units
      if (first === last) {
        mark(first, 3, length);
        continue;
      }
      mark(first, 0, length);
      for (let t = first + 1; t < last; t++) mark(t, 1, length);
      mark(last, 2, length);
    }
  }
  return out;
}
