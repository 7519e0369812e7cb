/**
 * The training loop, top to bottom: read the corpora, build or load the tokenizer, encode, create the model, then
 * for each epoch: length-bucketed batches → loss → AdamW step; evaluate on dev; keep the model with the best dev F1.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend, type BackendInfo } from '../backend.js';
import { configToYaml } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { readCorpus, type ReadReport } from '../data/corpus.js';
import { batchTensors, disposeBatch, dropTokens, encodeExamples, makeBatches, tokenFeatures, type EncodeStats } from '../data/encode.js';
import { readLexicon } from '../data/lexicon.js';
import { TextTokenizer, buildTokenizer } from '../data/tokenizer.js';
import { ConfigError, GpError } from '../errors.js';
import { SWEEP_DECODINGS, tuneDecoding, type Decoding } from '../eval/evaluate.js';
import type { Scores } from '../eval/metrics.js';
import { createModel, disposeModel, forward, parameterGroup, type Model, type ModelSpec } from '../model/globalpointer.js';
import { bertModelSpec, loadBertWeights, openBertCheckpoint } from '../model/bert.js';
import { saveModel } from '../model/io.js';
import { writeFileAtomic } from '../io.js';
import { lineChartSvg, type Point } from '../plot.js';
import { hasCheckpoint, loadCheckpoint, saveCheckpoint, type LoopState } from './checkpoint.js';
import { Rng } from '../rng.js';
import type { Example } from '../types.js';
import { adamWStep, createAdamWState, disposeAdamWState, updateAverage, withAverage } from './optimizer.js';
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
  dev: DevResult | null;
  best: boolean;
}

/** Dev scores of an epoch under the decoding it was evaluated with (tuned on dev with training.tuneDecoding). */
export interface DevResult {
  scores: Scores;
  decoding: Required<Decoding>;
}

export interface TrainOptions {
  reporter?: TrainReporter;
  /** Continue from outDir's checkpoint instead of starting afresh. */
  resume?: boolean;
  /** When aborted (SIGINT, SIGTERM), the loop saves a checkpoint after the current step and returns. */
  signal?: AbortSignal;
}

export interface TrainSummary {
  outDir: string;
  /** True when the run stopped on the signal; `gp train --resume` continues it. */
  interrupted: boolean;
  /** Why the run ended before its last epoch, if it did. */
  stoppedEarly: string | null;
  backend: BackendInfo;
  bestEpoch: number;
  bestDevF1: number | null;
  /** Dev scores of the kept model (from this run or, after a resume, from its history). */
  bestDev: Scores | null;
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

/** One line of metrics.jsonl. */
export interface MetricsRow {
  epoch: number;
  step: number;
  trainLoss: number;
  lr: number;
  lambda: number;
  seconds: number;
  dev: Scores | null;
  /** Absent in runs from before decodings were tuned: the config's threshold, nested. */
  decoding?: Required<Decoding>;
}

/** Training curves: train loss, and dev F1 micro and per type, per epoch. */
export function curvesSvg(history: MetricsRow[]): Promise<string> {
  const points: Point[] = history.flatMap((row) => [
    { x: row.epoch, y: row.trainLoss, series: 'train loss', panel: 'train loss' },
    ...(row.dev
      ? [
          { x: row.epoch, y: row.dev.micro.f1, series: 'dev F1 (micro)', panel: 'dev F1 (micro)' },
          ...Object.entries(row.dev.perType).map(([label, prf]) => ({ x: row.epoch, y: prf.f1, series: label, panel: 'dev F1 per type' })),
        ]
      : []),
  ]);
  return lineChartSvg(points, { title: 'training curves', x: 'epoch' });
}

export async function train(config: Config, outDir: string, opts: TrainOptions = {}): Promise<TrainSummary> {
  const reporter = opts.reporter ?? silentReporter;
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

  // Tokenizer: a pretrained encoder brings its own, the one its embedding table was trained with.
  const { encoder } = config.model;
  const pretrained = encoder.type === 'bert' ? openBertCheckpoint(encoder.path) : null;
  const tokenizer = pretrained
    ? pretrained.tokenizer
    : config.tokenizer.path
      ? TextTokenizer.fromJSON(JSON.parse(readFileSync(config.tokenizer.path, 'utf8')))
      : buildTokenizer(
          trainExamples.map((e) => e.text),
          { mode: config.tokenizer.mode, minFreq: config.tokenizer.minFreq, maxVocab: config.tokenizer.maxVocab, lowercase: config.tokenizer.lowercase },
        );
  reporter.log(`tokenizer: ${tokenizer.vocabSize} entries (${pretrained ? `from ${pretrained.dir}` : config.tokenizer.path ?? `built, ${config.tokenizer.mode} mode`})`);

  const overlap = config.data.windowOverlap;
  const maxLength = Math.min(config.data.maxLength, pretrained?.maxLength ?? Infinity);
  if (config.model.lexicon !== undefined && !existsSync(config.model.lexicon)) {
    throw new ConfigError('model.lexicon', `${config.model.lexicon} does not exist (the shipped configs' word list comes from \`npm run fetch:lexicon\`)`);
  }
  const lexicon = config.model.lexicon !== undefined ? readLexicon(config.model.lexicon) : undefined;
  if (lexicon) reporter.log(`lexicon: ${lexicon.words.size} words from ${config.model.lexicon}`);
  const { windows, stats } = encodeExamples(trainExamples, tokenizer, labels, { maxLength, overlap, wordFeatures: config.model.wordFeatures, lexicon });
  reporter.log(describeStats('train', stats));

  // Model and optimizer.
  if (config.model.bigramBuckets > 0 && tokenizer.vocabSize > 46340) {
    // The bucket index a·V + b must stay below 2³¹ (src/model/globalpointer.ts, bigramBuckets).
    throw new ConfigError('model.bigramBuckets', `needs a vocabulary of at most 46,340 entries; the tokenizer has ${tokenizer.vocabSize}`);
  }
  const spec: ModelSpec =
    encoder.type !== 'bert'
      ? { ...config.model, encoder, lexicon: lexicon ? true : undefined, vocabSize: tokenizer.vocabSize, numTypes: labels.length, maxLength }
      : bertModelSpec(pretrained!, config.model, labels.length, maxLength);
  const model: Model = { ...createModel(spec, rng.seed()), lexicon };
  if (pretrained && !opts.resume) loadBertWeights(model, pretrained.dir);
  const paramCount = [...model.params.values()].reduce((n, v) => n + v.size, 0);
  reporter.log(`model: ${spec.encoder.layers}-layer ${spec.encoder.type} d${spec.dim}${pretrained ? ` from ${pretrained.dir}` : ''}, ${spec.head.type} head, ${(paramCount / 1e6).toFixed(2)}M parameters`);
  const { training, regularizer: reg } = config;
  const optimizer = createAdamWState(model.params, training.ema > 0);
  const divOpts = divergenceOptions(reg, labels);
  const batchesPerEpoch = Math.ceil(windows.length / training.batchSize);
  const totalSteps = batchesPerEpoch * training.epochs;
  const configYaml = configToYaml(config);
  const tokenizerJson = JSON.stringify(tokenizer.toJSON());
  const evalOptions = { maxLength, overlap, batchSize: training.batchSize * 2 };
  const devDecodings = training.tuneDecoding ? SWEEP_DECODINGS : [{ threshold: training.threshold, flat: training.flat }];
  const { encoderLr } = training;
  const lrScale = (name: string) => (encoderLr !== undefined && parameterGroup(name) === 'encoder' ? encoderLr / training.lr : 1);

  mkdirSync(outDir, { recursive: true });
  let state: LoopState;
  if (opts.resume) {
    state = loadCheckpoint(outDir, model, optimizer);
    reporter.log(`resuming at epoch ${state.epoch}, step ${state.step} (${state.batchesDone} batches into the epoch)`);
  } else {
    if (hasCheckpoint(outDir)) reporter.log(`warning: ${outDir} holds a checkpoint; starting afresh replaces it (use --resume to continue it)`);
    state = {
      step: 0, epoch: 1, batchesDone: 0, rngNow: rng.state, rngAtEpochStart: rng.state, lossSum: 0, tokensSeen: 0,
      badSteps: 0, best: null, evalsWithoutImprovement: 0, history: [],
    };
  }
  // The resolved config is there from the start, so an interrupted run can be resumed from the directory alone.
  writeFileAtomic(join(outDir, 'train-config.yaml'), configYaml);
  const writeMetrics = () => writeFileAtomic(join(outDir, 'metrics.jsonl'), state.history.map((h) => JSON.stringify(h) + '\n').join(''));
  writeMetrics();
  const checkpoint = () => {
    state.rngNow = rng.state;
    saveCheckpoint(outDir, model, optimizer, state);
  };

  const epochs: EpochInfo[] = [];
  let interrupted = false;
  let stoppedEarly: string | null = null;
  try {
    while (state.epoch <= training.epochs && !stoppedEarly) {
      const epoch = state.epoch;
      const epochStart = Date.now();
      // The epoch's batch order comes from the RNG as it was when the epoch began, so a resumed epoch sees the same batches.
      rng.state = state.rngAtEpochStart;
      const batches = makeBatches(windows, training.batchSize, rng);
      if (state.batchesDone > 0) rng.state = state.rngNow;
      reporter.epochStart(epoch, training.epochs, batches.length);
      for (let b = state.batchesDone; b < batches.length; b++) {
        const lr = learningRateAt(state.step, totalSteps, training.lr, training.schedule);
        const lambda = reg.type === 'none' ? 0 : lambdaAt(state.step, totalSteps, batchesPerEpoch, reg.weight, reg.schedule);
        const input = batchTensors(dropTokens(batches[b], training.tokenDropout, tokenizer.unkId, rng), labels.length, tokenizer.padId, true);
        let vatDirection: tf.Tensor3D | null = null;
        if (reg.type === 'vat' && lambda > 0) {
          const target = forward(model, input.ids, input.mask, { ...tokenFeatures(input), training: true, rng }); // [B, H, L, L], no tape
          vatDirection = vatPerturbation(model, input, target, reg, divOpts, rng);
          target.dispose();
        }
        let parts: LossParts | null = null;
        const { value, grads } = tf.variableGrads(() => {
          parts = batchLoss(model, input, reg, lambda, divOpts, rng, vatDirection);
          return parts.total;
        }, [...model.params.values()]);
        const loss = value.dataSync()[0];
        const byName = new Map([...model.params].map(([name, v]) => [name, grads[v.name]] as const));
        const gradNorm = Number.isFinite(loss) ? adamWStep(model.params, byName, optimizer, lr, training.clipNorm, training, lrScale) : NaN;
        if (optimizer.average && Number.isFinite(gradNorm)) updateAverage(model.params, optimizer.average, training.ema, optimizer.step);
        const { ce, divergence } = parts!;
        const regShare = divergence ? (lambda * divergence.dataSync()[0]) / Math.max(loss, 1e-12) : 0;
        tf.dispose([value, ce, ...(divergence ? [divergence] : []), ...(vatDirection ? [vatDirection] : [])]);
        tf.dispose(grads);
        disposeBatch(input);
        state.step += 1;
        state.batchesDone = b + 1;
        if (!Number.isFinite(gradNorm)) {
          state.badSteps += 1;
          reporter.log(`warning: step ${state.step}: loss ${loss}, gradient norm ${gradNorm}; step skipped (${state.badSteps} in a row)`);
          if (state.badSteps >= training.maxBadSteps)
            throw new GpError(`training diverged: ${state.badSteps} steps in a row with a non-finite loss or gradient, the last at step ${state.step} (epoch ${epoch}); try a lower training.lr or training.clipNorm`);
        } else {
          state.badSteps = 0;
          state.lossSum += loss;
        }
        state.tokensSeen += input.tokens;
        const seconds = (Date.now() - epochStart) / 1000;
        reporter.step({ epoch, step: state.step, stepInEpoch: b + 1, loss, regShare, lambda, lr, gradNorm, tokensPerSecond: state.tokensSeen / Math.max(seconds, 1e-3) });
        // Let pending events run (a SIGINT handler sets the abort signal); without this the loop never yields mid-epoch.
        await new Promise((resolve) => setImmediate(resolve));
        if (opts.signal?.aborted) {
          interrupted = true;
          break;
        }
        if (training.checkpointEvery > 0 && state.step % training.checkpointEvery === 0 && b + 1 < batches.length) checkpoint();
      }
      if (interrupted) {
        checkpoint();
        reporter.log(`interrupted at step ${state.step}: checkpoint saved; continue with gp train --resume ${outDir}`);
        break;
      }

      // With training.ema, the averaged parameters are the ones evaluated and saved.
      const evaluateAndKeep = () => {
        const dev = devExamples.length ? tuneDecoding(model, tokenizer, labels, devExamples, evalOptions, devDecodings) : null;
        const f1 = dev ? dev.scores.micro.f1 : epoch; // without dev, the last epoch is the one kept
        const isBest = state.best === null || f1 > state.best.f1;
        if (isBest) {
          state.best = { epoch, step: state.step, f1 };
          const decoding = dev?.decoding ?? { threshold: training.threshold, flat: training.flat };
          saveModel(outDir, { model, labels, threshold: decoding.threshold, flat: decoding.flat, windowOverlap: overlap, tokenizerJson, configYaml });
        }
        return { dev, isBest };
      };
      const { dev, isBest } = optimizer.average ? withAverage(model.params, optimizer.average, evaluateAndKeep) : evaluateAndKeep();
      state.evalsWithoutImprovement = isBest ? 0 : state.evalsWithoutImprovement + 1;
      const info: EpochInfo = { epoch, step: state.step, trainLoss: state.lossSum / Math.max(1, batches.length), seconds: (Date.now() - epochStart) / 1000, dev, best: isBest };
      epochs.push(info);
      const row: MetricsRow = {
        epoch,
        step: state.step,
        trainLoss: info.trainLoss,
        lr: learningRateAt(state.step - 1, totalSteps, training.lr, training.schedule),
        lambda: reg.type === 'none' ? 0 : lambdaAt(state.step - 1, totalSteps, batchesPerEpoch, reg.weight, reg.schedule),
        seconds: info.seconds,
        dev: dev?.scores ?? null,
        ...(dev ? { decoding: dev.decoding } : {}),
      };
      state.history.push(row);
      writeMetrics();
      writeFileAtomic(join(outDir, 'curves.svg'), await curvesSvg(state.history as MetricsRow[]));
      reporter.epochEnd(info);
      if (training.patience > 0 && state.evalsWithoutImprovement >= training.patience)
        stoppedEarly = `no better dev F1 in ${training.patience} evaluations (best ${state.best!.f1.toFixed(4)} at epoch ${state.best!.epoch})`;
      // Epochs so far, resumed ones included, predict the next: stop before it would end past the budget.
      const spent = (state.history as MetricsRow[]).reduce((sum, h) => sum + h.seconds, 0);
      if (!stoppedEarly && training.maxMinutes > 0 && epoch < training.epochs && spent * (1 + 1 / state.history.length) > training.maxMinutes * 60)
        stoppedEarly = `another epoch would end past training.maxMinutes = ${training.maxMinutes} (${(spent / 60).toFixed(1)} min so far)`;
      // The next epoch starts from a fresh position; checkpoint that so a resume never repeats an evaluated epoch.
      state.batchesDone = 0;
      state.lossSum = 0;
      state.tokensSeen = 0;
      state.rngAtEpochStart = rng.state;
      state.epoch += 1;
      checkpoint();
    }
  } finally {
    disposeAdamWState(optimizer);
    disposeModel(model);
  }
  if (stoppedEarly) reporter.log(`early stop: ${stoppedEarly}`);

  const best = state.best;
  const bestRow = best ? (state.history.find((h) => (h as { epoch: number }).epoch === best.epoch) as { dev: Scores | null } | undefined) : undefined;
  const summary: TrainSummary = {
    outDir,
    interrupted,
    stoppedEarly,
    backend,
    bestEpoch: best?.epoch ?? 0,
    bestDevF1: devExamples.length && best ? best.f1 : null,
    bestDev: bestRow?.dev ?? null,
    epochs,
    seconds: (Date.now() - started) / 1000,
    trainStats: stats,
  };
  if (!interrupted)
    writeFileAtomic(
      join(outDir, 'metrics.json'),
      JSON.stringify({ bestEpoch: summary.bestEpoch, bestDevF1: summary.bestDevF1, backend: backend.name, seconds: summary.seconds, dev: bestRow?.dev ?? null }, null, 2) + '\n',
    );
  return summary;
}
