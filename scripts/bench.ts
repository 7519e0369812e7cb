/**
 * Speed and memory of training and prediction, per backend, side by side with a PyTorch reference of the same model
 * (issue #5). Numbers for docs/performance.md.
 *
 *   node --import tsx scripts/bench.ts [--backends tensorflow,wasm] [--steps N] [--repeats R] [--json out.json]
 *
 * Each backend runs in a child process of its own (a process holds one tfjs backend, libtensorflow reads its thread
 * settings once, and peak RSS is per process), then scripts/torch_reference.py runs on the same batches and texts
 * with the Python of GP_TORCH_PYTHON (default python3); where torch is missing the table says so and goes on.
 *
 * Per process: W warm-up steps, then R repeats of N training steps, each timed as a whole (tokens/s of real tokens
 * and of padded positions); then one warm-up and R timed passes of prediction over the texts (characters/s) through
 * predictEntities, tokenizer included. The table shows medians over repeats (and over --rounds, which reruns every
 * process, interleaved). Peak RSS is the process's maxRSS after training and after prediction; tensors are
 * tf.memory().numTensors after warm-up and after the last step, which must be equal.
 *
 * A training step is the loop's own (src/train/train.ts, no regulariser): batchTensors, tf.variableGrads of
 * multilabelCrossEntropy(forward(...)) over every parameter, loss read back, adamWStep (global norm read back, clip,
 * AdamW), everything disposed.
 *
 * Options, defaults in brackets:
 *   --backends   [tensorflow,wasm: those that load here]; any of tensorflow, wasm, cpu, comma-separated
 *   --steps      [tensorflow 10, wasm 3, cpu 1; torch as tensorflow]   --warmup [2]   --repeats [3]   --rounds [1]
 *   --batch [16]  --length [128]  --min-length [= length: every window full]  --dim [256]  --layers [2]  --heads [4]
 *   --head [globalpointer | efficient]  --head-size [64]  --types [10]  --vocab [4000]  --gold [≤ 3 cells per window]
 *   --texts [256 prediction texts of 32 to length − 2 characters]  --predict-batch [64]
 *   --threshold [100]: an untrained model puts about half its cells above 0, so decoding at 0 would time hundreds of
 *                spans per text; a trained one finds a few. Above 100 none pass, so prediction times what a trained
 *                model's does: tokenize, forward, read back, scan every cell.
 *   --threads [2]: libtensorflow's intra-op threads (TF_NUM_INTRAOP_THREADS) and torch.set_num_threads
 *   --env K=V    (repeatable) set for the tfjs children, e.g. TF_NUM_INTEROP_THREADS=1 or TF_ENABLE_ONEDNN_OPTS=0
 *   --seed [1]  --no-torch  --json FILE (options, rows, every repeat of every process)
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend, type LoadedBackendName } from '../src/backend.js';
import { buildTokenizer } from '../src/data/tokenizer.js';
import { predictEntities } from '../src/eval/evaluate.js';
import { createModel, disposeModel } from '../src/model/globalpointer.js';
import { writeFileAtomic } from '../src/io.js';
import { Rng } from '../src/rng.js';
import { asWindows, makeData, parseBenchOptions, runStep, specOf, stepParts, type BenchData } from './bench-step.js';

/** What every child prints as its last stdout line. */
export interface ProcessResult {
  name: string;
  version: string;
  threads?: number;
  train: Array<{ seconds: number; tokensPerSecond: number; paddedPerSecond: number; rssMB: number; tensors?: number }>;
  predict: Array<{ seconds: number; charsPerSecond: number; entitiesPerText: number }>;
  trainPeakRssMB: number;
  peakRssMB: number;
  tensorsAfterWarmup?: number;
  parameters: number;
  error?: string;
}

// ---------------------------------------------------------------------------------------------- one tfjs process

const rssMB = () => process.resourceUsage().maxRSS / 1024;

async function runChild(backend: LoadedBackendName, dataFile: string): Promise<ProcessResult> {
  const data = JSON.parse(readFileSync(dataFile, 'utf8')) as BenchData;
  const info = await initBackend(backend, { threads: backend === 'tensorflow' ? data.threads : undefined });
  const rng = new Rng(data.seed);
  const model = createModel(specOf(data), data.seed);
  const parts = stepParts(model, data, rng);
  const variables = [...model.params.values()];
  const batches = data.batches.map(asWindows);
  let k = 0;
  const next = () => batches[k++ % batches.length];

  for (let s = 0; s < data.warmup; s++) runStep(parts, variables, next(), data.training.lr);
  const tensorsAfterWarmup = tf.memory().numTensors;
  const train: ProcessResult['train'] = [];
  for (let r = 0; r < data.repeats; r++) {
    let real = 0;
    let padded = 0;
    const started = process.hrtime.bigint();
    for (let s = 0; s < data.steps; s++) {
      const batch = next();
      runStep(parts, variables, batch, data.training.lr);
      real += batch.reduce((n, w) => n + w.ids.length, 0);
      padded += batch.length * Math.max(...batch.map((w) => w.ids.length));
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    train.push({ seconds, tokensPerSecond: real / seconds, paddedPerSecond: padded / seconds, rssMB: rssMB(), tensors: tf.memory().numTensors });
  }
  const trainPeakRssMB = rssMB();
  parts.dispose();

  // Prediction through the library's own path: tokenize, window, batch, forward, decode, merge.
  const tokenizer = buildTokenizer(data.texts, { mode: 'char' });
  const labels = Array.from({ length: data.shape.types }, (_, h) => `T${h}`);
  const opts = { maxLength: data.shape.length, overlap: 32, batchSize: data.predictBatchSize, threshold: data.threshold };
  if (tokenizer.vocabSize > data.shape.vocab) throw new Error(`tokenizer has ${tokenizer.vocabSize} entries, the model ${data.shape.vocab}`);
  const predict = (texts: string[]) => predictEntities(model, tokenizer, labels, texts, opts);
  predict(data.texts.slice(0, data.predictBatchSize));
  const chars = data.texts.reduce((n, t) => n + t.length, 0);
  const predictRuns: ProcessResult['predict'] = [];
  for (let r = 0; r < data.repeats; r++) {
    const started = process.hrtime.bigint();
    const found = predict(data.texts);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    predictRuns.push({ seconds, charsPerSecond: chars / seconds, entitiesPerText: found.reduce((n, e) => n + e.length, 0) / found.length });
  }
  const parameters = [...model.params.values()].reduce((n, v) => n + v.size, 0);
  disposeModel(model);
  return {
    name: info.name, version: `${info.package} ${info.version}`, threads: info.threads, train, predict: predictRuns, trainPeakRssMB,
    peakRssMB: rssMB(), tensorsAfterWarmup, parameters,
  };
}

// ---------------------------------------------------------------------------------------------- the parent

/** The backends whose packages load here, tried in child processes so this one stays backend-free. */
function availableBackends(): string[] {
  const probe = `import { initBackend } from ${JSON.stringify(join(import.meta.dirname, '../src/backend.ts'))}; await initBackend(process.argv[1]);`;
  return (['tensorflow', 'wasm'] as const).filter((b) => spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', probe, b], { stdio: 'ignore' }).status === 0);
}

function lastJsonLine(stdout: string): unknown {
  const line = stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(line);
}

function runTfjs(backend: LoadedBackendName, dataFile: string, env: NodeJS.ProcessEnv): ProcessResult {
  const child = spawnSync(process.execPath, [...process.execArgv, process.argv[1], '--child', backend, '--data', dataFile], { env, encoding: 'utf8', maxBuffer: 1 << 26 });
  if (child.status !== 0) {
    const why = child.stderr.split('\n').filter((l) => /Error|error:/.test(l)).slice(0, 3).join(' | ') || `exit ${child.status}`;
    return { name: backend, version: '', train: [], predict: [], trainPeakRssMB: 0, peakRssMB: 0, parameters: 0, error: why };
  }
  return lastJsonLine(child.stdout) as ProcessResult;
}

function runTorch(dataFile: string): ProcessResult {
  const python = process.env.GP_TORCH_PYTHON ?? 'python3';
  const script = join(import.meta.dirname, 'torch_reference.py');
  const child = spawnSync(python, [script, dataFile], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const failed = (error: string): ProcessResult => ({ name: 'torch', version: '', train: [], predict: [], trainPeakRssMB: 0, peakRssMB: 0, parameters: 0, error });
  if (child.error) return failed(`${python}: ${child.error.message} (set GP_TORCH_PYTHON to a Python with torch)`);
  try {
    const out = lastJsonLine(child.stdout) as ProcessResult;
    return out.error ? failed(`${out.error} (set GP_TORCH_PYTHON to a Python with torch)`) : out;
  } catch {
    return failed(`${python} ${script} failed: ${child.stderr.trim().split('\n').pop() ?? `exit ${child.status}`}`);
  }
}

const median = (xs: number[]): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

interface Row {
  process: string;
  version: string;
  steps: number;
  trainTokensPerSecond: number;
  trainPaddedPerSecond: number;
  trainRatioToTorch: number;
  predictCharsPerSecond: number;
  predictRatioToTorch: number;
  entitiesPerText: number;
  trainPeakRssMB: number;
  peakRssMB: number;
  tensors: string;
  /** Every repeat's tokens/s, all rounds, to show the spread behind the median. */
  trainRuns: number[];
  predictRuns: number[];
  error?: string;
}

function summarise(label: string, results: ProcessResult[], steps: number, torch: Row | undefined): Row {
  const errored = results.find((r) => r.error);
  const train = results.flatMap((r) => r.train);
  const predict = results.flatMap((r) => r.predict);
  const tokens = median(train.map((t) => t.tokensPerSecond));
  const chars = median(predict.map((p) => p.charsPerSecond));
  const warm = results.map((r) => r.tensorsAfterWarmup).filter((n) => n !== undefined);
  const last = results.map((r) => r.train[r.train.length - 1]?.tensors).filter((n) => n !== undefined);
  return {
    process: label,
    version: results[0]?.version ?? '',
    steps,
    trainTokensPerSecond: tokens,
    trainPaddedPerSecond: median(train.map((t) => t.paddedPerSecond)),
    trainRatioToTorch: torch ? tokens / torch.trainTokensPerSecond : NaN,
    predictCharsPerSecond: chars,
    predictRatioToTorch: torch ? chars / torch.predictCharsPerSecond : NaN,
    entitiesPerText: median(predict.map((p) => p.entitiesPerText)),
    trainPeakRssMB: Math.max(...results.map((r) => r.trainPeakRssMB)),
    peakRssMB: Math.max(...results.map((r) => r.peakRssMB)),
    tensors: warm.length ? `${warm.join('/')} → ${last.join('/')}` : '–',
    trainRuns: train.map((t) => Math.round(t.tokensPerSecond)),
    predictRuns: predict.map((p) => Math.round(p.charsPerSecond)),
    ...(errored ? { error: errored.error } : {}),
  };
}

function table(rows: Row[]): string {
  const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '–');
  const header = ['process', 'steps', 'train tok/s (real)', 'padded pos/s', '× torch', 'predict chars/s', '× torch', 'peak RSS MB (train / all)', 'tensors warm → end'];
  const lines = rows.map((r) =>
    r.error
      ? [r.process, '', `skipped: ${r.error}`, '', '', '', '', '', '']
      : [r.process, String(r.steps), fmt(r.trainTokensPerSecond), fmt(r.trainPaddedPerSecond), fmt(r.trainRatioToTorch, 2), fmt(r.predictCharsPerSecond), fmt(r.predictRatioToTorch, 2), `${fmt(r.trainPeakRssMB)} / ${fmt(r.peakRssMB)}`, r.tensors],
  );
  return [header, header.map(() => '---'), ...lines].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}

const DEFAULT_STEPS: Record<LoadedBackendName, number> = { tensorflow: 10, wasm: 3, cpu: 1 };

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const childAt = argv.indexOf('--child');
  if (childAt >= 0) {
    const result = await runChild(argv[childAt + 1] as LoadedBackendName, argv[argv.indexOf('--data') + 1]);
    process.stdout.write(JSON.stringify(result) + '\n');
    return;
  }
  const { o, values } = parseBenchOptions(argv, {
    backends: { type: 'string' }, rounds: { type: 'string' }, env: { type: 'string', multiple: true }, 'no-torch': { type: 'boolean' }, json: { type: 'string' },
  });
  const names = typeof values.backends === 'string' ? values.backends.split(',').filter(Boolean) : availableBackends();
  for (const b of names) if (!Object.hasOwn(DEFAULT_STEPS, b)) throw new Error(`--backends: "${b}" is not one of ${Object.keys(DEFAULT_STEPS).join(', ')}`);
  const backends = names as LoadedBackendName[];
  const rounds = Number(values.rounds ?? 1);
  const useTorch = !values['no-torch'];
  const json = typeof values.json === 'string' ? values.json : undefined;
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const kv of Array.isArray(values.env) ? values.env.map(String) : []) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new Error(`--env: expected KEY=VALUE, got "${kv}"`);
    env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  const stepsFor = (backend: LoadedBackendName) => o.steps ?? DEFAULT_STEPS[backend];
  const torchSteps = o.steps ?? DEFAULT_STEPS.tensorflow;
  const dir = mkdtempSync(join(tmpdir(), 'gp-bench-'));
  const files = new Map<number, string>();
  const fileFor = (steps: number) => {
    let file = files.get(steps);
    if (!file) {
      file = join(dir, `data-${steps}.json`);
      writeFileSync(file, JSON.stringify(makeData(o, steps)));
      files.set(steps, file);
    }
    return file;
  };
  const log = (line: string) => process.stderr.write(line + '\n');
  const results = new Map<string, ProcessResult[]>();
  const push = (key: string, r: ProcessResult) => results.set(key, [...(results.get(key) ?? []), r]);
  try {
    for (let round = 1; round <= rounds; round++) {
      if (useTorch) {
        log(`round ${round}: torch (${torchSteps} steps × ${o.repeats})`);
        push('torch', runTorch(fileFor(torchSteps)));
      }
      for (const backend of backends) {
        log(`round ${round}: ${backend} (${stepsFor(backend)} steps × ${o.repeats})`);
        push(backend, runTfjs(backend, fileFor(stepsFor(backend)), env));
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const torchRow = useTorch ? summarise('torch', results.get('torch')!, torchSteps, undefined) : undefined;
  const torchOk = torchRow && !torchRow.error ? torchRow : undefined;
  const rows = [...(torchRow ? [torchRow] : []), ...backends.map((b) => summarise(b, results.get(b)!, stepsFor(b), torchOk))];
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const command = ['node', ...process.execArgv, relative(process.cwd(), process.argv[1]), ...argv].join(' ');
  const machine = `${cpu}, ${availableParallelism()} cores, Node ${process.version}`;
  const length = o.minLength === o.length ? String(o.length) : `${o.minLength}–${o.length}`;
  const shape = `batch ${o.batch} × ${length}, d${o.dim}, ${o.layers} layers, ${o.heads} heads, ${o.head} head ${o.types} types × ${o.headSize}, vocab ${o.vocab}`;
  process.stdout.write(`${command}\n${machine}; ${shape}; medians of ${o.repeats} repeats × ${rounds} round(s)\n\n${table(rows)}\n`);
  if (!torchRow) process.stdout.write('\n(PyTorch reference not run: --no-torch)\n');
  else if (torchRow.error) process.stdout.write(`\nPyTorch reference skipped: ${torchRow.error}\n`);
  if (json) {
    const record = { command, machine, shape, options: { ...o, backends, rounds, env: values.env ?? [] }, date: new Date().toISOString(), rows, raw: Object.fromEntries(results) };
    writeFileAtomic(json, JSON.stringify(record, null, 2) + '\n');
  }
}

await main();
