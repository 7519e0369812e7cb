#!/usr/bin/env node
/**
 * The `gp` command. Each subcommand parses its options, calls the library, and prints; errors a user can act on
 * (GpError) print one message and exit non-zero without a stack trace.
 *
 * Exit codes (docs/cli.md): 0 ok, 1 usage or runtime error, 65 bad input data, 66 an input cannot be read,
 * 73 an output cannot be written, 78 bad config, 70 internal error (a bug).
 */
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Command, Option } from 'commander';
import { backendReport, initBackend, type BackendName } from '../backend.js';
import { loadConfig } from '../config/load.js';
import { readCorpus } from '../data/corpus.js';
import { TextTokenizer } from '../data/tokenizer.js';
import { GpError } from '../errors.js';
import { SWEEP_DECODINGS, SWEEP_THRESHOLDS, bestDecoding, evaluateExamples, predictEntities, sweepDecodings } from '../eval/evaluate.js';
import { formatScoresTable } from '../eval/metrics.js';
import { predictInWorkers } from './workers.js';
import { disposeModel } from '../model/globalpointer.js';
import { loadModel } from '../model/io.js';
import { train, type MetricsRow } from '../train/train.js';
import { sparkline } from '../plot.js';
import { consoleReporter } from './progress.js';
import { registerDataCheck } from './data-check.js';
import { readInputFile, type InputLine } from './input.js';
import { writeFileAtomic } from '../io.js';

const BACKENDS = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;
const backendOption = () => new Option('--backend <name>', 'TensorFlow.js backend').choices(BACKENDS).default('auto');
const log = (line: string) => process.stderr.write(line + '\n');

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function number(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n)) throw new GpError(`not a number: ${value}`);
  return n;
}

async function loadForInference(dir: string, backend: BackendName, quiet: boolean) {
  await initBackend(backend, { log: quiet ? () => {} : log });
  const loaded = loadModel(dir);
  const tokenizer = TextTokenizer.fromJSON(loaded.tokenizerJson as object, join(dir, 'tokenizer.json'));
  return { ...loaded, tokenizer };
}

/** --flat or --nested when given, else the model's own decoding. */
function flatDecoding(opts: { flat?: boolean; nested?: boolean }, manifestFlat: boolean | undefined): boolean {
  if (opts.flat && opts.nested) throw new GpError('give --flat or --nested, not both');
  return opts.flat ? true : opts.nested ? false : (manifestFlat ?? false);
}

function readMetrics(dir: string): MetricsRow[] {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as MetricsRow);
}

const program = new Command()
  .name('gp')
  .description('GlobalPointer named-entity recognition: train, evaluate, predict')
  .version(JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version);

program
  .command('train')
  .description('train a model from a YAML config; the best model by dev F1 is kept in --out')
  .option('-c, --config <file>', 'YAML config (see configs/)')
  .option('--set <key=value>', 'override a config key, e.g. training.lr=3e-4 (repeatable)', collect, [])
  .option('-o, --out <dir>', 'model directory (default: runs/<config name>)')
  .option('--resume <dir>', 'continue the interrupted run in <dir> from its last checkpoint (its saved config is used)')
  .addOption(new Option('--backend <name>', 'override the config backend').choices(BACKENDS))
  .option('-q, --quiet', 'no progress output')
  .option('--json', 'print a JSON summary on stdout at the end')
  .action(async (opts: { config?: string; set: string[]; out?: string; resume?: string; backend?: string; quiet?: boolean; json?: boolean }) => {
    if (Boolean(opts.config) === Boolean(opts.resume)) throw new GpError('give either --config FILE or --resume DIR');
    const overrides = opts.backend ? [...opts.set, `backend=${opts.backend}`] : opts.set;
    const config = loadConfig(opts.resume ? join(opts.resume, 'train-config.yaml') : opts.config!, overrides);
    const outDir = opts.resume ?? opts.out ?? `runs/${basename(opts.config!).replace(/\.ya?ml$/, '')}`;
    const reporter = consoleReporter({ quiet: Boolean(opts.quiet), tty: Boolean(process.stderr.isTTY), write: log });
    // The first Ctrl-C finishes the step and saves a checkpoint; a second one kills the process the usual way.
    const abort = new AbortController();
    const onSignal = (signal: NodeJS.Signals) => {
      if (abort.signal.aborted) process.exit(130);
      log(`\n${signal}: finishing the current step and saving a checkpoint (again to quit at once)`);
      abort.abort();
    };
    process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
    const summary = await train(config, outDir, { reporter, resume: Boolean(opts.resume), signal: abort.signal });
    if (summary.bestDev && !opts.quiet) {
      const f1s = readMetrics(outDir).flatMap((row) => (row.dev ? [row.dev.micro.f1] : []));
      log(`\ndev F1 by epoch ${sparkline(f1s)} ${f1s.map((f) => f.toFixed(3)).join(' ')}`);
      log(`best epoch ${summary.bestEpoch} (dev):\n${formatScoresTable(summary.bestDev)}`);
      log(`curves: ${join(outDir, 'curves.svg')}, ${join(outDir, 'metrics.jsonl')}`);
    }
    if (summary.interrupted) process.exitCode = 130;
    else log(`model saved to ${outDir} (${summary.seconds.toFixed(0)} s, backend ${summary.backend.name})`);
    if (opts.json) {
      const { bestEpoch, bestDevF1, seconds, interrupted, stoppedEarly } = summary;
      process.stdout.write(JSON.stringify({ outDir, backend: summary.backend.name, bestEpoch, bestDevF1, seconds, interrupted, stoppedEarly, dev: summary.bestDev }) + '\n');
    }
  });

program
  .command('eval')
  .description('entity-level precision / recall / F1 of a model on a labelled file')
  .requiredOption('-m, --model <dir>', 'model directory written by gp train')
  .requiredOption('-d, --data <file>', 'labelled data')
  .addOption(new Option('--format <format>', 'data format').choices(['auto', 'cluener', 'jsonl', 'conll']).default('auto'))
  .addOption(new Option('--scheme <scheme>', 'tag scheme of conll data').choices(['auto', 'bio', 'iob1', 'bioes', 'bmes']).default('auto'))
  .option('--strip-token-digit', "strip the trailing position digits of conll tokens (Weibo's 科0)")
  .option('--threshold <t>', 'logit threshold (default: the model\'s)', number)
  .option('--flat', "non-overlapping decoding: keep the highest-scoring span of each overlap (default: the model's)")
  .option('--nested', "keep every span above the threshold, overlapping or not (default: the model's)")
  .option('--sweep', `micro scores at thresholds ${SWEEP_THRESHOLDS.join(', ')}, nested and flat (one forward pass); choose on dev`)
  .option('--batch-size <n>', 'windows per forward pass', number, 64)
  .addOption(backendOption())
  .option('--json', 'print scores as JSON on stdout')
  .action(async (opts: { model: string; data: string; format: 'auto'; scheme: 'auto'; stripTokenDigit?: boolean; threshold?: number; flat?: boolean; nested?: boolean; sweep?: boolean; batchSize: number; backend: BackendName; json?: boolean }) => {
    const { model, manifest, tokenizer } = await loadForInference(opts.model, opts.backend, Boolean(opts.json));
    const { examples, report } = readCorpus(opts.data, { format: opts.format, scheme: opts.scheme, stripTokenDigit: Boolean(opts.stripTokenDigit) });
    for (const warning of report.warnings) log(`warning: ${warning}`);
    const unknown = [...new Set(examples.flatMap((e) => e.spans.map((s) => s.label)))].filter((l) => !manifest.labels.includes(l));
    if (unknown.length) log(`warning: ${opts.data}: labels the model does not know (counted as misses): ${unknown.join(', ')}`);
    if (opts.sweep) {
      const decodings = SWEEP_DECODINGS;
      const inference = { maxLength: manifest.spec.maxLength, overlap: manifest.windowOverlap, batchSize: opts.batchSize };
      const rows = sweepDecodings(model, tokenizer, manifest.labels, examples, inference, decodings).map((scores, i) => ({ ...decodings[i], ...scores.micro }));
      disposeModel(model);
      if (opts.json) {
        process.stdout.write(JSON.stringify({ model: opts.model, data: opts.data, examples: examples.length, sweep: rows }) + '\n');
        return;
      }
      const best = bestDecoding(decodings, rows.map((r) => r.f1)).index;
      const lines = rows.map((r, i) => `${i === best ? '*' : ' '} ${r.flat ? 'flat  ' : 'nested'} ${r.threshold.toFixed(1).padStart(5)} ${r.precision.toFixed(4)} ${r.recall.toFixed(4)} ${r.f1.toFixed(4)}`);
      process.stdout.write(`${opts.data}: ${examples.length} examples\n  decode  thr.  P      R      F1\n${lines.join('\n')}\n`);
      return;
    }
    const { scores } = evaluateExamples(model, tokenizer, manifest.labels, examples, {
      maxLength: manifest.spec.maxLength,
      overlap: manifest.windowOverlap,
      batchSize: opts.batchSize,
      threshold: opts.threshold ?? manifest.threshold,
      flat: flatDecoding(opts, manifest.flat),
    });
    disposeModel(model);
    if (opts.json) process.stdout.write(JSON.stringify({ model: opts.model, data: opts.data, examples: examples.length, ...scores }) + '\n');
    else process.stdout.write(`${opts.data}: ${examples.length} examples\n${formatScoresTable(scores)}\n`);
  });

program
  .command('predict')
  .description('entities with character offsets (UTF-16, end exclusive) for each line of text files; "-" reads stdin')
  .requiredOption('-m, --model <dir>', 'model directory written by gp train')
  .argument('<files...>', 'text files, one text per line, or JSON lines with a "text" field (when the first line starts with {")')
  .option('-o, --out <file>', 'write JSONL here instead of stdout (atomically)')
  .option('--threshold <t>', "logit threshold (default: the model's)", number)
  .option('--flat', "non-overlapping decoding (default: the model's)")
  .option('--nested', "keep overlapping spans (default: the model's)")
  .option('--batch-size <n>', 'windows per forward pass', number, 64)
  .option('--workers <n>', 'predict in this many processes, each on a contiguous share of the lines; output in input order', number, 1)
  .addOption(backendOption())
  .action(async (files: string[], opts: { model: string; out?: string; threshold?: number; flat?: boolean; nested?: boolean; batchSize: number; workers: number; backend: BackendName }) => {
    // All inputs are read first: a bad line fails the command before any time goes into predicting.
    const inputs: InputLine[] = [];
    for (const file of files) inputs.push(...(await readInputFile(file)));
    if (!Number.isInteger(opts.workers) || opts.workers < 1) throw new GpError(`--workers: expected a positive integer, got ${opts.workers}`);
    let out: string[];
    if (opts.workers > 1 && inputs.length > 1) {
      const childArgs = ['--model', opts.model, '--batch-size', String(opts.batchSize), '--backend', opts.backend];
      if (opts.threshold !== undefined) childArgs.push('--threshold', String(opts.threshold));
      if (opts.flat) childArgs.push('--flat');
      if (opts.nested) childArgs.push('--nested');
      out = await predictInWorkers(inputs, opts.workers, childArgs);
    } else {
      const { model, manifest, tokenizer } = await loadForInference(opts.model, opts.backend, false);
      const entities = predictEntities(model, tokenizer, manifest.labels, inputs.map((i) => i.text), {
        maxLength: manifest.spec.maxLength,
        overlap: manifest.windowOverlap,
        batchSize: opts.batchSize,
        threshold: opts.threshold ?? manifest.threshold,
        flat: flatDecoding(opts, manifest.flat),
      });
      disposeModel(model);
      out = inputs.map((input, i) => JSON.stringify({ ...input.extra, text: input.text, entities: entities[i] }));
    }
    const body = out.length ? out.join('\n') + '\n' : '';
    if (opts.out) {
      try {
        writeFileAtomic(opts.out, body);
      } catch (error) {
        throw new GpError(`cannot write ${opts.out}: ${(error as Error).message}`, 73);
      }
      log(`${out.length} lines written to ${opts.out}`);
    } else process.stdout.write(body);
  });

program
  .command('doctor')
  .description('versions, available backends, which one auto picks, threads')
  .action(async () => {
    process.stdout.write(JSON.stringify(await backendReport(), null, 2) + '\n');
  });

registerDataCheck(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof GpError) {
    process.stderr.write(`gp: error: ${err.message}\n`);
    process.exit(err.exitCode);
  }
  process.stderr.write(`gp: internal error (please report): ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(70);
});
