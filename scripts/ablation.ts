/**
 * The ablation of issue #3: does R-Drop with the sigmoid KL (the seed's proposal) beat the baseline, and the softmax
 * KL not? Trains, in this process and on one backend, the same config with the same seeds as
 *
 *   baseline (no regulariser) · rdrop+sigmoid-kl · rdrop+softmax-kl · vat+sigmoid-kl
 *
 * and writes DIR/results.jsonl (a line per finished run), DIR/ablation.md (dev F1 mean ± sd and per seed, training
 * time against the baseline, machine, backend, command) and DIR/ablation-f1.svg (dev F1 per epoch, mean over seeds).
 *
 *   node --import tsx scripts/ablation.ts --sweep [--lambdas 0.5,1,4]           λ sweep for each KL, first seed only
 *   node --import tsx scripts/ablation.ts --from-sweep runs/ablation/sweep.json  the final runs with the best λs
 *   node --import tsx scripts/ablation.ts --rdrop-sigmoid-lambda 1 --rdrop-softmax-lambda 4 --vat-lambda 1
 *
 * Options: --config FILE (configs/ablation.yaml), --set key=value (repeatable, as for gp train), --seeds 1,2,3,
 * --out DIR (runs/ablation), --resume-results (skip the runs already in the results file; an unfinished run starts
 * over, so its time stays comparable), --report-only (rebuild the outputs from the results file; with --sweep, the
 * sweep's). The sweep writes DIR/sweep.jsonl, sweep.json and sweep.md. The script sets `seed` and
 * `regularizer.{type, divergence, weight}` per run; everything else (λ schedule, VAT ε/ξ/K) comes from the config.
 * Runs go seed-major (every variant of seed 1, then of seed 2, …), so an ablation stopped early (Ctrl-C kills the run
 * in progress; the finished ones are already recorded) leaves arms of near-equal size.
 */
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { configToYaml, loadConfig } from '../src/config/load.js';
import type { Config } from '../src/config/schema.js';
import { GpError } from '../src/errors.js';
import { writeFileAtomic } from '../src/io.js';
import { lineChartSvg } from '../src/plot.js';
import { CHECKPOINT_DIR } from '../src/train/checkpoint.js';
import { train, type TrainReporter } from '../src/train/train.js';
import {
  ablationMarkdown, bestLambdas, f1Curves, groupArms, resultsTable, runKey, sweepMarkdown, VARIANTS, VARIANT_NAMES,
  type KL, type RunResult, type VariantName,
} from './ablation-report.js';

interface Options {
  config: string;
  overrides: string[];
  seeds: number[];
  out: string;
  sweep: boolean;
  lambdas: number[];
  fixedLambdas: { sigmoid?: number; softmax?: number; vat?: number };
  fromSweep?: string;
  resume: boolean;
  reportOnly: boolean;
}

interface PlannedRun {
  variant: VariantName;
  lambda: number;
  seed: number;
}

const log = (line: string) => process.stderr.write(line + '\n');

function numberList(flag: string, text: string, integer: boolean): number[] {
  const values = text.split(',').map((s) => Number(s.trim()));
  const bad = values.find((v) => !Number.isFinite(v) || (integer ? !Number.isInteger(v) : v <= 0));
  if (bad !== undefined) throw new GpError(`--${flag} ${text}: expected a comma-separated list of ${integer ? 'integers' : 'positive numbers'}`);
  return values;
}

function positive(flag: string, text: string | undefined): number | undefined {
  return text === undefined ? undefined : numberList(flag, text, false)[0];
}

const FLAGS = {
  config: { type: 'string', default: 'configs/ablation.yaml' },
  set: { type: 'string', multiple: true, default: [] as string[] },
  seeds: { type: 'string', default: '1,2,3' },
  out: { type: 'string', default: 'runs/ablation' },
  sweep: { type: 'boolean', default: false },
  lambdas: { type: 'string', default: '0.5,1,4' },
  'rdrop-sigmoid-lambda': { type: 'string' },
  'rdrop-softmax-lambda': { type: 'string' },
  'vat-lambda': { type: 'string' },
  'from-sweep': { type: 'string' },
  'resume-results': { type: 'boolean', default: false },
  'report-only': { type: 'boolean', default: false },
} as const;

function parseFlags(argv: string[]) {
  try {
    return parseArgs({ args: argv, strict: true, options: FLAGS }).values;
  } catch (err) {
    // parseArgs reports a typo'd or valueless flag as a TypeError; it is a usage error, not a bug.
    throw new GpError((err as Error).message);
  }
}

function parseOptions(argv: string[]): Options {
  const values = parseFlags(argv);
  return {
    config: values.config,
    overrides: [...values.set],
    seeds: numberList('seeds', values.seeds, true),
    out: values.out,
    sweep: values.sweep,
    lambdas: numberList('lambdas', values.lambdas, false),
    fixedLambdas: {
      sigmoid: positive('rdrop-sigmoid-lambda', values['rdrop-sigmoid-lambda']),
      softmax: positive('rdrop-softmax-lambda', values['rdrop-softmax-lambda']),
      vat: positive('vat-lambda', values['vat-lambda']),
    },
    fromSweep: values['from-sweep'],
    resume: values['resume-results'],
    reportOnly: values['report-only'],
  };
}

/** What sweep.json holds; --from-sweep reads `best`. */
interface SweepFile {
  seed: number;
  lambdas: number[];
  best: Partial<Record<KL, number>>;
  results: RunResult[];
}

function readSweepBest(file: string): Partial<Record<KL, number>> {
  let parsed: Partial<SweepFile>;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<SweepFile>;
  } catch (err) {
    throw new GpError(`--from-sweep ${file}: ${(err as Error).message}`);
  }
  if (typeof parsed.best !== 'object' || parsed.best === null) throw new GpError(`--from-sweep ${file}: no "best" λs in it`);
  return parsed.best;
}

/** Explicit flags win, then the sweep's best λ per KL, then 1. VAT borrows the sigmoid KL's λ. */
function finalLambdas(opts: Options): Record<Exclude<VariantName, 'baseline'>, number> {
  const best = opts.fromSweep ? readSweepBest(opts.fromSweep) : {};
  return {
    'rdrop+sigmoid-kl': opts.fixedLambdas.sigmoid ?? best['sigmoid-kl'] ?? 1,
    'rdrop+softmax-kl': opts.fixedLambdas.softmax ?? best['softmax-kl'] ?? 1,
    'vat+sigmoid-kl': opts.fixedLambdas.vat ?? best['sigmoid-kl'] ?? 1,
  };
}

/** The sweep: a baseline for reference, then both KLs at each λ in turn; the final runs: seed-major. */
function plan(opts: Options): PlannedRun[] {
  if (opts.sweep) {
    const seed = opts.seeds[0];
    const rdrop = opts.lambdas.flatMap((lambda) =>
      (['rdrop+sigmoid-kl', 'rdrop+softmax-kl'] as const).map((variant) => ({ variant, lambda, seed })),
    );
    return [{ variant: 'baseline', lambda: 0, seed }, ...rdrop];
  }
  const lambdas = finalLambdas(opts);
  return opts.seeds.flatMap((seed) =>
    VARIANT_NAMES.map((variant) => ({ variant, lambda: variant === 'baseline' ? 0 : lambdas[variant], seed })),
  );
}

function runConfig(base: Config, run: PlannedRun): Config {
  const { type, divergence } = VARIANTS[run.variant];
  return { ...base, seed: run.seed, regularizer: { ...base.regularizer, type, divergence, weight: run.lambda } };
}

/** The config with the per-run fields blanked, hashed: equal digests mean the runs are comparable. */
function configDigest(base: Config): string {
  const neutral = runConfig(base, { variant: 'baseline', lambda: 0, seed: 0 });
  return createHash('sha256').update(configToYaml(neutral)).digest('hex').slice(0, 12);
}

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

function commandLine(): string {
  const script = relative(process.cwd(), process.argv[1]) || process.argv[1];
  return ['node', ...process.execArgv, script, ...process.argv.slice(2)].map(shellQuote).join(' ');
}

function readResults(file: string): RunResult[] {
  if (!existsSync(file)) return [];
  const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim());
  return lines.flatMap((line, i) => {
    try {
      return [JSON.parse(line) as RunResult];
    } catch {
      // Only a kill during the append can cut a line short; that run simply counts as not done.
      log(`warning: ${file}:${i + 1}: not a complete JSON line; ignored`);
      return [];
    }
  });
}

/**
 * Times the optimizer steps of each epoch: from epochStart to the epoch's last step report, which is what comes
 * before the dev evaluation. Prints a line per epoch.
 */
function timingReporter(label: string, verbose: boolean): TrainReporter & { trainSeconds: () => number } {
  let epochStarted = 0;
  let lastStep = 0;
  let total = 0;
  return {
    log: (line) => {
      if (verbose || line.startsWith('warning')) log(`  ${line}`);
    },
    epochStart: () => {
      epochStarted = lastStep = performance.now();
    },
    step: () => {
      lastStep = performance.now();
    },
    epochEnd: (info) => {
      total += lastStep - epochStarted;
      const f1 = info.dev ? info.dev.scores.micro.f1.toFixed(4) : '—';
      log(`  ${label} epoch ${info.epoch}: loss ${info.trainLoss.toFixed(4)}, dev F1 ${f1} (${info.seconds.toFixed(1)} s)`);
    },
    trainSeconds: () => total / 1000,
  };
}

function runDirName(run: PlannedRun): string {
  return `${run.variant.replace('+', '-')}${run.variant === 'baseline' ? '' : `-l${run.lambda}`}-s${run.seed}`;
}

/** What every run of one invocation shares. */
interface Session {
  opts: Options;
  base: Config;
  digest: string;
}

/** One training run, in a directory of its own that is emptied first (a run killed midway starts over). */
async function execute(run: PlannedRun, session: Session, position: { index: number; total: number }): Promise<RunResult> {
  const { opts, base } = session;
  const label = `${run.variant}${run.variant === 'baseline' ? '' : ` λ=${run.lambda}`} seed ${run.seed}`;
  log(`[${position.index + 1}/${position.total}] ${label}`);
  const dir = join(opts.out, opts.sweep ? 'sweep' : 'final', runDirName(run));
  rmSync(dir, { recursive: true, force: true });
  const reporter = timingReporter(label, position.index === 0);
  const started = performance.now();
  const summary = await train(runConfig(base, run), dir, { reporter });
  const wallSeconds = (performance.now() - started) / 1000;
  if (summary.bestDevF1 === null) throw new GpError(`${opts.config}: the ablation compares dev F1, so data.dev must be set`);
  // Runs are never resumed (a resumed run's time would not compare), so a finished run's checkpoint has no use.
  rmSync(join(dir, CHECKPOINT_DIR), { recursive: true, force: true });
  const cpu = cpus();
  return {
    ...run,
    bestDevF1: summary.bestDevF1,
    bestEpoch: summary.bestEpoch,
    devF1: summary.epochs.map((e) => e.dev?.scores.micro.f1 ?? NaN),
    trainSeconds: reporter.trainSeconds(),
    wallSeconds,
    backend: `${summary.backend.name} (${summary.backend.package} ${summary.backend.version})`,
    cpu: cpu[0]?.model ?? 'unknown CPU',
    cores: cpu.length,
    config: opts.config,
    configDigest: session.digest,
    command: commandLine(),
    finishedAt: new Date().toISOString(),
  };
}

function checkResumable(done: RunResult[], file: string, opts: Options, digest: string): void {
  if (done.length === 0) return;
  if (!opts.resume) throw new GpError(`${file} already holds ${done.length} runs: pass --resume-results to continue it, or choose another --out`);
  const other = done.find((r) => r.configDigest !== digest);
  if (other) throw new GpError(`${file} holds runs of a different config (digest ${other.configDigest}, now ${digest}); use another --out`);
}

async function writeReport(opts: Options, rows: RunResult[]): Promise<void> {
  if (rows.length === 0) {
    log('no finished runs to report');
    return;
  }
  if (opts.sweep) {
    const lambdas = [...new Set(rows.filter((r) => r.variant !== 'baseline').map((r) => r.lambda))].sort((a, b) => a - b);
    const sweep: SweepFile = { seed: rows[0].seed, lambdas, best: bestLambdas(rows), results: rows };
    writeFileAtomic(join(opts.out, 'sweep.json'), JSON.stringify(sweep, null, 2) + '\n');
    const md = sweepMarkdown(rows);
    writeFileAtomic(join(opts.out, 'sweep.md'), md);
    process.stdout.write(md);
    log(`wrote ${join(opts.out, 'sweep.json')}, ${join(opts.out, 'sweep.md')}`);
    return;
  }
  const curves = f1Curves(rows);
  const svg = await lineChartSvg(curves.points, { title: curves.title, x: 'epoch', y: 'dev F1 (micro)' });
  writeFileAtomic(join(opts.out, 'ablation-f1.svg'), svg);
  writeFileAtomic(join(opts.out, 'ablation.md'), ablationMarkdown(rows));
  process.stdout.write(resultsTable(groupArms(rows)) + '\n');
  log(`wrote ${join(opts.out, 'ablation.md')}, ${join(opts.out, 'ablation-f1.svg')}`);
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const resultsFile = join(opts.out, opts.sweep ? 'sweep.jsonl' : 'results.jsonl');
  if (opts.reportOnly) return writeReport(opts, readResults(resultsFile));

  const base = loadConfig(opts.config, opts.overrides);
  const digest = configDigest(base);
  const done = readResults(resultsFile);
  checkResumable(done, resultsFile, opts, digest);
  const finished = new Set(done.map(runKey));
  const todo = plan(opts).filter((run) => !finished.has(runKey(run)));
  mkdirSync(opts.out, { recursive: true });
  log(`${todo.length} runs to go${finished.size ? ` (${finished.size} already in ${resultsFile})` : ''}; config ${opts.config} (digest ${digest})`);

  // No signal handler: Ctrl-C kills the run in progress, and every finished run is already in the results file.
  const session: Session = { opts, base, digest };
  const rows = [...done];
  for (const [index, run] of todo.entries()) {
    const result = await execute(run, session, { index, total: todo.length });
    appendFileSync(resultsFile, JSON.stringify(result) + '\n');
    rows.push(result);
    log(`  best dev F1 ${result.bestDevF1.toFixed(4)} (epoch ${result.bestEpoch}); steps ${result.trainSeconds.toFixed(1)} s, whole run ${result.wallSeconds.toFixed(1)} s`);
  }
  await writeReport(opts, rows);
}

main().catch((err: unknown) => {
  if (err instanceof GpError) {
    log(`error: ${err.message}`);
    process.exitCode = err.exitCode;
  } else throw err;
});
