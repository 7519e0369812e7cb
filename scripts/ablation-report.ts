/**
 * The pure half of scripts/ablation.ts: the variants, the row each finished run leaves in results.jsonl, and what
 * is made from those rows (the markdown tables, the best λ of a sweep, the points of the dev-F1 chart). Nothing here
 * trains or touches files, so a report can be rebuilt from results.jsonl alone and the arithmetic can be tested.
 */
import type { Point } from '../src/plot.js';

/** The four arms of the ablation, in the order they run and are listed. */
export const VARIANTS = {
  baseline: { type: 'none', divergence: 'sigmoid-kl' },
  'rdrop+sigmoid-kl': { type: 'rdrop', divergence: 'sigmoid-kl' },
  'rdrop+softmax-kl': { type: 'rdrop', divergence: 'softmax-kl' },
  'vat+sigmoid-kl': { type: 'vat', divergence: 'sigmoid-kl' },
} as const;

export type VariantName = keyof typeof VARIANTS;
export type KL = 'sigmoid-kl' | 'softmax-kl';
export const VARIANT_NAMES = Object.keys(VARIANTS) as VariantName[];

/** One line of results.jsonl (or sweep.jsonl): a finished training run. */
export interface RunResult {
  variant: VariantName;
  /** The regulariser's weight; 0 for the baseline, which has none. */
  lambda: number;
  seed: number;
  bestDevF1: number;
  bestEpoch: number;
  /** Dev micro F1 after each epoch. */
  devF1: number[];
  /** Optimizer steps only, summed over epochs: data loading and dev evaluation cost every variant the same. */
  trainSeconds: number;
  /** The whole train() call. */
  wallSeconds: number;
  backend: string;
  cpu: string;
  cores: number;
  config: string;
  /** Hash of the resolved config minus what the script sets per run, so a resume cannot mix configs. */
  configDigest: string;
  command: string;
  finishedAt: string;
}

export function runKey(r: { variant: VariantName; lambda: number; seed: number }): string {
  return `${r.variant}|${r.lambda}|${r.seed}`;
}

export function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

/** Sample standard deviation (n − 1); NaN below two values, where it is undefined. */
export function sampleStd(values: number[]): number {
  if (values.length < 2) return NaN;
  const m = mean(values);
  return Math.sqrt(values.reduce((a, v) => a + (v - m) ** 2, 0) / (values.length - 1));
}

/** The runs of one variant at one λ, over seeds. */
export interface Arm {
  variant: VariantName;
  lambda: number;
  runs: RunResult[];
}

/** Rows grouped into arms, in VARIANTS order then by λ; each arm's runs sorted by seed. */
export function groupArms(rows: RunResult[]): Arm[] {
  const arms = new Map<string, Arm>();
  for (const r of rows) {
    const key = `${r.variant}|${r.lambda}`;
    if (!arms.has(key)) arms.set(key, { variant: r.variant, lambda: r.lambda, runs: [] });
    arms.get(key)!.runs.push(r);
  }
  const order = (a: Arm) => VARIANT_NAMES.indexOf(a.variant);
  return [...arms.values()]
    .map((a) => ({ ...a, runs: [...a.runs].sort((x, y) => x.seed - y.seed) }))
    .sort((a, b) => order(a) - order(b) || a.lambda - b.lambda);
}

export function armLabel(arm: { variant: VariantName; lambda: number }): string {
  return arm.variant === 'baseline' ? 'baseline' : `${arm.variant} λ=${arm.lambda}`;
}

const pct = (f1: number) => (100 * f1).toFixed(2);
const signedPct = (d: number) => `${d >= 0 ? '+' : '−'}${Math.abs(100 * d).toFixed(2)}`;
const orDash = (x: number, show: (x: number) => string) => (Number.isFinite(x) ? show(x) : '—');

function markdownTable(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** The main table: one row per arm. Times are compared with the baseline arm of the same rows. */
export function resultsTable(arms: Arm[]): string {
  const baseline = arms.find((a) => a.variant === 'baseline');
  const baseTrain = baseline ? mean(baseline.runs.map((r) => r.trainSeconds)) : NaN;
  const baseF1 = baseline ? mean(baseline.runs.map((r) => r.bestDevF1)) : NaN;
  const rows = arms.map((arm) => {
    const f1s = arm.runs.map((r) => r.bestDevF1);
    const train = mean(arm.runs.map((r) => r.trainSeconds));
    return [
      arm.variant,
      arm.variant === 'baseline' ? '—' : String(arm.lambda),
      `${pct(mean(f1s))} ± ${orDash(sampleStd(f1s), pct)}`,
      arm.variant === 'baseline' ? '—' : orDash(mean(f1s) - baseF1, signedPct),
      arm.runs.map((r) => `s${r.seed}: ${pct(r.bestDevF1)}`).join(', '),
      train.toFixed(1),
      orDash(train / baseTrain, (x) => `${x.toFixed(2)}×`),
      mean(arm.runs.map((r) => r.wallSeconds)).toFixed(1),
    ];
  });
  const header = ['variant', 'λ', 'dev F1 % (mean ± sd)', 'Δ vs baseline', 'per seed', 'train s/run', 'time × baseline', 'wall s/run'];
  return markdownTable(header, rows);
}

/** Per-seed differences from the baseline on the seeds both arms finished: same seed, same initial weights. */
export function pairedTable(arms: Arm[]): string {
  const baseline = arms.find((a) => a.variant === 'baseline');
  if (!baseline) return '';
  const baseBySeed = new Map(baseline.runs.map((r) => [r.seed, r.bestDevF1]));
  const rows = arms
    .filter((a) => a.variant !== 'baseline')
    .map((arm) => {
      const diffs = arm.runs.filter((r) => baseBySeed.has(r.seed)).map((r) => r.bestDevF1 - baseBySeed.get(r.seed)!);
      const wins = diffs.filter((d) => d > 0).length;
      const summary = diffs.length ? `${signedPct(mean(diffs))} ± ${orDash(sampleStd(diffs), pct)}` : '—';
      return [armLabel(arm), summary, diffs.map(signedPct).join(', ') || '—', `${wins}/${diffs.length}`];
    });
  return markdownTable(['variant', 'ΔF1 % vs baseline, paired (mean ± sd)', 'per seed', 'seeds better'], rows);
}

/** Distinct values of a field, in first-seen order, for the provenance lines. */
function distinct(rows: RunResult[], field: (r: RunResult) => string): string[] {
  return [...new Set(rows.map(field))];
}

export function provenance(rows: RunResult[]): string {
  const machine = distinct(rows, (r) => `${r.cpu}, ${r.cores} cores`).join('; ');
  const commands = distinct(rows, (r) => r.command).map((c) => `\`${c}\``);
  return [
    `Machine: ${machine}. Backend: ${distinct(rows, (r) => r.backend).join('; ')}.`,
    `Config: ${distinct(rows, (r) => `${r.config} (digest ${r.configDigest})`).join('; ')}.`,
    `Command${commands.length > 1 ? 's' : ''}: ${commands.join(', ')}.`,
  ].join('\n');
}

export function ablationMarkdown(rows: RunResult[]): string {
  const arms = groupArms(rows);
  const paired = pairedTable(arms);
  return [
    '# Ablation: R-Drop and VAT with the sigmoid and softmax KL',
    '',
    'Best dev micro F1 of each run (the epoch with the highest dev F1). "train s/run" counts the optimizer steps only;',
    '"wall s/run" is the whole run, data loading and the per-epoch dev evaluation included.',
    '',
    resultsTable(arms),
    ...(paired ? ['', paired] : []),
    '',
    provenance(rows),
    '',
  ].join('\n');
}

/**
 * Dev F1 per epoch, averaged over the seeds that reached that epoch; one series per arm. Series are named by variant
 * alone where its λ is unique (the chart's legend cuts long names), and the title carries the λs.
 */
export function f1Curves(rows: RunResult[]): { points: Point[]; title: string } {
  const arms = groupArms(rows);
  const count = (v: VariantName) => arms.filter((a) => a.variant === v).length;
  const points = arms.flatMap((arm) => {
    const epochs = Math.max(...arm.runs.map((r) => r.devF1.length));
    const series = count(arm.variant) > 1 ? armLabel(arm) : arm.variant;
    return Array.from({ length: epochs }, (_, e) => {
      const values = arm.runs.flatMap((r) => (e < r.devF1.length ? [r.devF1[e]] : []));
      return { x: e + 1, y: mean(values), series };
    });
  });
  const lambdas = arms.filter((a) => a.variant !== 'baseline').map((a) => `${a.variant} ${a.lambda}`);
  return { points, title: `dev F1 per epoch, mean over seeds (λ: ${lambdas.join(', ') || 'none'})` };
}

/** The λ with the highest dev F1 for each KL (the first listed on a tie); absent for a KL with no runs. */
export function bestLambdas(rows: RunResult[]): Partial<Record<KL, number>> {
  const best: Partial<Record<KL, { lambda: number; f1: number }>> = {};
  for (const r of rows) {
    if (r.variant === 'baseline') continue;
    const kl = VARIANTS[r.variant].divergence;
    const current = best[kl];
    if (!current || r.bestDevF1 > current.f1) best[kl] = { lambda: r.lambda, f1: r.bestDevF1 };
  }
  return Object.fromEntries(Object.entries(best).map(([kl, b]) => [kl, b.lambda]));
}

export function sweepMarkdown(rows: RunResult[]): string {
  const baseline = rows.find((r) => r.variant === 'baseline');
  const best = bestLambdas(rows);
  const table = markdownTable(
    ['variant', 'λ', 'dev F1 %', 'Δ vs baseline', 'best epoch', 'train s'],
    groupArms(rows).flatMap((arm) =>
      arm.runs.map((r) => {
        const isBest = r.variant !== 'baseline' && best[VARIANTS[r.variant].divergence] === r.lambda;
        return [
          r.variant,
          r.variant === 'baseline' ? '—' : String(r.lambda),
          isBest ? `**${pct(r.bestDevF1)}**` : pct(r.bestDevF1),
          baseline && r.variant !== 'baseline' ? signedPct(r.bestDevF1 - baseline.bestDevF1) : '—',
          String(r.bestEpoch),
          r.trainSeconds.toFixed(1),
        ];
      }),
    ),
  );
  const chosen = Object.entries(best).map(([kl, l]) => `${kl} λ=${l}`).join(', ') || 'none yet';
  return [
    '# λ sweep for R-Drop (one seed)',
    '',
    `Seed ${distinct(rows, (r) => String(r.seed)).join(', ')}; the baseline is there for reference. Best λ by dev F1 (bold): ${chosen}.`,
    '',
    table,
    '',
    provenance(rows),
    '',
  ].join('\n');
}
