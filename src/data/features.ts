/**
 * Word features for space-separated languages, in the manner of spaCy's hashed NORM / PREFIX / SUFFIX / SHAPE
 * embeddings: every token gets features of the whitespace-delimited word it lies in. A word the vocabulary has never
 * seen reaches the model as characters or pieces; its shape (capitalised, digits) and affixes still say much about
 * whether it names something, and they are shared with the words seen in training.
 *
 * Each feature is a string hashed into one of `buckets` − 1 rows (row 0 is for [CLS], [SEP] and padding).
 */

/** Features per token, in this order. */
export const WORD_FEATURES = ['norm', 'prefix', 'suffix', 'shape'] as const;
export const WORD_FEATURE_COUNT = WORD_FEATURES.length;

const AFFIX = 3;
const SHAPE_RUN = 4;

/** spaCy's word shape: X for upper case, x for lower case, d for digits, other characters as they are; runs cut at 4. */
export function wordShape(word: string): string {
  let shape = '';
  let last = '';
  let run = 0;
  for (const ch of word) {
    const c = /\p{Lu}/u.test(ch) ? 'X' : /\p{L}/u.test(ch) ? 'x' : /\p{N}/u.test(ch) ? 'd' : ch;
    run = c === last ? run + 1 : 1;
    last = c;
    if (run <= SHAPE_RUN) shape += c;
  }
  return shape;
}

/** FNV-1a over UTF-16 code units: stable across runs and platforms, which a saved model's buckets rely on. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

const isSpace = (ch: string) => /\s/u.test(ch);

/**
 * Feature rows for each token of `text` given its character offsets: WORD_FEATURE_COUNT numbers per token, each in
 * [1, buckets). The shape also says whether the token begins its word, so the pieces of one word are told apart.
 * Linear in the text's length, however long its words (a text without spaces is one word).
 */
export function wordFeatureIds(text: string, offsets: Array<[number, number]>, buckets: number): number[] {
  const row = (kind: string, value: string) => 1 + (fnv1a(`${kind}\u0000${value}`) % (buckets - 1));
  // wordStart[i] / wordEnd[i]: the word around character i, found in one pass each way.
  const n = text.length;
  const wordStart = new Int32Array(n);
  const wordEnd = new Int32Array(n);
  for (let i = 0; i < n; i++) wordStart[i] = i > 0 && !isSpace(text[i - 1]) && !isSpace(text[i]) ? wordStart[i - 1] : i;
  for (let i = n - 1; i >= 0; i--) wordEnd[i] = i < n - 1 && !isSpace(text[i + 1]) && !isSpace(text[i]) ? wordEnd[i + 1] : i + 1;
  const rowsOfWord = new Map<number, { norm: number; prefix: number; suffix: number; shape: string }>();
  const out: number[] = [];
  for (const [start] of offsets) {
    const first = wordStart[start];
    let word = rowsOfWord.get(first);
    if (!word) {
      const surface = text.slice(first, wordEnd[start]);
      const chars = [...surface.toLowerCase()];
      word = {
        norm: row('norm', surface.toLowerCase()),
        prefix: row('prefix', chars.slice(0, AFFIX).join('')),
        suffix: row('suffix', chars.slice(-AFFIX).join('')),
        shape: wordShape(surface),
      };
      rowsOfWord.set(first, word);
    }
    out.push(word.norm, word.prefix, word.suffix, row('shape', `${start === first ? '' : '#'}${word.shape}`));
  }
  return out;
}
