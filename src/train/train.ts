/**
 * The training loop, top to bottom: read the corpora, build or load the tokenizer, encode, create the model, then
 * for each epoch: length-bucketed batches → loss → AdamW step; evaluate on dev; keep the model with the best dev F1.
 */
import { mkdirSync, readFileSync, appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend, type BackendInfo } from '../backend.js';
import { configToYaml } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { readCorpus, type ReadReport } from '../data/corpus.js';
import { batchTensors, disposeBatch, encodeExamples, makeBatches, type EncodeStats } from '../data/encode.js';
import { TextTokenizer, buildTokenizer } from '../data/tokenizer.js';
import { GpError } from '../errors.js';
import { evaluateExamples, type EvalResult } from '../eval/evaluate.js';
import { createModel, disposeModel, forward, type Model, type ModelSpec } from '../model/globalpointer.js';
import { saveModel } from '../model/io.js';
import { Rng } from '../rng.js';
import type { Example } from '../types.js';
import { adamWStep, createAdamWState, disposeAdamWState } from './optimizer.js';
import { batchLoss, divergenceOptions, vatPerturbation, type LossParts } from './regularizer.js';
import { lambdaAt, learningRateAt } from './schedule.js';

/** What the loop tells whoever drives it (the CLI draws progress bars from this; tests stay silent). */
export interface TrainReporter {
  log(line: string): void;
  epochStart(epoch: number, epochs: number, steps: number): void;
  step(info: StepInfo): void;
  epochEnd(info: EpochInfo): void;
}

export interface StepInfo {
  epoch: number;
  step: number;
  stepInEpoch: number;
  loss: number;
  /** The regulariser's weighted share of the loss, λ·D / total (0 without one). */
  regShare: number;
  lambda: number;
  lr: number;
  gradNorm: number;
  tokensPerSecond: number;
}

export interface EpochInfo {
  epoch: number;
  step: number;
  trainLoss: number;
  seconds: number;
  dev: EvalResult | null;
  best: boolean;
}

export interface TrainSummary {
  outDir: string;
  backend: BackendInfo;
  bestEpoch: number;
  bestDevF1: number | null;
  epochs: EpochInfo[];
  seconds: number;
  trainStats: EncodeStats;
}

export const silentReporter: TrainReporter = { log() {}, epochStart() {}, step() {}, epochEnd() {} };

function readSplit(file: string, config: Config, reporter: TrainReporter): { examples: Example[]; report: ReadReport } {
  const { format, scheme, join: joinMode, stripTokenDigit, invalidTags } = config.data;
  const result = readCorpus(file, { format, scheme, join: joinMode, stripTokenDigit, invalidTags });
  const r = result.report;
  reporter.log(`data: ${file}: ${r.examples} examples, ${r.entities} entities (${r.format}${r.repairedTags ? `, ${r.repairedTags} tags repaired` : ''})`);
  for (const w of r.warnings.slice(0, 5)) reporter.log(`  warning: ${w}`);
  return result;
}

function describeStats(name: string, s: EncodeStats): string {
  const lost = s.misaligned + s.cut + s.unknownLabel;
  return `${name}: ${s.windows} windows, ${s.tokens} tokens, ${s.entities} entities${lost ? ` (not representable: ${s.misaligned} misaligned, ${s.cut} cut by windows, ${s.unknownLabel} unknown label)` : ''}`;
}

export async function train(config: Config, outDir: string, reporter: TrainReporter = silentReporter): Promise<TrainSummary> {
  const started = Date.now();
  const backend = await initBackend(config.backend, { threads: config.threads || undefined, log: (l) => reporter.log(l) });
  const rng = new Rng(config.seed);

  // Data.
  const trainSet = readSplit(config.data.train, config, reporter);
  const trainExamples = config.data.limit ? trainSet.examples.slice(0, config.data.limit) : trainSet.examples;
  const devExamples = config.data.dev ? readSplit(config.data.dev, config, reporter).examples : [];
  const labels = [...new Set(trainExamples.flatMap((e) => e.spans.map((s) => s.label)))].sort();
  if (labels.length === 0) throw new GpError(`${config.data.train}: no entities in the training data`);
  const devOnly = [...new Set(devExamples.flatMap((e) => e.spans.map((s) => s.label)))].filter((l) => !labels.includes(l));
  if (devOnly.length) reporter.log(`warning: dev labels never seen in train (they count as misses): ${devOnly.join(', ')}`);
  reporter.log(`labels (${labels.length}): ${labels.join(', ')}`);

  // Tokenizer.
  const tokenizer = config.tokenizer.path
    ? TextTokenizer.fromJSON(JSON.parse(readFileSync(config.tokenizer.path, 'utf8')))
    : buildTokenizer(
        trainExamples.map((e) => e.text),
        { mode: config.tokenizer.mode, minFreq: config.tokenizer.minFreq, maxVocab: config.tokenizer.maxVocab, lowercase: config.tokenizer.lowercase },
      );
  reporter.log(`tokenizer: ${tokenizer.vocabSize} entries (${config.tokenizer.path ?? `built, ${config.tokenizer.mode} mode`})`);

  const { maxLength, windowOverlap: overlap } = config.data;
  const { windows, stats } = encodeExamples(trainExamples, tokenizer, labels, { maxLength, overlap });
  reporter.log(describeStats('train', stats));

  // Model and optimizer.
  const spec: ModelSpec = { ...config.model, vocabSize: tokenizer.vocabSize, numTypes: labels.length, maxLength };
  const model = createModel(spec, rng.seed());
  const paramCount = [...model.params.values()].reduce((n, v) => n + v.size, 0);
  reporter.log(`model: ${spec.encoder.layers}-layer transformer d${spec.dim}, ${spec.head.type} head, ${(paramCount / 1e6).toFixed(2)}M parameters`);
  const optimizer = createAdamWState(model.params);
  const { training, regularizer: reg } = config;
  const divOpts = divergenceOptions(reg, labels);
  const batchesPerEpoch = Math.ceil(windows.length / training.batchSize);
  const totalSteps = batchesPerEpoch * training.epochs;

  mkdirSync(outDir, { recursive: true });
  const configYaml = configToYaml(config);
  writeFileSync(join(outDir, 'metrics.jsonl'), '');
  const epochs: EpochInfo[] = [];
  let best: { epoch: number; f1: number } | null = null;
  let step = 0;

  try {
    for (let epoch = 1; epoch <= training.epochs; epoch++) {
      const epochStart = Date.now();
      const batches = makeBatches(windows, training.batchSize, rng);
      reporter.epochStart(epoch, training.epochs, batches.length);
      let lossSum = 0;
      let tokensSeen = 0;
      for (let b = 0; b < batches.length; b++) {
        const lr = learningRateAt(step, totalSteps, training.lr, training.schedule);
        const lambda = reg.type === 'none' ? 0 : lambdaAt(step, totalSteps, batchesPerEpoch, reg.weight, reg.schedule);
        const input = batchTensors(batches[b], labels.length, tokenizer.padId, true);
        let vatDirection: tf.Tensor3D | null = null;
        if (reg.type === 'vat' && lambda > 0) {
          const target = forward(model, input.ids, input.mask, { training: true, rng }); // [B, H, L, L], no tape
          vatDirection = vatPerturbation(model, input, target, reg, divOpts, rng);
          target.dispose();
        }
        let parts: LossParts | null = null;
        const { value, grads } = tf.variableGrads(() => {
          parts = batchLoss(model, input, reg, lambda, divOpts, rng, vatDirection);
          return parts.total;
        }, [...model.params.values()]);
        const byName = new Map([...model.params].map(([name, v]) => [name, grads[v.name]] as const));
        const gradNorm = adamWStep(model.params, byName, optimizer, lr, training.clipNorm, training);
        const loss = value.dataSync()[0];
        const { ce, divergence } = parts!;
        const regShare = divergence ? (lambda * divergence.dataSync()[0]) / Math.max(loss, 1e-12) : 0;
        tf.dispose([value, ce, ...(divergence ? [divergence] : []), ...(vatDirection ? [vatDirection] : [])]);
        tf.dispose(grads);
        disposeBatch(input);
        step += 1;
        lossSum += loss;
        tokensSeen += input.tokens;
        const seconds = (Date.now() - epochStart) / 1000;
        reporter.step({ epoch, step, stepInEpoch: b + 1, loss, regShare, lambda, lr, gradNorm, tokensPerSecond: tokensSeen / Math.max(seconds, 1e-3) });
      }

      const dev = devExamples.length
        ? evaluateExamples(model, tokenizer, labels, devExamples, { maxLength, overlap, batchSize: training.batchSize * 2, threshold: training.threshold })
        : null;
      const f1 = dev ? dev.scores.micro.f1 : -epoch; // without dev, the last epoch is the one kept
      const isBest = best === null || f1 > best.f1;
      if (isBest) {
        best = { epoch, f1 };
        saveModel(outDir, { model, labels, threshold: training.threshold, windowOverlap: overlap, tokenizerJson: JSON.stringify(tokenizer.toJSON()), configYaml });
      }
      const info: EpochInfo = { epoch, step, trainLoss: lossSum / batches.length, seconds: (Date.now() - epochStart) / 1000, dev, best: isBest };
      epochs.push(info);
      appendFileSync(
        join(outDir, 'metrics.jsonl'),
        JSON.stringify({ epoch, step, trainLoss: info.trainLoss, lr: learningRateAt(step - 1, totalSteps, training.lr, training.schedule), seconds: info.seconds, dev: dev?.scores ?? null }) + '\n',
      );
      reporter.epochEnd(info);
    }
  } finally {
    disposeAdamWState(optimizer);
    disposeModel(model);
  }

  const summary: TrainSummary = {
    outDir,
    backend,
    bestEpoch: best!.epoch,
    bestDevF1: devExamples.length ? best!.f1 : null,
    epochs,
    seconds: (Date.now() - started) / 1000,
    trainStats: stats,
  };
  writeFileSync(
    join(outDir, 'metrics.json'),
    JSON.stringify({ bestEpoch: summary.bestEpoch, bestDevF1: summary.bestDevF1, backend: backend.name, seconds: summary.seconds, dev: epochs[best!.epoch - 1].dev?.scores ?? null }, null, 2) + '\n',
  );
  return summary;
}
