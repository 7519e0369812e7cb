/**
 * The one schema every option and default of gp lives in. A YAML config is validated against it (unknown keys are
 * errors, naming the key path), and the resolved result is saved next to the model so that a run can be reproduced.
 */
import { z } from 'zod';

const positiveInt = z.number().int().positive();
const rate = z.number().min(0).max(1);

/** How a corpus file is read; mirrors `ReadOptions` of src/data/corpus.ts. */
export const ReaderSchema = z.strictObject({
  format: z.enum(['auto', 'cluener', 'jsonl', 'conll']).default('auto'),
  scheme: z.enum(['auto', 'bio', 'iob1', 'bioes', 'bmes']).default('auto'),
  join: z.enum(['auto', 'none', 'space']).default('auto'),
  stripTokenDigit: z.boolean().default(false),
  invalidTags: z.enum(['repair', 'reject']).default('repair'),
});

export const DataSchema = z
  .strictObject({
    /** Paths are relative to the working directory, as in spaCy. */
    train: z.string().min(1),
    dev: z.string().min(1).optional(),
    /** Longest token sequence the model sees; longer texts are cut into overlapping windows. */
    maxLength: positiveInt.default(128),
    /** Tokens shared by consecutive windows of a long text. */
    windowOverlap: z.number().int().nonnegative().default(32),
    /** Use at most this many training examples (quick experiments); 0 = all. */
    limit: z.number().int().nonnegative().default(0),
  })
  .extend(ReaderSchema.shape);

export const TokenizerSchema = z.strictObject({
  /** An existing Hugging Face tokenizer.json; when absent one is built from the training texts. */
  path: z.string().optional(),
  mode: z.enum(['char', 'wordpiece']).default('char'),
  minFreq: positiveInt.default(1),
  maxVocab: positiveInt.default(30000),
  lowercase: z.boolean().default(false),
});

export const TransformerSchema = z.strictObject({
  type: z.literal('transformer'),
  layers: z.number().int().nonnegative().default(2),
  heads: positiveInt.default(4),
  /** Feed-forward width as a multiple of the model width. */
  ffnMultiplier: z.number().positive().default(4),
  /** Rotary positions inside self-attention; `learned` adds absolute position embeddings instead. */
  positions: z.enum(['rope', 'learned']).default('rope'),
  attentionDropout: rate.default(0.1),
});

/** A stacked bidirectional LSTM: each direction has dim/2 units, so its output keeps the model's width. */
export const BilstmSchema = z.strictObject({
  type: z.literal('bilstm'),
  layers: positiveInt.default(1),
});

/** A pretrained Hugging Face BERT-family checkpoint; its config.json fixes the sizes, so `dim` does not apply. */
export const BertSchema = z.strictObject({
  type: z.literal('bert'),
  /** Directory with config.json, model.safetensors and tokenizer.json (or vocab.txt). */
  path: z.string().min(1),
});

export const ModelSchema = z.strictObject({
  /** Width of token embeddings and of the encoder (ignored with a bert encoder). */
  dim: positiveInt.default(256),
  dropout: rate.default(0.1),
  /**
   * Hashed bigram embeddings: the pair (token i, token i+1) indexes one of this many extra rows, added to token i's
   * embedding (bigrams carry much of Chinese word segmentation, which character NER lacks). 0 turns them off.
   */
  bigramBuckets: z.number().int().nonnegative().default(0),
  /**
   * Word features for space-separated text (src/data/features.ts): the lower-cased word, its first and last three
   * characters and its shape (Xxxx, dd) hashed into this many rows, added to each of the word's tokens. 0 turns them off.
   */
  wordFeatures: z.union([z.literal(0), z.number().int().min(2)]).default(0), // row 0 is for [CLS], [SEP] and padding
  /**
   * A word list (one word per line; jieba's dictionary format reads as it is) for lexicon features
   * (src/data/lexicon.ts): each token learns whether it begins, continues, ends or is a listed word, and how long that
   * word is. Word boundaries for character-level Chinese; the model directory keeps a copy of the list.
   */
  lexicon: z.string().min(1).optional(),
  encoder: z.discriminatedUnion('type', [TransformerSchema, BilstmSchema, BertSchema]).prefault({ type: 'transformer' }),
  head: z
    .strictObject({
      type: z.enum(['globalpointer', 'efficient']).default('globalpointer'),
      /** Width of each q and k vector (the `d` of q·k/√d). */
      size: positiveInt.default(64),
      rope: z.boolean().default(true),
    })
    .prefault({}),
})
  .refine((m) => m.encoder.type !== 'bilstm' || m.dim % 2 === 0, {
    message: 'a bilstm encoder splits dim between its two directions, so dim must be even',
    path: ['dim'],
  })
  .refine((m) => m.encoder.type !== 'bert' || m.wordFeatures === 0, {
    message: 'wordFeatures applies to encoders trained from scratch; a pretrained BERT has its own embeddings',
    path: ['wordFeatures'],
  })
  .refine((m) => m.encoder.type !== 'bert' || m.lexicon === undefined, {
    message: 'lexicon applies to encoders trained from scratch',
    path: ['lexicon'],
  })
  .refine((m) => m.encoder.type !== 'bert' || m.bigramBuckets === 0, {
    message: 'bigramBuckets applies to encoders trained from scratch; a pretrained BERT has its own embeddings',
    path: ['bigramBuckets'],
  });

/**
 * A value that moves over training: `warmup` steps at 0 (for λ) or ramping up (for the LR), then a shape.
 * Steps may be given as a fraction of all steps (< 1) or as a count (≥ 1).
 */
export const LrScheduleSchema = z.strictObject({
  type: z.enum(['constant', 'linear', 'cosine']).default('linear'),
  warmup: z.number().nonnegative().default(0.06),
});

export const TrainingSchema = z.strictObject({
  epochs: positiveInt.default(10),
  batchSize: positiveInt.default(32),
  lr: z.number().positive().default(1e-3),
  schedule: LrScheduleSchema.prefault({}),
  weightDecay: z.number().nonnegative().default(0.01),
  beta1: z.number().min(0).max(1).default(0.9),
  beta2: z.number().min(0).max(1).default(0.999),
  epsilon: z.number().positive().default(1e-8),
  /**
   * Decay of an exponential moving average of the parameters, which dev evaluation and the saved model use
   * (e.g. 0.999); 0 keeps the trained parameters themselves.
   */
  ema: z.number().min(0).lt(1).default(0),
  /** Each training token is replaced by [UNK] with this probability (word dropout; never at evaluation). */
  tokenDropout: rate.default(0),
  /** Global-norm gradient clipping; 0 disables it. */
  clipNorm: z.number().nonnegative().default(1),
  /** Decoding threshold on span logits for dev evaluation and for the saved model's default. */
  threshold: z.number().default(0),
  /** Decode flat (the highest-scoring span of each overlap) rather than nested, in dev evaluation and by default. */
  flat: z.boolean().default(false),
  /**
   * At each dev evaluation, choose threshold and flat/nested by dev F1 (one forward pass; the grid is `gp eval
   * --sweep`'s) instead of using the two above; the kept model carries its choice. Dev F1 is then optimistic.
   */
  tuneDecoding: z.boolean().default(false),
  /** Peak learning rate of the encoder's parameters when it should differ from `lr` (which the head keeps). */
  encoderLr: z.number().positive().optional(),
  /** Save a resumable checkpoint every this many steps (and at every epoch end); 0: epoch ends only. */
  checkpointEvery: z.number().int().nonnegative().default(500),
  /** Stop after this many evaluations without a better dev F1; 0 never stops early. */
  patience: z.number().int().nonnegative().default(0),
  /** Stop at the end of the epoch after which another one would take training past this many minutes; 0: no cap. */
  maxMinutes: z.number().nonnegative().default(0),
  /** Steps with a NaN or infinite loss are skipped; this many in a row stop the run. */
  maxBadSteps: positiveInt.default(5),
});

/**
 * λ over training: 0 for `warmup`, then a ramp of `ramp` length from 0 to λ (linear, cosine, or a step at its end),
 * then constant. Lengths are in `unit`s; a value < 1 is a fraction of the whole run.
 */
export const LambdaScheduleSchema = z.strictObject({
  type: z.enum(['linear', 'cosine', 'step']).default('linear'),
  warmup: z.number().nonnegative().default(0),
  ramp: z.number().nonnegative().default(0),
  unit: z.enum(['steps', 'epochs']).default('steps'),
});

export const RegularizerSchema = z.strictObject({
  type: z.enum(['none', 'rdrop', 'vat']).default('none'),
  divergence: z.enum(['sigmoid-kl', 'softmax-kl']).default('sigmoid-kl'),
  /** λ, the divergence's weight once warm-up and ramp are over. */
  weight: z.number().nonnegative().default(1),
  schedule: LambdaScheduleSchema.prefault({}),
  /** τ in σ(s/τ) (and softmax(s/τ)). */
  temperature: z.number().positive().default(1),
  /** Per-label weights wᵢ of the divergence (labels left out weigh 1). */
  typeWeights: z.record(z.string(), z.number().nonnegative()).optional(),
  vat: z
    .strictObject({
      /** ‖r_adv‖ per sample, in embedding units. */
      epsilon: z.number().positive().default(1),
      /** Size of the probe r = ξ·d/‖d‖ of the power iteration. */
      xi: z.number().positive().default(0.1),
      iterations: positiveInt.default(1),
    })
    .prefault({}),
});

export const ConfigSchema = z.strictObject({
  $schema: z.string().optional(),
  seed: z.number().int().default(42),
  backend: z.enum(['auto', 'tensorflow', 'wasm', 'cpu']).default('auto'),
  /** Threads for the wasm / TensorFlow backends; 0 lets the backend decide. */
  threads: z.number().int().nonnegative().default(0),
  data: DataSchema,
  tokenizer: TokenizerSchema.prefault({}),
  model: ModelSchema.prefault({}),
  training: TrainingSchema.prefault({}),
  regularizer: RegularizerSchema.prefault({}),
});

export type Config = z.infer<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;
export type ModelConfig = Config['model'];
export type TransformerConfig = z.infer<typeof TransformerSchema>;
export type BilstmConfig = z.infer<typeof BilstmSchema>;
export type BertEncoderConfig = z.infer<typeof BertSchema>;
export type TrainingConfig = Config['training'];
export type DataConfig = Config['data'];
export type ReaderConfig = z.infer<typeof ReaderSchema>;
export type RegularizerConfig = Config['regularizer'];
export type LambdaSchedule = RegularizerConfig['schedule'];
