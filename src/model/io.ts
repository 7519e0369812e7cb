/**
 * The model directory: everything `gp eval` and `gp predict` need, and nothing else.
 *
 *   model.json            spec (shapes), labels, default decoding (threshold, flat), format version
 *   weights.safetensors   parameters by name
 *   tokenizer.json        the Hugging Face tokenizer the model was trained with
 *   config.yaml           the resolved training config, to reproduce the run
 *   lexicon.txt           the word list of the lexicon features, when the model has them
 *
 * Every file is written atomically, weights before model.json, so a directory is either the previous model or the
 * new one, never a mix that loads.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { GpError } from '../errors.js';
import { writeFileAtomic } from '../io.js';
import { lexiconText, readLexicon } from '../data/lexicon.js';
import { createModel, expectedShapes, type Model, type ModelSpec } from './globalpointer.js';
import { readSafetensors, writeSafetensors, type NamedArray } from './safetensors.js';

export const MODEL_FORMAT = 'gp-globalpointer';
export const MODEL_FORMAT_VERSION = 1;

export interface ModelManifest {
  format: typeof MODEL_FORMAT;
  version: number;
  spec: ModelSpec;
  labels: string[];
  threshold: number;
  /** Flat decoding by default; absent in models saved before it existed: nested. */
  flat?: boolean;
  /** Tokens shared by consecutive windows of a text longer than spec.maxLength. */
  windowOverlap: number;
}

export const MODEL_FILES = {
  manifest: 'model.json',
  weights: 'weights.safetensors',
  tokenizer: 'tokenizer.json',
  config: 'config.yaml',
  lexicon: 'lexicon.txt',
} as const;

export function snapshotParams(params: Map<string, tf.Variable>): Map<string, NamedArray> {
  return new Map([...params].map(([name, v]) => [name, { shape: v.shape, data: v.dataSync() as Float32Array }]));
}

export function saveModel(
  dir: string,
  parts: { model: Model; labels: string[]; threshold: number; flat: boolean; windowOverlap: number; tokenizerJson: string; configYaml: string },
): void {
  mkdirSync(dir, { recursive: true });
  writeSafetensors(join(dir, MODEL_FILES.weights), snapshotParams(parts.model.params), { format: MODEL_FORMAT });
  writeFileAtomic(join(dir, MODEL_FILES.tokenizer), parts.tokenizerJson);
  writeFileAtomic(join(dir, MODEL_FILES.config), parts.configYaml);
  if (parts.model.lexicon) writeFileAtomic(join(dir, MODEL_FILES.lexicon), lexiconText(parts.model.lexicon));
  const manifest: ModelManifest = {
    format: MODEL_FORMAT,
    version: MODEL_FORMAT_VERSION,
    spec: parts.model.spec,
    labels: parts.labels,
    threshold: parts.threshold,
    flat: parts.flat,
    windowOverlap: parts.windowOverlap,
  };
  writeFileAtomic(join(dir, MODEL_FILES.manifest), JSON.stringify(manifest, null, 2) + '\n');
}

/** The checked model.json of a model directory. */
export function readManifest(dir: string): ModelManifest {
  const file = join(dir, MODEL_FILES.manifest);
  if (!existsSync(file)) throw new GpError(`${dir}: not a gp model directory (no ${MODEL_FILES.manifest})`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new GpError(`${file}: corrupt model manifest: ${(err as Error).message}`);
  }
  const problem = manifestProblem(parsed);
  if (problem) throw new GpError(`${file}: ${problem}`);
  return parsed as ModelManifest;
}

/**
 * What is wrong with a parsed model.json, checked as far as loading relies on it (the spec's details are left to
 * createModel, which loadModel guards), or null.
 */
export function manifestProblem(value: unknown): string | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'corrupt model manifest: not a JSON object';
  const m = value as Record<string, unknown>;
  if (m.format !== MODEL_FORMAT) return `format is ${JSON.stringify(m.format)}, expected ${MODEL_FORMAT}`;
  if (typeof m.version !== 'number') return 'corrupt model manifest: no format version';
  if (m.version > MODEL_FORMAT_VERSION) return `written by a newer gp (format version ${m.version}); upgrade gp to read it`;
  const spec = m.spec as Partial<Record<keyof ModelSpec, unknown>> | null | undefined;
  if (typeof spec !== 'object' || spec === null) return 'corrupt model manifest: no spec';
  for (const key of ['dim', 'vocabSize', 'numTypes', 'maxLength'] as const) {
    const n = spec[key];
    if (!Number.isInteger(n) || (n as number) < 1) return `corrupt model manifest: spec.${key} is ${JSON.stringify(n)}, expected a positive integer`;
  }
  if (!Array.isArray(m.labels) || !m.labels.every((l) => typeof l === 'string')) return 'corrupt model manifest: labels must be a list of strings';
  if (m.labels.length !== spec.numTypes) return 'labels do not match spec.numTypes';
  if (typeof m.threshold !== 'number') return 'corrupt model manifest: threshold must be a number';
  if (m.flat !== undefined && typeof m.flat !== 'boolean') return 'corrupt model manifest: flat must be true or false';
  if (!Number.isInteger(m.windowOverlap) || (m.windowOverlap as number) < 0) return 'corrupt model manifest: windowOverlap must be a non-negative integer';
  return null;
}

/** Copy saved arrays into a model's variables, insisting on the exact set of names and shapes. */
export function assignWeights(model: Model, tensors: Map<string, NamedArray>, source: string): void {
  const expected = expectedShapes(model.spec);
  const missing = [...expected.keys()].filter((n) => !tensors.has(n));
  const unexpected = [...tensors.keys()].filter((n) => !expected.has(n));
  const wrong = [...expected]
    .filter(([n, shape]) => tensors.has(n) && tensors.get(n)!.shape.join(',') !== shape.join(','))
    .map(([n, shape]) => `${n} is [${tensors.get(n)!.shape}], expected [${shape}]`);
  const problems = [
    ...(missing.length ? [`missing: ${missing.join(', ')}`] : []),
    ...(unexpected.length ? [`unexpected: ${unexpected.join(', ')}`] : []),
    ...wrong,
  ];
  if (problems.length) throw new GpError(`${source}: weights do not fit the model:\n  ${problems.join('\n  ')}`);
  for (const [name, variable] of model.params) {
    const { shape, data } = tensors.get(name)!;
    tf.tidy(() => variable.assign(tf.tensor(data, shape, 'float32')));
  }
}

/** A spec damaged past what manifestProblem checks makes createModel throw; that is the file's fault, not a bug. */
function buildFromSpec(spec: ModelSpec, file: string): Model {
  try {
    return createModel(spec, 0);
  } catch (err) {
    throw new GpError(`${file}: spec does not describe a model this gp can build: ${(err as Error).message}`);
  }
}

export interface LoadedModel {
  model: Model;
  manifest: ModelManifest;
  tokenizerJson: unknown;
  dir: string;
}

export function loadModel(dir: string): LoadedModel {
  const manifest = readManifest(dir);
  const tokenizerFile = join(dir, MODEL_FILES.tokenizer);
  let tokenizerJson: unknown;
  try {
    tokenizerJson = JSON.parse(readFileSync(tokenizerFile, 'utf8'));
  } catch (err) {
    throw new GpError(`${tokenizerFile}: cannot load tokenizer: ${(err as Error).message}`);
  }
  const weightsFile = join(dir, MODEL_FILES.weights);
  const { tensors } = readSafetensors(weightsFile);
  const model = buildFromSpec(manifest.spec, join(dir, MODEL_FILES.manifest));
  assignWeights(model, tensors, weightsFile);
  if (manifest.spec.lexicon) model.lexicon = readLexicon(join(dir, MODEL_FILES.lexicon));
  return { model, manifest, tokenizerJson, dir };
}
