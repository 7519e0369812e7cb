import { test } from 'node:test';
import assert from 'node:assert/strict';
import { alignSpan, rematch, type Offset, type RematchOptions } from '../src/data/rematch.js';

/** A stand-in for BERT's uncased normalizer: drop controls, whitespace → space, lowercase, strip accents, space CJK. */
function bertLike(s: string): string {
  let out = '';
  for (const ch of s) {
    if (/[\p{Cc}\p{Cf}]/u.test(ch) && !/[\t\n\r]/.test(ch)) continue;
    if (/\s/u.test(ch)) {
      out += ' ';
      continue;
    }
    const c = ch.toLowerCase().normalize('NFD').replace(/\p{Mn}/gu, '');
    out += /\p{Script=Han}/u.test(ch) ? ` ${c} ` : c;
  }
  return out;
}

const opts = (normalize: (s: string) => string = bertLike): RematchOptions => ({
  normalize,
  continuingPrefix: '##',
  unkToken: '[UNK]',
  addedTokens: new Set(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']),
});

function assertWellFormed(text: string, tokens: readonly string[], offsets: Offset[]): void {
  assert.equal(offsets.length, tokens.length);
  let prev = 0;
  for (const [s, e] of offsets) {
    assert.ok(Number.isInteger(s) && Number.isInteger(e), `integer offsets ${s},${e}`);
    assert.ok(prev <= s && s <= e && e <= text.length, `monotone, in range: ${prev} <= ${s} <= ${e} <= ${text.length}`);
    prev = e;
  }
}

const cases: Array<[string, string, string[], Offset[]]> = [
  ['latin words', 'Hello World', ['hello', 'world'], [[0, 5], [6, 11]]],
  ['continuing pieces', 'Unaffable!', ['una', '##ff', '##able', '!'], [[0, 3], [3, 5], [5, 9], [9, 10]]],
  ['precomposed accent', 'Café au', ['cafe', 'au'], [[0, 4], [5, 7]]],
  ['combining accent joins its base', 'Cafe\u0301 au', ['ca', '##fe', 'au'], [[0, 2], [2, 5], [6, 8]]],
  ['CJK one char per token', '我爱北京', ['我', '爱', '北', '京'], [[0, 1], [1, 2], [2, 3], [3, 4]]],
  ['mixed CJK, Latin, digits', '在Apple买了iPhone15', ['在', 'apple', '买', '了', 'iphone', '##15'], [[0, 1], [1, 6], [6, 7], [7, 8], [8, 14], [14, 16]]],
  ['emoji is two UTF-16 units', 'ok 😀 go', ['ok', '[UNK]', 'go'], [[0, 2], [3, 5], [6, 8]]],
  ['ZWJ sequence is one unknown word', '👨‍👩‍👧 hi', ['[UNK]', 'hi'], [[0, 8], [9, 11]]],
  ['consecutive unknown words', '😀 😀😀 x', ['[UNK]', '[UNK]', 'x'], [[0, 2], [3, 7], [8, 9]]],
  ['unknown astral CJK char', '中𠀋国', ['中', '[UNK]', '国'], [[0, 1], [1, 3], [3, 4]]],
  ['unknown word next to punctuation', 'x😀!y', ['[UNK]', '!', 'y'], [[0, 3], [3, 4], [4, 5]]],
  ['a token inside an unknown word is not taken', '😀a a', ['[UNK]', 'a'], [[0, 3], [4, 5]]],
  ['an unknown word beginning like the next word', '😀 emoji e', ['[UNK]', '[UNK]', 'e'], [[0, 2], [3, 8], [9, 10]]],
  ['an unknown word beginning like the next pieces', 'emo😀 emo', ['[UNK]', 'em', '##o'], [[0, 5], [6, 8], [8, 9]]],
  ['whitespace runs and control chars', 'a \t\n  b\u0000c', ['a', 'bc'], [[0, 1], [6, 9]]],
  ['trailing unknown', 'go 😀', ['go', '[UNK]'], [[0, 2], [3, 5]]],
  ['post-processor specials are empty', 'hi', ['[CLS]', 'hi', '[SEP]'], [[0, 0], [0, 2], [2, 2]]],
  ['literal special in the text', 'a [MASK] b', ['a', '[MASK]', 'b'], [[0, 1], [2, 8], [9, 10]]],
  ['special after an unknown', '😀 [SEP]', ['[UNK]', '[SEP]'], [[0, 2], [3, 8]]],
  ['empty text', '', [], []],
  ['[UNK] with nothing left to cover', 'a', ['a', '[UNK]'], [[0, 1], [1, 1]]],
];

for (const [name, text, tokens, expected] of cases) {
  test(`rematch: ${name}`, () => {
    const offsets = rematch(text, tokens, opts());
    assert.deepEqual(offsets, expected);
    assertWellFormed(text, tokens, offsets);
  });
}

test('rematch: a ligature that normalisation expands stays inside one token, or splits without overlap', () => {
  const nfkc = (s: string) => s.normalize('NFKC');
  assert.deepEqual(rematch('ﬁne x', ['fine', 'x'], opts(nfkc)), [[0, 3], [4, 5]]);
  // Two tokens share the one original character: the second gets an empty range instead of overlapping.
  assert.deepEqual(rematch('ﬁne', ['f', '##i', '##ne'], opts(nfkc)), [[0, 1], [1, 1], [1, 3]]);
});

test('rematch: NFC composing across code points maps to the whole cluster', () => {
  const nfc = (s: string) => s.normalize('NFC');
  assert.deepEqual(rematch('e\u0301t', ['é', '##t'], opts(nfc)), [[0, 2], [2, 3]]);
});

test('rematch: a 2,000-char mixed text gives each word piece its own surface', () => {
  const unit = 'Beijing北京 2024年 naïve 😀 ';
  const text = unit.repeat(Math.ceil(2000 / unit.length)).slice(0, 2000);
  const tokens: string[] = [];
  for (const word of bertLike(text).split(' ').filter(Boolean)) tokens.push(/\p{Extended_Pictographic}/u.test(word) ? '[UNK]' : word);
  const offsets = rematch(text, tokens, opts());
  assertWellFormed(text, tokens, offsets);
  tokens.forEach((token, i) => {
    const surface = text.slice(...offsets[i]);
    assert.equal(token === '[UNK]' ? surface : bertLike(surface).trim(), token === '[UNK]' ? '😀' : token, `token ${i}`);
  });
});

test('rematch: never throws and stays well formed on tokens that do not match the text', () => {
  let seed = 7;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const pool = ['a', 'É', 'e\u0301', '中', '𠀋', '😀', '\u200d', ' ', '\t', '\u0000', '!', 'ﬁ', '[SEP]', '\ud800', 'ß'];
  const vocab = ['a', '##a', 'e', '##e', '中', '[UNK]', '[SEP]', '[CLS]', 'zz', '##zz', '!', 'fi', '##', 'ss'];
  for (let round = 0; round < 300; round++) {
    const text = Array.from({ length: rand(12) }, () => pool[rand(pool.length)]).join('');
    const tokens = Array.from({ length: rand(10) }, () => vocab[rand(vocab.length)]);
    assertWellFormed(text, tokens, rematch(text, tokens, opts()));
  }
});

test('alignSpan: exact token boundaries', () => {
  // "北京 abc": 北 [0,1) 京 [1,2) abc [3,6) as "ab" [3,5) "##c" [5,6)
  const offsets: Offset[] = [[0, 1], [1, 2], [3, 5], [5, 6]];
  assert.deepEqual(alignSpan(offsets, 0, 2), { first: 0, last: 1 });
  assert.deepEqual(alignSpan(offsets, 1, 6), { first: 1, last: 3 });
  assert.deepEqual(alignSpan(offsets, 3, 6), { first: 2, last: 3 });
  assert.deepEqual(alignSpan(offsets, 5, 6), { first: 3, last: 3 });
});

test('alignSpan: a boundary inside a token is null', () => {
  const offsets: Offset[] = [[0, 1], [1, 2], [3, 5], [5, 6]];
  assert.equal(alignSpan(offsets, 4, 6), null);
  assert.equal(alignSpan(offsets, 0, 4), null);
});

test('alignSpan: whitespace at the span edges is trimmed', () => {
  const offsets: Offset[] = [[0, 1], [1, 2], [3, 5], [5, 6]];
  assert.deepEqual(alignSpan(offsets, 0, 3), { first: 0, last: 1 });
  assert.deepEqual(alignSpan(offsets, 2, 6), { first: 2, last: 3 });
});

test('alignSpan: spans covering no token are null', () => {
  const offsets: Offset[] = [[0, 1], [1, 2], [3, 5], [5, 6]];
  assert.equal(alignSpan(offsets, 2, 3), null);
  assert.equal(alignSpan(offsets, 1, 1), null);
  assert.equal(alignSpan(offsets, 6, 9), null);
  assert.equal(alignSpan([], 0, 1), null);
});

test('alignSpan: empty offsets never decide a boundary', () => {
  const offsets: Offset[] = [[0, 0], [0, 2], [2, 2], [2, 4]];
  assert.deepEqual(alignSpan(offsets, 0, 2), { first: 1, last: 1 });
  assert.deepEqual(alignSpan(offsets, 2, 4), { first: 3, last: 3 });
  assert.deepEqual(alignSpan(offsets, 0, 4), { first: 1, last: 3 });
});
