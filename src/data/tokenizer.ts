/**
 * Hugging Face `tokenizer.json` files, run by @huggingface/tokenizers (pure JS) for the ids and by our rematch for
 * the offsets it does not give. Offsets are UTF-16 code-unit indices into the text, `end` exclusive.
 *
 * Supported: WordPiece models (BERT and alike) whose pre-tokenizer only splits text (BertPreTokenizer, Whitespace…).
 * Offsets are exact for normalizers that work character by character (BertNormalizer, Lowercase, NFC/NFD/NFKC/NFKD,
 * StripAccents and Sequences of them); with others (a multi-character Replace) they are best effort, never invalid.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { z } from 'zod';
import { GpError } from '../errors.js';
import { rematch, type Offset, type RematchOptions } from './rematch.js';

export { alignSpan, type Offset } from './rematch.js';

const TokenizerJsonSchema = z.looseObject({
  added_tokens: z.array(z.looseObject({ id: z.number().int().nonnegative(), content: z.string() })),
  normalizer: z.looseObject({ type: z.string() }).nullable(),
  pre_tokenizer: z.looseObject({ type: z.string() }).nullable(),
  post_processor: z.unknown(),
  decoder: z.unknown(),
  padding: z.looseObject({ pad_id: z.number().int().nonnegative().optional() }).nullable().optional(),
  model: z.looseObject({
    type: z.string(),
    vocab: z.union([z.record(z.string(), z.number().int().nonnegative()), z.array(z.unknown())]),
    unk_token: z.string().nullable().optional(),
    continuing_subword_prefix: z.string().nullable().optional(),
  }),
});

/** The parts of a tokenizer.json we read; everything else is kept as loaded. */
export type TokenizerJson = z.infer<typeof TokenizerJsonSchema>;

export interface Encoding {
  ids: number[];
  /** Per token, its UTF-16 range [start, end) in the text; never covers whitespace. */
  offsets: Offset[];
}

// Astral CJK ideographs, in the ranges HF's Rust BertNormalizer isolates as words.
const ASTRAL_CJK = /[\u{20000}-\u{2A6DF}\u{2A700}-\u{2B81F}\u{2B920}-\u{2CEAF}\u{2F800}-\u{2FA1F}]/gu;

/** What a normalizer (or any normalizer in a Sequence) does that Tokenizers.js gets differently from HF's Rust. */
function normalizerTraits(n: unknown): { lowercase: boolean; chinese: boolean } {
  const traits = { lowercase: false, chinese: false };
  if (typeof n !== 'object' || n === null) return traits;
  const o = n as Record<string, unknown>;
  if (o.type === 'Lowercase') traits.lowercase = true;
  if (o.type === 'BertNormalizer') {
    traits.lowercase = o.lowercase === true;
    traits.chinese = o.handle_chinese_chars === true;
  }
  if (o.type === 'Sequence' && Array.isArray(o.normalizers)) {
    for (const t of o.normalizers.map(normalizerTraits)) {
      traits.lowercase ||= t.lowercase;
      traits.chinese ||= t.chinese;
    }
  }
  return traits;
}

/**
 * Tokenizers.js 0.2.0 differs from HF's Rust tokenizers (which pretrained vocabularies were built with): it
 * lowercases a word-final Σ to ς where Rust gives σ, and its BertNormalizer checks UTF-16 units, so astral CJK
 * ideographs are not split off. Rewriting the input the Rust way makes both give the same ids.
 */
function rustParity(normalizer: unknown): (text: string) => string {
  const { lowercase, chinese } = normalizerTraits(normalizer);
  if (!lowercase && !chinese) return (text) => text;
  return (text) => {
    const lowered = lowercase ? text.replaceAll('Σ', 'σ') : text;
    return chinese ? lowered.replace(ASTRAL_CJK, ' $& ') : lowered;
  };
}

// Clusters repeat a lot (a few thousand distinct ones in a corpus), and the JS normalizer is regex-heavy.
function memoize(f: (s: string) => string): (s: string) => string {
  const cache = new Map<string, string>();
  return (s) => {
    let v = cache.get(s);
    if (v === undefined) {
      v = f(s);
      cache.set(s, v);
    }
    return v;
  };
}

export class TextTokenizer {
  readonly vocabSize: number;
  readonly padId: number;
  readonly unkId: number;
  /** Present when the vocabulary has [CLS] / [SEP]. */
  readonly clsId?: number;
  readonly sepId?: number;
  private readonly tokenizer: Tokenizer;
  private readonly patch: (text: string) => string;
  private readonly rematchOptions: RematchOptions;

  private constructor(private readonly json: TokenizerJson, source: string) {
    const { model } = json;
    if (model.type !== 'WordPiece') {
      throw new GpError(`${source}: unsupported tokenizer model "${model.type}": gp supports WordPiece (BERT-style) tokenizers`);
    }
    try {
      this.tokenizer = new Tokenizer(json, {});
    } catch (err) {
      throw new GpError(`${source}: not a tokenizer.json Tokenizers.js can load: ${(err as Error).message}`);
    }
    const id = (token: string | null | undefined): number | undefined =>
      token == null ? undefined : this.tokenizer.token_to_id(token);
    const unkId = id(model.unk_token);
    if (unkId === undefined) throw new GpError(`${source}: the model's unk_token is not in the vocabulary`);
    const padId = json.padding?.pad_id ?? id('[PAD]');
    if (padId === undefined) throw new GpError(`${source}: no [PAD] token and no padding.pad_id`);
    this.unkId = unkId;
    this.padId = padId;
    this.clsId = id('[CLS]');
    this.sepId = id('[SEP]');
    this.vocabSize = this.tokenizer.get_vocab(true).size;
    this.patch = rustParity(json.normalizer);
    const normalizer = this.tokenizer.normalizer;
    this.rematchOptions = {
      normalize: memoize((s) => (normalizer ? normalizer.normalize(this.patch(s)) : s)),
      continuingPrefix: model.continuing_subword_prefix ?? '##',
      unkToken: model.unk_token ?? '[UNK]',
      addedTokens: new Set(json.added_tokens.map((t) => t.content)),
    };
  }

  /** From a parsed tokenizer.json; `source` names it in error messages. */
  static fromJSON(json: object, source = 'tokenizer.json'): TextTokenizer {
    const parsed = TokenizerJsonSchema.safeParse(json);
    if (!parsed.success) throw new GpError(`${source}: not a valid tokenizer.json: ${z.prettifyError(parsed.error)}`);
    return new TextTokenizer(structuredClone(parsed.data), source);
  }

  static async load(file: string): Promise<TextTokenizer> {
    let json: unknown;
    try {
      json = JSON.parse(await readFile(file, 'utf8'));
    } catch (err) {
      throw new GpError(`${file}: cannot read tokenizer: ${(err as Error).message}`);
    }
    if (typeof json !== 'object' || json === null) throw new GpError(`${file}: not a tokenizer.json object`);
    return TextTokenizer.fromJSON(json, file);
  }

  /** Ids and offsets of the text's tokens, without special tokens. */
  encode(text: string): Encoding {
    const { ids, tokens } = this.tokenizer.encode(this.patch(text), { add_special_tokens: false });
    return { ids, offsets: rematch(text, tokens, this.rematchOptions) };
  }

  tokenToId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.tokenizer.id_to_token(id);
  }

  /** A copy of the tokenizer.json (so `JSON.stringify(tokenizer)` writes one). */
  toJSON(): TokenizerJson {
    return structuredClone(this.json);
  }

  /** Writes tokenizer.json atomically: a reader never sees half a file. */
  async save(file: string): Promise<void> {
    await mkdir(dirname(file), { recursive: true });
    const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await writeFile(tmp, `${JSON.stringify(this.json, null, 2)}\n`);
      await rename(tmp, file);
    } catch (err) {
      await rm(tmp, { force: true });
      throw new GpError(`${file}: cannot write tokenizer: ${(err as Error).message}`);
    }
  }
}

export interface BuildOptions {
  /** `char`: every character is a token (and `##c` inside words); `wordpiece`: whole words plus characters. */
  mode: 'char' | 'wordpiece';
  /** Least count for a token to enter the vocabulary (characters always do in wordpiece mode). Default 1. */
  minFreq?: number;
  /** Largest vocabulary, specials included. Default unlimited. */
  maxVocab?: number;
  /** Default false: case helps NER. Accents are stripped exactly when lowercasing, as in BERT. */
  lowercase?: boolean;
}

const SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] as const;

function bertTokenizerJson(vocab: readonly string[], lowercase: boolean): TokenizerJson {
  const specialToken = (content: string) => ({ id: vocab.indexOf(content), content });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    // At their ids in `vocab`: a pretrained vocab.txt has them elsewhere than 0..4 ([UNK] = 100 in bert-base).
    added_tokens: SPECIALS.filter((content) => vocab.includes(content)).map((content) => ({
      ...specialToken(content),
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: {
      type: 'BertNormalizer',
      clean_text: true,
      handle_chinese_chars: true,
      strip_accents: lowercase,
      lowercase,
    },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '[SEP]', type_id: 0 } },
      ],
      pair: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '[SEP]', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
        { SpecialToken: { id: '[SEP]', type_id: 1 } },
      ],
      special_tokens: Object.fromEntries(
        ['[CLS]', '[SEP]'].map((t) => [t, { id: t, ids: [specialToken(t).id], tokens: [t] }]),
      ),
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: '[UNK]',
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab: Object.fromEntries(vocab.map((token, id) => [token, id])),
    },
  };
}

function byCodePoint(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0)! - y[i].codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

type Counted = { token: string; freq: number };
const byFreq = (a: Counted, b: Counted): number => b.freq - a.freq || byCodePoint(a.token, b.token);

function increment(counts: Map<string, number>, key: string): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

/**
 * A BERT-style WordPiece tokenizer whose vocabulary comes from `texts`, for models trained from scratch. Ids are
 * [PAD]=0, [UNK], [CLS], [SEP], [MASK], then tokens by frequency (descending), ties by code point, so the same
 * texts in any order give the same ids.
 */
export function buildTokenizer(texts: readonly string[], opts: BuildOptions): TextTokenizer {
  const lowercase = opts.lowercase ?? false;
  const minFreq = opts.minFreq ?? 1;
  const maxVocab = opts.maxVocab ?? Infinity;
  if (maxVocab <= SPECIALS.length) throw new GpError(`maxVocab ${maxVocab} leaves no room beyond the ${SPECIALS.length} special tokens`);

  // Count words exactly as encode() will see them: the same normalizer and pre-tokenizer, run by Tokenizers.js.
  const skeleton = bertTokenizerJson(SPECIALS, lowercase);
  const { normalizer, pre_tokenizer: preTokenizer } = new Tokenizer(skeleton, {});
  const patch = rustParity(skeleton.normalizer);
  const wordsOf = (text: string): string[] =>
    preTokenizer && normalizer ? preTokenizer.pre_tokenize_text(normalizer.normalize(patch(text))) : [];

  const words = new Map<string, number>();
  const chars = new Map<string, number>();
  const inner = new Map<string, number>(); // counts as a continuation, i.e. not first in its word
  for (const text of texts) {
    for (const word of wordsOf(text)) {
      increment(words, word);
      [...word].forEach((c, k) => {
        increment(chars, c);
        if (k > 0) increment(inner, c);
      });
    }
  }

  // `##c` only for characters that can continue a word (not CJK or punctuation, which always stand alone).
  const charTokens: Counted[] = [];
  for (const [c, freq] of chars) {
    if (opts.mode === 'char' && freq < minFreq) continue;
    charTokens.push({ token: c, freq });
    if (wordsOf(`a${c}`).length === 1) charTokens.push({ token: `##${c}`, freq: inner.get(c) ?? 0 });
  }
  const room = maxVocab - SPECIALS.length;
  let chosen = charTokens.sort(byFreq).slice(0, room);
  if (opts.mode === 'wordpiece') {
    const wordTokens = [...words]
      .filter(([w, freq]) => freq >= minFreq && [...w].length > 1)
      .map(([token, freq]) => ({ token, freq }))
      .sort(byFreq)
      .slice(0, room - chosen.length);
    chosen = [...chosen, ...wordTokens].sort(byFreq);
  }
  const vocab = [...SPECIALS, ...chosen.map((c) => c.token)];
  return TextTokenizer.fromJSON(bertTokenizerJson(vocab, lowercase), 'built tokenizer');
}

/**
 * The tokenizer of a BERT checkpoint that ships only vocab.txt: `vocabLines[id]` is the token with that id, and
 * `lowercase` is tokenizer_config.json's do_lower_case (accents are stripped with it, as BertTokenizer does).
 */
export function tokenizerFromVocab(vocabLines: readonly string[], lowercase: boolean, source = 'vocab.txt'): TextTokenizer {
  return TextTokenizer.fromJSON(bertTokenizerJson(vocabLines, lowercase), source);
}
