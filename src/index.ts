/** gp as a library: the functions behind the commands, and the model's building blocks. */
export type { Span, Example, Entity, SourceRef } from './types.js';
export { GpError, DataError, ConfigError } from './errors.js';
export { initBackend, backendReport, type BackendName, type BackendInfo } from './backend.js';

export { ConfigSchema, type Config, type ConfigInput } from './config/schema.js';
export { loadConfig, validateConfig, parseOverride, configToYaml } from './config/load.js';

export { readCorpus, parseCorpus, writeJsonl, formatJsonlLine, type ReadOptions, type ReadReport } from './data/corpus.js';
export { TextTokenizer, buildTokenizer } from './data/tokenizer.js';
export { rematch, alignSpan } from './data/rematch.js';
export { encodeExamples, makeBatches, batchTensors, dropTokens, windowRanges, type Window, type TokenFeatures } from './data/encode.js';
export { wordFeatureIds, wordShape, WORD_FEATURES } from './data/features.js';
export { readLexicon, makeLexicon, lexiconFeatures, LEXICON_ROLES, LEXICON_LENGTHS, type Lexicon } from './data/lexicon.js';

export {
  createModel,
  forward,
  embed,
  encode,
  globalPointer,
  efficientGlobalPointer,
  applyRope,
  ropeTables,
  type RopeTables,
  scaledRopePair,
  lstmDirection,
  bigramBuckets,
  embeddingLookup,
  spanValidity,
  spanMaskBias,
  MASK_BIAS,
  type Model,
  type ModelSpec,
} from './model/globalpointer.js';
export { saveModel, loadModel, type LoadedModel, type ModelManifest } from './model/io.js';
export { readSafetensors, writeSafetensors } from './model/safetensors.js';

export { multilabelCrossEntropy } from './train/loss.js';
export { sigmoidKL, softmaxKL, divergence, type DivergenceName } from './train/divergence.js';
export { learningRateAt, lambdaAt } from './train/schedule.js';
export { train, type TrainSummary, type TrainOptions, type TrainReporter, type MetricsRow } from './train/train.js';

export { decodeSpans, tokenSpansToEntities, mergeWindowEntitiesByCentre, type TokenSpan } from './eval/decode.js';
export { scoreEntities, formatScoresTable, macroF1, type Scores, type PRF } from './eval/metrics.js';
export {
  predictEntities,
  predictWithDecodings,
  sweepDecodings,
  tuneDecoding,
  bestDecoding,
  crossValidateDecoding,
  evaluateExamples,
  SWEEP_DECODINGS,
  type PredictOptions,
  type Decoding,
} from './eval/evaluate.js';
