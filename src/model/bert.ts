/**
 * Pretrained Hugging Face BERT-family encoders: read a checkpoint directory, map its tensor names onto gp's, and run
 * the encoder as transformers' BertModel does:
 *
 *   ids ─► LN(word + position + token type) ─► N × post-LN block ─► hidden states [B, L, D]
 *   block:  h = LN(h + attention(h));  h = LN(h + W₂ act(W₁ h))
 *
 * Parameters keep Hugging Face's names and layouts (a Linear weight is [out, in]) under the `bert.` prefix, so the
 * weights.safetensors of a fine-tuned model still reads like a checkpoint. Token types are all 0 (one segment).
 * RoBERTa checkpoints are the same network with positions counted from padding_idx + 1.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import type { ModelConfig } from '../config/schema.js';
import { TextTokenizer, tokenizerFromVocab } from '../data/tokenizer.js';
import { GpError } from '../errors.js';
import { MASK_BIAS, dropout, embeddingLookup, layerNorm, type ForwardOptions, type Model, type ModelSpec } from './globalpointer.js';
import { readSafetensors, type NamedArray } from './safetensors.js';

const BERT_FILES = {
  config: 'config.json',
  weights: 'model.safetensors',
  shardIndex: 'model.safetensors.index.json',
  pytorch: 'pytorch_model.bin',
  tokenizer: 'tokenizer.json',
  vocab: 'vocab.txt',
  tokenizerConfig: 'tokenizer_config.json',
} as const;

/** config.json's `hidden_act` values gp runs: exact (erf) GELU, its tanh approximation, ReLU. */
const ACTIVATIONS = ['gelu', 'gelu_new', 'gelu_pytorch_tanh', 'relu'] as const;
export type HiddenAct = (typeof ACTIVATIONS)[number];

/** The encoder of a ModelSpec for a BERT checkpoint: everything of config.json the forward pass needs. */
export interface BertEncoderSpec {
  type: 'bert';
  /** The checkpoint it started from; a saved model needs only its own directory. */
  path: string;
  modelType: 'bert' | 'roberta';
  layers: number;
  heads: number;
  intermediateSize: number;
  hiddenAct: HiddenAct;
  layerNormEps: number;
  maxPositions: number;
  typeVocabSize: number;
  /** RoBERTa only: token t of a text sits at position padTokenId + 1 + t. */
  padTokenId: number;
  hiddenDropout: number;
  attentionDropout: number;
}

export interface BertCheckpoint {
  dir: string;
  encoder: BertEncoderSpec;
  hiddenSize: number;
  vocabSize: number;
  /** The longest input the position table allows. */
  maxLength: number;
  tokenizer: TextTokenizer;
}

// ---------------------------------------------------------------------------------------------- config.json

const count = z.number().int().positive();
const probability = z.number().min(0).max(1);

// Defaults are transformers' BertConfig defaults; the sizes have none, since guessing them would only fail later.
const HfConfigSchema = z.looseObject({
  model_type: z.string(),
  vocab_size: count,
  hidden_size: count,
  num_hidden_layers: count,
  num_attention_heads: count,
  intermediate_size: count,
  hidden_act: z.string().default('gelu'),
  hidden_dropout_prob: probability.default(0.1),
  attention_probs_dropout_prob: probability.default(0.1),
  max_position_embeddings: count.default(512),
  type_vocab_size: count.default(2),
  layer_norm_eps: z.number().positive().default(1e-12),
  pad_token_id: z.number().int().nonnegative().optional(),
  position_embedding_type: z.string().default('absolute'),
});

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new GpError(`${file}: cannot read: ${(err as Error).message}`);
  }
}

/** config.json → the encoder's spec, hidden size and vocabulary size; anything gp cannot run exactly is refused. */
export function parseBertConfig(json: unknown, dir: string): Pick<BertCheckpoint, 'encoder' | 'hiddenSize' | 'vocabSize'> {
  const file = join(dir, BERT_FILES.config);
  const parsed = HfConfigSchema.safeParse(json);
  if (!parsed.success) throw new GpError(`${file}: not a BERT config.json: ${z.prettifyError(parsed.error)}`);
  const c = parsed.data;
  if (c.model_type !== 'bert' && c.model_type !== 'roberta')
    throw new GpError(`${file}: model_type "${c.model_type}" is not supported: gp runs BERT ("bert") and RoBERTa ("roberta") encoders`);
  if (c.position_embedding_type !== 'absolute')
    throw new GpError(`${file}: position_embedding_type "${c.position_embedding_type}" is not supported: gp runs absolute position embeddings`);
  const act = ACTIVATIONS.find((a) => a === c.hidden_act);
  if (!act) throw new GpError(`${file}: hidden_act "${c.hidden_act}" is not supported: gp runs ${ACTIVATIONS.join(', ')}`);
  if (c.hidden_size % c.num_attention_heads !== 0)
    throw new GpError(`${file}: hidden_size ${c.hidden_size} is not a multiple of num_attention_heads ${c.num_attention_heads}`);
  const encoder: BertEncoderSpec = {
    type: 'bert',
    path: dir,
    modelType: c.model_type,
    layers: c.num_hidden_layers,
    heads: c.num_attention_heads,
    intermediateSize: c.intermediate_size,
    hiddenAct: act,
    layerNormEps: c.layer_norm_eps,
    maxPositions: c.max_position_embeddings,
    typeVocabSize: c.type_vocab_size,
    padTokenId: c.pad_token_id ?? (c.model_type === 'roberta' ? 1 : 0),
    hiddenDropout: c.hidden_dropout_prob,
    attentionDropout: c.attention_probs_dropout_prob,
  };
  return { encoder, hiddenSize: c.hidden_size, vocabSize: c.vocab_size };
}

/** Inputs longer than this would run past the position table. */
export function positionCapacity(encoder: BertEncoderSpec): number {
  return encoder.maxPositions - (encoder.modelType === 'roberta' ? encoder.padTokenId + 1 : 0);
}

// ---------------------------------------------------------------------------------------------- the directory

/** The checkpoint's tokenizer.json, else one built from vocab.txt and tokenizer_config.json's do_lower_case. */
function checkpointTokenizer(dir: string): TextTokenizer {
  const json = join(dir, BERT_FILES.tokenizer);
  if (existsSync(json)) {
    const parsed = readJson(json);
    if (typeof parsed !== 'object' || parsed === null) throw new GpError(`${json}: not a tokenizer.json object`);
    return TextTokenizer.fromJSON(parsed, json);
  }
  const vocab = join(dir, BERT_FILES.vocab);
  if (!existsSync(vocab)) throw new GpError(`${dir}: no ${BERT_FILES.tokenizer} and no ${BERT_FILES.vocab}: the checkpoint's tokenizer is needed`);
  const settingsFile = join(dir, BERT_FILES.tokenizerConfig);
  const settings = existsSync(settingsFile) ? readJson(settingsFile) : null;
  // BertTokenizer lowercases unless told otherwise.
  const lowercase = !(typeof settings === 'object' && settings !== null && 'do_lower_case' in settings && settings.do_lower_case === false);
  const lines = readFileSync(vocab, 'utf8').split(/\r?\n/);
  if (lines[lines.length - 1] === '') lines.pop(); // the newline that ends the last line
  return tokenizerFromVocab(lines, lowercase, vocab);
}

function requireWeightsFile(dir: string): void {
  if (existsSync(join(dir, BERT_FILES.weights)) || existsSync(join(dir, BERT_FILES.shardIndex))) return;
  if (existsSync(join(dir, BERT_FILES.pytorch))) {
    const convert =
      `python -c "import torch; from safetensors.torch import save_file; ` +
      `sd = torch.load('${dir}/${BERT_FILES.pytorch}', map_location='cpu'); ` +
      `save_file({k: v.contiguous().clone() for k, v in sd.items()}, '${dir}/${BERT_FILES.weights}')"`;
    throw new GpError(
      `${dir}: has only ${BERT_FILES.pytorch}; gp reads weights from ${BERT_FILES.weights} (pickle files can run code, so gp does not open them). ` +
        `Convert it once with torch and safetensors installed:\n  ${convert}`,
    );
  }
  throw new GpError(`${dir}: no ${BERT_FILES.weights} (found: ${readdirSync(dir).join(', ') || 'nothing'})`);
}

/** Reads config.json and the tokenizer, and checks that weights are there; the weights themselves load later. */
export function openBertCheckpoint(dir: string): BertCheckpoint {
  if (!existsSync(join(dir, BERT_FILES.config))) {
    throw new GpError(`${dir}: not a Hugging Face checkpoint directory (no ${BERT_FILES.config})`);
  }
  const { encoder, hiddenSize, vocabSize } = parseBertConfig(readJson(join(dir, BERT_FILES.config)), dir);
  requireWeightsFile(dir);
  const tokenizer = checkpointTokenizer(dir);
  if (tokenizer.vocabSize > vocabSize)
    throw new GpError(`${dir}: the tokenizer has ${tokenizer.vocabSize} tokens, more than the ${vocabSize} rows of the embedding table`);
  return { dir, encoder, hiddenSize, vocabSize, maxLength: positionCapacity(encoder), tokenizer };
}

/** The ModelSpec of a GlobalPointer on this checkpoint: sizes from config.json, the head from gp's config. */
export function bertModelSpec(checkpoint: BertCheckpoint, model: ModelConfig, numTypes: number, maxLength: number): ModelSpec {
  return {
    ...model,
    lexicon: undefined, // the config's is a path; the schema allows none with bert
    dim: checkpoint.hiddenSize,
    encoder: checkpoint.encoder,
    vocabSize: checkpoint.vocabSize,
    numTypes,
    maxLength: Math.min(maxLength, checkpoint.maxLength),
  };
}

// ---------------------------------------------------------------------------------------------- weights

/** Shapes of the encoder's parameters, by gp name. */
export function bertParameterShapes(encoder: BertEncoderSpec, D: number, vocabSize: number): Map<string, number[]> {
  const F = encoder.intermediateSize;
  const shapes = new Map<string, number[]>([
    ['bert.embeddings.word_embeddings.weight', [vocabSize, D]],
    ['bert.embeddings.position_embeddings.weight', [encoder.maxPositions, D]],
    ['bert.embeddings.token_type_embeddings.weight', [encoder.typeVocabSize, D]],
    ['bert.embeddings.LayerNorm.weight', [D]],
    ['bert.embeddings.LayerNorm.bias', [D]],
  ]);
  for (let l = 0; l < encoder.layers; l++) {
    const p = `bert.encoder.layer.${l}`;
    for (const name of ['query', 'key', 'value']) shapes.set(`${p}.attention.self.${name}.weight`, [D, D]).set(`${p}.attention.self.${name}.bias`, [D]);
    shapes.set(`${p}.attention.output.dense.weight`, [D, D]).set(`${p}.attention.output.dense.bias`, [D]);
    shapes.set(`${p}.attention.output.LayerNorm.weight`, [D]).set(`${p}.attention.output.LayerNorm.bias`, [D]);
    shapes.set(`${p}.intermediate.dense.weight`, [F, D]).set(`${p}.intermediate.dense.bias`, [F]);
    shapes.set(`${p}.output.dense.weight`, [D, F]).set(`${p}.output.dense.bias`, [D]);
    shapes.set(`${p}.output.LayerNorm.weight`, [D]).set(`${p}.output.LayerNorm.bias`, [D]);
  }
  return shapes;
}

/** Task heads of BertFor… / RobertaFor… classes and the pooler: not part of the encoder NER fine-tunes. */
const IGNORED_PREFIXES = ['cls.', 'classifier.', 'qa_outputs.', 'lm_head.'];
const IGNORED_INSIDE = ['pooler.', 'embeddings.position_ids'];

export interface NameMapping {
  /** gp name → checkpoint name. */
  byParam: Map<string, string>;
  ignored: string[];
  unknown: string[];
  /** gp names that two checkpoint tensors map to (e.g. both `bert.x` and `x`). */
  duplicates: string[];
}

/**
 * Checkpoint tensor names onto gp's: the model-type prefix (`bert.`, `roberta.`) is optional, old TensorFlow-converted
 * names (`LayerNorm.gamma` / `.beta`) are renamed as transformers does, and heads and the pooler are set aside.
 */
export function mapCheckpointNames(names: readonly string[], modelType: BertEncoderSpec['modelType'], expected: ReadonlySet<string>): NameMapping {
  const mapping: NameMapping = { byParam: new Map(), ignored: [], unknown: [], duplicates: [] };
  const prefix = `${modelType}.`;
  for (const name of names) {
    if (IGNORED_PREFIXES.some((p) => name.startsWith(p))) {
      mapping.ignored.push(name);
      continue;
    }
    const inner = name.startsWith(prefix) ? name.slice(prefix.length) : name;
    if (IGNORED_INSIDE.some((p) => inner.startsWith(p))) {
      mapping.ignored.push(name);
      continue;
    }
    const target = `bert.${inner.replace(/LayerNorm\.gamma$/, 'LayerNorm.weight').replace(/LayerNorm\.beta$/, 'LayerNorm.bias')}`;
    if (!expected.has(target)) mapping.unknown.push(name);
    else if (mapping.byParam.has(target)) mapping.duplicates.push(target);
    else mapping.byParam.set(target, name);
  }
  return mapping;
}

/** All tensors of the checkpoint, from model.safetensors or from the shards its index names. */
function readCheckpointTensors(dir: string): Map<string, NamedArray> {
  const single = join(dir, BERT_FILES.weights);
  if (existsSync(single)) return readSafetensors(single).tensors;
  const index = join(dir, BERT_FILES.shardIndex);
  const weightMap = (readJson(index) as { weight_map?: Record<string, string> }).weight_map;
  if (!weightMap) throw new GpError(`${index}: no weight_map`);
  const tensors = new Map<string, NamedArray>();
  for (const shard of new Set(Object.values(weightMap))) {
    for (const [name, t] of readSafetensors(join(dir, shard)).tensors) tensors.set(name, t);
  }
  return tensors;
}

/** At most `n` names, then how many more: a checkpoint of the wrong architecture would list hundreds. */
function listSome(names: string[], n = 12): string {
  return names.length <= n ? names.join(', ') : `${names.slice(0, n).join(', ')}, … (${names.length - n} more)`;
}

/** Copies the checkpoint's weights into the model's `bert.` parameters; every mismatch is reported at once. */
export function loadBertWeights(model: Model, dir: string): void {
  const tensors = readCheckpointTensors(dir);
  const targets = new Map([...model.params].filter(([name]) => name.startsWith('bert.')));
  const encoder = model.spec.encoder;
  if (encoder.type !== 'bert') throw new GpError(`loadBertWeights: the model's encoder is ${encoder.type}, not bert`);
  const mapping = mapCheckpointNames([...tensors.keys()], encoder.modelType, new Set(targets.keys()));
  const missing = [...targets.keys()].filter((name) => !mapping.byParam.has(name));
  const wrong = [...mapping.byParam]
    .map(([ours, theirs]) => ({ theirs, tensor: tensors.get(theirs)!, expected: targets.get(ours)!.shape }))
    .filter(({ tensor, expected }) => tensor.shape.join(',') !== expected.join(',') || !(tensor.data instanceof Float32Array))
    .map(({ theirs, tensor, expected }) => `${theirs} is [${tensor.shape}] ${tensor.data instanceof Float32Array ? 'float' : 'int'}, expected [${expected}] float`);
  const problems = [
    ...(missing.length ? [`missing (${missing.length}): ${listSome(missing)}`] : []),
    ...(mapping.unknown.length ? [`unknown (${mapping.unknown.length}): ${listSome(mapping.unknown)}`] : []),
    ...(mapping.duplicates.length ? [`given twice (with and without the ${encoder.modelType}. prefix): ${listSome(mapping.duplicates)}`] : []),
    ...wrong,
  ];
  if (problems.length) throw new GpError(`${dir}: the checkpoint's tensors do not fit its config.json:\n  ${problems.join('\n  ')}`);
  for (const [ours, theirs] of mapping.byParam) {
    const { shape, data } = tensors.get(theirs)!;
    tf.tidy(() => targets.get(ours)!.assign(tf.tensor(data, shape, 'float32')));
  }
}

// ---------------------------------------------------------------------------------------------- the network

type Params = (name: string) => tf.Tensor;

/** Exact GELU, x · Φ(x) = x/2 · (1 + erf(x/√2)): what BERT was trained with. */
export function geluErf(x: tf.Tensor): tf.Tensor {
  return x.mul(0.5).mul(tf.erf(x.mul(Math.SQRT1_2)).add(1));
}

/** GELU's tanh approximation (`gelu_new`). */
function geluTanh(x: tf.Tensor): tf.Tensor {
  const inner = x.add(x.pow(3).mul(0.044715)).mul(Math.sqrt(2 / Math.PI));
  return x.mul(0.5).mul(tf.tanh(inner).add(1));
}

const ACTIVATION: Record<HiddenAct, (x: tf.Tensor) => tf.Tensor> = {
  gelu: geluErf,
  gelu_new: geluTanh,
  gelu_pytorch_tanh: geluTanh,
  relu: (x) => tf.relu(x),
};

/** x Wᵀ + b over the last axis, W in PyTorch's [out, in] layout. */
function linear(x: tf.Tensor, p: Params, prefix: string): tf.Tensor {
  const weight = p(`${prefix}.weight`) as tf.Tensor2D;
  const [out, inDim] = weight.shape;
  return tf.matMul(x.reshape([-1, inDim]), weight, false, true).add(p(`${prefix}.bias`)).reshape([...x.shape.slice(0, -1), out]);
}

/**
 * Position ids [B, L]. BERT: 0..L−1. RoBERTa: padding_idx + 1 + t for real tokens and padding_idx on padding, which
 * is transformers' cumulative-sum rule for gp's batches, whose padding always comes after the text.
 */
export function positionIds(mask: tf.Tensor2D, encoder: BertEncoderSpec): tf.Tensor2D {
  return tf.tidy(() => {
    const [B, L] = mask.shape;
    const steps = tf.range(0, L, 1, 'float32').reshape([1, L]);
    if (encoder.modelType === 'bert') return steps.tile([B, 1]).toInt() as tf.Tensor2D;
    const pad = encoder.padTokenId;
    return mask.mul(steps.add(pad + 1)).add(tf.scalar(1).sub(mask).mul(pad)).toInt() as tf.Tensor2D;
  });
}

/** Word-piece embeddings [B, L, D]: what VAT perturbs; positions and token types are added in `bertEncode`. */
export function bertWordEmbeddings(model: Model, ids: tf.Tensor2D): tf.Tensor3D {
  return embeddingLookup(model.params.get('bert.embeddings.word_embeddings.weight')! as tf.Tensor2D, ids);
}

function embeddings(p: Params, encoder: BertEncoderSpec, words: tf.Tensor3D, mask: tf.Tensor2D, opts: ForwardOptions): tf.Tensor {
  const positions = embeddingLookup(p('bert.embeddings.position_embeddings.weight') as tf.Tensor2D, positionIds(mask, encoder));
  const tokenType = p('bert.embeddings.token_type_embeddings.weight').slice([0, 0], [1, -1]); // type 0 for every token
  const sum = words.add(positions).add(tokenType);
  const normed = layerNorm(sum, p('bert.embeddings.LayerNorm.weight'), p('bert.embeddings.LayerNorm.bias'), encoder.layerNormEps);
  return dropout(normed, encoder.hiddenDropout, opts);
}

function attention(p: Params, prefix: string, encoder: BertEncoderSpec, h: tf.Tensor, keyBias: tf.Tensor, opts: ForwardOptions): tf.Tensor {
  const [B, L, D] = h.shape;
  const dh = D / encoder.heads;
  const heads = (name: string) => linear(h, p, `${prefix}.self.${name}`).reshape([B, L, encoder.heads, dh]).transpose([0, 2, 1, 3]); // [B, h, L, dh]
  const scores = tf.matMul(heads('query'), heads('key'), false, true).div(Math.sqrt(dh)).add(keyBias); // [B, h, L, L]
  const probs = dropout(tf.softmax(scores), encoder.attentionDropout, opts);
  const context = tf.matMul(probs, heads('value')).transpose([0, 2, 1, 3]).reshape([B, L, D]);
  return linear(context, p, `${prefix}.output.dense`);
}

/** One post-LN block: the residual sum is normalised after each sub-layer (BERT's order, not pre-LN). */
function block(p: Params, l: number, encoder: BertEncoderSpec, h: tf.Tensor, keyBias: tf.Tensor, opts: ForwardOptions): tf.Tensor {
  const prefix = `bert.encoder.layer.${l}`;
  const eps = encoder.layerNormEps;
  const a = dropout(attention(p, `${prefix}.attention`, encoder, h, keyBias, opts), encoder.hiddenDropout, opts);
  const h1 = layerNorm(h.add(a), p(`${prefix}.attention.output.LayerNorm.weight`), p(`${prefix}.attention.output.LayerNorm.bias`), eps);
  const inner = ACTIVATION[encoder.hiddenAct](linear(h1, p, `${prefix}.intermediate.dense`));
  const f = dropout(linear(inner, p, `${prefix}.output.dense`), encoder.hiddenDropout, opts);
  return layerNorm(h1.add(f), p(`${prefix}.output.LayerNorm.weight`), p(`${prefix}.output.LayerNorm.bias`), eps);
}

/** Last hidden states [B, L, D] from word-piece embeddings [B, L, D] and mask [B, L] (1 on real tokens). */
export function bertEncode(model: Model, encoder: BertEncoderSpec, words: tf.Tensor3D, mask: tf.Tensor2D, opts: ForwardOptions): tf.Tensor3D {
  const p: Params = (name) => model.params.get(name)!;
  const [B, L] = words.shape;
  // Padding keys get a large negative score before the softmax, as transformers' extended attention mask does.
  const keyBias = mask.sub(1).mul(-MASK_BIAS).reshape([B, 1, 1, L]);
  let h = embeddings(p, encoder, words, mask, opts);
  for (let l = 0; l < encoder.layers; l++) h = block(p, l, encoder, h, keyBias, opts);
  return h as tf.Tensor3D;
}
