import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer as JsTokenizer } from '@huggingface/tokenizers';
import { Tokenizer as Oracle } from 'tokenizers';
import { GpError } from '../src/errors.js';
import { TextTokenizer, buildTokenizer, type Offset } from '../src/data/tokenizer.js';

// HF's Rust tokenizers (the `tokenizers` dev dependency) is the oracle: the ids pretrained models expect, and offsets.
const TINY = fileURLToPath(new URL('./fixtures/tokenizers/tiny-random-bert.json', import.meta.url));

const HARD = [
  '',
  '   \t\n ',
  'Hello, World!',
  '北京欢迎你',
  'Café café CAFÉ',
  'naïve ﬁne ﬂow ﬀ',
  '😀 emoji 😀x y😀 ab😀cd 😀😀 😀中😀',
  '👨‍👩‍👧 family 👍🏽 ok',
  'a\tb\nc\r\nd    e',
  'a\u0000b\u0001c\u007fd\u00ade',
  'zero\u200bwidth\u200djoin',
  'ΣΑΣ ΟΔΥΣΣΕΥΣ ΑΣ.',
  'İstanbul Ǆemal ß ẞ',
  '𠀋字𠀋a x\u{2B820}y',
  '2024年3月5日，张三在Apple公司花了$100.5买了iPhone15。',
  '中文English混合123数字',
  '[CLS] foo [SEP] [MASK]bar a\u0000[SEP] 😀[SEP]',
  '한국어 텍스트',
  'हिन्दी पाठ',
  '（全角）「括号」ＡＢＣ１２３…',
  '  lead and trail  ',
  `${'x'.repeat(150)} short`,
  '\ufffd replacement \ud800 lone',
];
HARD.push(Array.from({ length: 200 }, (_, i) => HARD[(i * 7) % HARD.length]).join(' ').slice(0, 2000));

/**
 * Where we knowingly differ from the oracle: a combining mark the normalizer deletes belongs to the token of its
 * base character (HF leaves it uncovered, so an entity ending in `é` written as e + U+0301 could not align).
 */
const MARKS: Array<[string, Offset[]]> = [
  ['Cafe\u0301 x', [[0, 1], [1, 2], [2, 3], [3, 5], [6, 7]]],
  ['❤️ love', [[0, 2], [3, 4], [4, 5], [5, 6], [6, 7]]],
  ['end\u0301', [[0, 1], [1, 2], [2, 4]]],
];

const CORPUS = [
  '浙商银行企业信贷部叶老桂博士则从另一个角度对五道门槛进行了解读。',
  '生生不息CSOL生化狂潮让你填弹狂扫',
  'Empire State Building = ESB . Pretty bad storm here last evening .',
  'The Apple iPhone 15 was released in 2023 by Apple in Cupertino .',
  '那不勒斯vs锡耶纳以及桑普vs热那亚之上呢？',
  'Café au lait in Zürich with José , 2 euros .',
];

function utf16(text: string): number[] {
  const at: number[] = [];
  let u = 0;
  for (const ch of text) {
    at.push(u);
    u += ch.length;
  }
  at.push(u);
  return at;
}

async function oracleEncode(oracle: Oracle, text: string): Promise<{ ids: number[]; offsets: Offset[]; tokens: string[] }> {
  const e = await oracle.encode(text, null, { addSpecialTokens: false });
  const at = utf16(text);
  return { ids: e.getIds(), tokens: e.getTokens(), offsets: e.getOffsets().map(([s, x]) => [at[s], at[x]] as Offset) };
}

/** Offsets monotone, in range; each token's surface normalises to the token (minus ##) unless [UNK]. */
function assertOffsetProperties(tok: TextTokenizer, text: string, normalize: (s: string) => string): void {
  const { ids, offsets } = tok.encode(text);
  assert.equal(offsets.length, ids.length);
  let prev = 0;
  offsets.forEach(([s, e], i) => {
    assert.ok(prev <= s && s <= e && e <= text.length, `token ${i} of ${JSON.stringify(text)}: ${s},${e}`);
    prev = e;
    if (ids[i] === tok.unkId) return;
    const token = tok.idToToken(ids[i])!;
    const surface = text.slice(s, e);
    // Added tokens ([SEP] typed in the text) are matched verbatim, before normalisation.
    if (/^\[[A-Z]+\]$/.test(token)) assert.equal(surface, token);
    else assert.equal(normalize(surface).replace(/\s+/gu, ''), token.replace(/^##(?=.)/, ''), `token ${i} of ${JSON.stringify(text)}`);
  });
}

async function assertMatchesOracle(tok: TextTokenizer, texts: readonly string[]): Promise<void> {
  const oracle = Oracle.fromString(JSON.stringify(tok.toJSON()));
  const js = new JsTokenizer(tok.toJSON(), {});
  // The normalizer alone, on a slice: Σ alone lowercases to σ in both libraries.
  const normalize = (s: string) => (js.normalizer ? js.normalizer.normalize(s) : s);
  for (const text of texts) {
    const want = await oracleEncode(oracle, text);
    const got = tok.encode(text);
    assert.deepEqual(got.ids, want.ids, `ids of ${JSON.stringify(text)} (${want.tokens.join(' ')})`);
    assert.deepEqual(got.offsets, want.offsets, `offsets of ${JSON.stringify(text)} (${want.tokens.join(' ')})`);
    assertOffsetProperties(tok, text, normalize);
  }
}

test('tiny-random-bert: ids and UTF-16 offsets match the HF oracle on hard strings', async () => {
  const tok = await TextTokenizer.load(TINY);
  await assertMatchesOracle(tok, HARD);
});

test('tiny-random-bert: a stripped combining mark stays with its base (documented difference from HF)', async () => {
  const tok = await TextTokenizer.load(TINY);
  const oracle = Oracle.fromFile(TINY);
  for (const [text, offsets] of MARKS) {
    assert.deepEqual(tok.encode(text).ids, (await oracleEncode(oracle, text)).ids);
    assert.deepEqual(tok.encode(text).offsets, offsets, JSON.stringify(text));
  }
});

test('tiny-random-bert: vocabulary and special ids', async () => {
  const tok = await TextTokenizer.load(TINY);
  assert.equal(tok.vocabSize, Oracle.fromFile(TINY).getVocabSize(true));
  assert.equal(tok.vocabSize, 1124);
  assert.deepEqual([tok.padId, tok.unkId, tok.clsId, tok.sepId], [0, 1, 2, 3]);
  assert.equal(tok.tokenToId('[MASK]'), 4);
  assert.equal(tok.idToToken(tok.tokenToId('##e')!), '##e');
  assert.equal(tok.tokenToId('not-a-token'), undefined);
});

test('an NFKC normalizer: ids match the oracle, expanded ligatures never overlap', async () => {
  const json = JSON.parse(await readFile(TINY, 'utf8'));
  json.normalizer = { type: 'Sequence', normalizers: [{ type: 'NFKC' }, json.normalizer] };
  const tok = TextTokenizer.fromJSON(json);
  const oracle = Oracle.fromString(JSON.stringify(json));
  for (const text of HARD) {
    const got = tok.encode(text);
    assert.deepEqual(got.ids, (await oracleEncode(oracle, text)).ids, JSON.stringify(text));
    let prev = 0;
    for (const [s, e] of got.offsets) {
      assert.ok(prev <= s && s <= e && e <= text.length);
      prev = e;
    }
  }
  // "ﬁne" is f ##i ##n ##e over 3 characters: ##i shares ﬁ with f, so it gets an empty range after it.
  assert.deepEqual(tok.encode('ﬁne').offsets, [[0, 1], [1, 1], [1, 2], [2, 3]]);
});

test('buildTokenizer char mode: ids and offsets match the oracle; CJK and Latin split into characters', async () => {
  const tok = buildTokenizer(CORPUS, { mode: 'char' });
  await assertMatchesOracle(tok, [...HARD, ...CORPUS]);
  const { ids } = tok.encode('CSOL银行');
  assert.deepEqual(ids.map((id) => tok.idToToken(id)), ['C', '##S', '##O', '##L', '银', '行']);
  assert.equal(tok.tokenToId('##银'), undefined, 'CJK characters never continue a word');
  assert.notEqual(tok.tokenToId('##e'), undefined);
});

test('buildTokenizer wordpiece mode: whole frequent words, case kept, any seen character representable', async () => {
  const tok = buildTokenizer(CORPUS, { mode: 'wordpiece', minFreq: 2 });
  await assertMatchesOracle(tok, [...HARD, ...CORPUS]);
  assert.notEqual(tok.tokenToId('Apple'), undefined);
  assert.equal(tok.tokenToId('apple'), undefined);
  assert.equal(tok.tokenToId('Cupertino'), undefined, 'seen once, below minFreq');
  const { ids } = tok.encode('Cupertino');
  assert.ok(!ids.includes(tok.unkId));
  assert.equal(ids.map((id) => tok.idToToken(id)).join('').replaceAll('##', ''), 'Cupertino');
});

test('buildTokenizer: specials first, then by frequency and code point, whatever the order of the texts', () => {
  const a = buildTokenizer(CORPUS, { mode: 'wordpiece' });
  const b = buildTokenizer([...CORPUS].reverse(), { mode: 'wordpiece' });
  assert.deepEqual(a.toJSON(), b.toJSON());
  assert.deepEqual([0, 1, 2, 3, 4].map((id) => a.idToToken(id)), ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']);
  assert.ok(a.tokenToId('Apple')! < a.tokenToId('Cupertino')!, 'seen twice before seen once');
  // a ×3, b ×2, c ×1 as characters; as continuations never (count 0), so last, ties broken by code point.
  const small = buildTokenizer(['b a a', 'c a b'], { mode: 'char' });
  const order = ['a', 'b', 'c', '##a', '##b', '##c'];
  assert.deepEqual(order.map((t) => small.tokenToId(t)), [5, 6, 7, 8, 9, 10]);
  assert.equal(small.vocabSize, 11);
});

test('buildTokenizer: minFreq, maxVocab and lowercase', () => {
  const rare = buildTokenizer(CORPUS, { mode: 'char', minFreq: 3 });
  assert.equal(rare.tokenToId('浙'), undefined);
  assert.deepEqual(rare.encode('浙').ids, [rare.unkId]);
  assert.equal(buildTokenizer(CORPUS, { mode: 'char', maxVocab: 12 }).vocabSize, 12);
  const lower = buildTokenizer(CORPUS, { mode: 'wordpiece', lowercase: true });
  assert.notEqual(lower.tokenToId('cafe'), undefined, 'lowercased and accents stripped');
  assert.deepEqual(lower.encode('CAFÉ').ids, [lower.tokenToId('cafe')]);
  assert.throws(() => buildTokenizer(CORPUS, { mode: 'char', maxVocab: 5 }), GpError);
});

test('save writes a tokenizer.json both libraries load with identical ids; load reads it back', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'gp-tokenizer-'));
  try {
    const built = buildTokenizer(CORPUS, { mode: 'char' });
    const file = join(dir, 'sub', 'tokenizer.json');
    await built.save(file);
    assert.deepEqual(await readdir(join(dir, 'sub')), ['tokenizer.json'], 'no temporary file left behind');
    const loaded = await TextTokenizer.load(file);
    const oracle = Oracle.fromFile(file);
    const js = new JsTokenizer(JSON.parse(await readFile(file, 'utf8')), {});
    for (const text of [...CORPUS, ...HARD.slice(0, 10)]) {
      const ids = loaded.encode(text).ids;
      assert.deepEqual(ids, built.encode(text).ids);
      assert.deepEqual(ids, (await oracleEncode(oracle, text)).ids);
      assert.deepEqual(ids, js.encode(text, { add_special_tokens: false }).ids);
    }
    assert.deepEqual(JSON.parse(JSON.stringify(loaded)), built.toJSON());
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('load and fromJSON reject what they cannot use with a GpError naming the file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'gp-tokenizer-'));
  try {
    const broken = join(dir, 'broken.json');
    await writeFile(broken, '{"model": ');
    await assert.rejects(TextTokenizer.load(broken), (err: Error) => err instanceof GpError && err.message.includes(broken));
    await assert.rejects(TextTokenizer.load(join(dir, 'missing.json')), GpError);
    const bpe = JSON.parse(await readFile(TINY, 'utf8'));
    bpe.model = { type: 'BPE', vocab: {}, merges: [] };
    assert.throws(() => TextTokenizer.fromJSON(bpe), /unsupported tokenizer model "BPE"/);
    assert.throws(() => TextTokenizer.fromJSON({ model: 3 }), GpError);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
