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
 */
export function wordFeatureIds(text: string, offsets: Array<[number, number]>, buckets: number): number[] {
  const row = (kind: string, value: string) => 1 + (fnv1a(`${kind}\u0000${value}`) % (buckets - 1));
  const out: number[] = [];
  for (const [start, end] of offsets) {
    let first = start;
    while (first > 0 && !isSpace(text[first - 1])) first--;
    let last = Math.max(end, start + 1);
    while (last < text.length && !isSpace(text[last])) last++;
    const word = text.slice(first, last);
    const chars = [...word.toLowerCase()];
    out.push(
      row('norm', word.toLowerCase()),
      row('prefix', chars.slice(0, AFFIX).join('')),
      row('suffix', chars.slice(-AFFIX).join('')),
      row('shape', `${start === first ? '' : '#'}${wordShape(word)}`),
    );
  }
  return out;
}
