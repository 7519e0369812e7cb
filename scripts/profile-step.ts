/**
 * Where a training step's time goes (issue #5): the step of scripts/bench.ts (the loop's own) timed by phase, then
 * one step's kernels from tf.profile, per kernel name, split into forward, backward and update; then prediction by
 * stage. Prints Markdown for docs/performance.md.
 *
 *   node --import tsx scripts/profile-step.ts [--backend tensorflow] [--iters 5] [--json out.json]
 *
 * Shape flags as for bench.ts (--batch 16 --length 128 --dim 256 ...). Phase times are medians over --iters runs
 * after --warmup steps. Backward is (forward + backward) − forward; kernel times are what the backend reports per
 * kernel (tensorflow: wall time around the libtensorflow call), so "outside kernels" is the wall time of the profiled
 * call minus the kernels': tfjs's engine and tape, and JavaScript work and ops that are not kernels, e.g.
 * tf.randomUniform, which fills its buffer in JavaScript (dropout's noise on backends other than tensorflow).
 */
import { availableParallelism, cpus } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { initBackend, nativeUniform, type LoadedBackendName } from '../src/backend.js';
import { writeFileAtomic } from '../src/io.js';
import { batchTensors, disposeBatch, encodeExamples, makeBatches } from '../src/data/encode.js';
import { buildTokenizer } from '../src/data/tokenizer.js';
import { decodeSpans, tokenSpansToEntities } from '../src/eval/decode.js';
import { predictEntities } from '../src/eval/evaluate.js';
import { createModel, disposeModel, forward } from '../src/model/globalpointer.js';
import { globalNorm } from '../src/train/optimizer.js';
import { Rng } from '../src/rng.js';
import { asWindows, makeData, parseBenchOptions, runStep, specOf, stepParts, type StepInput } from './bench-step.js';

const { o, values } = parseBenchOptions(process.argv.slice(2), {
  backend: { type: 'string' }, iters: { type: 'string' }, json: { type: 'string' },
});
const backend = (typeof values.backend === 'string' ? values.backend : 'tensorflow') as LoadedBackendName;
const iters = Number(values.iters ?? 5);
const data = makeData(o, 1);
const info = await initBackend(backend, { threads: backend === 'tensorflow' ? o.threads : undefined });
// The profiler would read every kernel's output back to look for NaN; that is not part of a step.
tf.env().set('CHECK_COMPUTATION_FOR_ERRORS', false);
const rng = new Rng(data.seed);
const model = createModel(specOf(data), data.seed);
const variables = [...model.params.values()];
const parts = stepParts(model, data, rng);
const batches = data.batches.map(asWindows);
const { lr } = data.training;
let k = 0;
const next = () => batches[k++ % batches.length];
for (let s = 0; s < o.warmup; s++) runStep(parts, variables, next(), lr);

const now = () => Number(process.hrtime.bigint()) / 1e6;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

/** Median wall ms of `timed`, with `setup` and `teardown` around it untimed. */
function phase<S>(setup: () => S, timed: (s: S) => void, teardown: (s: S) => void = () => {}): number {
  const ms: number[] = [];
  for (let i = 0; i < iters; i++) {
    const s = setup();
    const t0 = now();
    timed(s);
    ms.push(now() - t0);
    teardown(s);
  }
  return median(ms);
}

const gradsOf = (input: StepInput) => tf.variableGrads(() => parts.loss(input, true), variables);
type Grads = ReturnType<typeof gradsOf>;
const disposeGrads = (g: Grads) => tf.dispose([g.value, ...Object.values(g.grads)]);

const { batch: B, length: L, dim: D, heads: h, layers, types: H, ffnMultiplier } = data.shape;
const dropoutShapes = [[B, L, D], ...Array.from({ length: layers }, () => [[B, h, L, L], [B, L, D], [B, L, D * ffnMultiplier], [B, L, D]]).flat()];

const phases: Array<[string, number]> = [
  ['whole step (as the loop runs it)', phase(() => next(), (b) => void runStep(parts, variables, b, lr))],
  [`inputs built and uploaded (ids, mask and dense targets [${B}, ${H}, ${L}, ${L}])`, phase(() => next(), (b) => parts.input(b).dispose())],
  ['forward + loss, dropout on (no tape)', phase(() => parts.input(next()), (i) => void tf.tidy(() => parts.loss(i, true)).dataSync(), (i) => i.dispose())],
  ['forward + loss, dropout off (no tape)', phase(() => parts.input(next()), (i) => void tf.tidy(() => parts.loss(i, false)).dataSync(), (i) => i.dispose())],
  [
    `dropout's uniform noise alone, as src draws it (${(dropoutShapes.reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0) / 1e6).toFixed(1)} M numbers)`,
    phase(() => null, () => tf.dispose(dropoutShapes.map((s) => nativeUniform(s, rng.seed()) ?? tf.randomUniform(s, 0, 1, 'float32', rng.seed())))),
  ],
  ['forward + backward (tf.variableGrads), loss read back', phase(() => parts.input(next()), (i) => {
    const g = gradsOf(i);
    g.value.dataSync();
    disposeGrads(g);
  }, (i) => i.dispose())],
  ['update (clip + AdamW), gradient norm read back', phase(() => {
    const input = parts.input(next());
    const g = gradsOf(input);
    input.dispose();
    return g;
  }, (g) => void parts.update(g.grads, lr), disposeGrads)],
  ['of which: global norm, read back', phase(() => {
    const input = parts.input(next());
    const g = gradsOf(input);
    input.dispose();
    return g;
  }, (g) => {
    const n = globalNorm(Object.values(g.grads));
    n.dataSync();
    n.dispose();
  }, disposeGrads)],
];

// ---------------------------------------------------------------------------------------------- kernels

interface KernelRow {
  name: string;
  calls: number;
  ms: number;
}

type Profile = Awaited<ReturnType<typeof tf.profile>>;

/**
 * Kernels only: tf.customGrad ops (src's embedding lookup, dense, LayerNorm, GELU and loss) are recorded too, as
 * scopes whose time includes the kernels inside them, which are recorded as well.
 */
const isKernel = (name: string) => tf.getKernel(name, tf.getBackend()) !== undefined;

function byName(profile: Profile): Map<string, KernelRow> {
  const rows = new Map<string, KernelRow>();
  for (const kernel of profile.kernels.filter((x) => isKernel(x.name))) {
    const ms = typeof kernel.kernelTimeMs === 'number' ? kernel.kernelTimeMs : 0;
    const row = rows.get(kernel.name) ?? { name: kernel.name, calls: 0, ms: 0 };
    row.calls += 1;
    row.ms += ms;
    rows.set(kernel.name, row);
  }
  return rows;
}

const kernelMs = (p: Profile) => p.kernels.filter((x) => isKernel(x.name)).reduce((n, x) => n + (typeof x.kernelTimeMs === 'number' ? x.kernelTimeMs : 0), 0);

async function profiled(f: () => tf.TensorContainer): Promise<{ profile: Profile; wallMs: number }> {
  const t0 = now();
  const profile = await tf.profile(f);
  const wallMs = now() - t0;
  tf.dispose(profile.result);
  // tf.profile hands back the engine's one profile record, which the next call overwrites.
  return { profile: { ...profile, kernels: [...profile.kernels] }, wallMs };
}

const input = parts.input(next());
const fwd = await profiled(() => tf.tidy(() => parts.loss(input, true)));
let grads: Grads | null = null;
const both = await profiled(() => {
  grads = gradsOf(input);
  return [];
});
input.dispose();
const upd = await profiled(() => {
  parts.update(grads!.grads, lr);
  return [];
});
disposeGrads(grads!);

const fwdRows = byName(fwd.profile);
const bothRows = byName(both.profile);
const updRows = byName(upd.profile);
const names = [...new Set([...bothRows.keys(), ...updRows.keys()])];
const kernelTable = names
  .map((name) => {
    const f = fwdRows.get(name);
    const b = bothRows.get(name);
    const u = updRows.get(name);
    return {
      name,
      forward: f?.ms ?? 0,
      backward: (b?.ms ?? 0) - (f?.ms ?? 0),
      update: u?.ms ?? 0,
      calls: `${f?.calls ?? 0} / ${(b?.calls ?? 0) - (f?.calls ?? 0)} / ${u?.calls ?? 0}`,
    };
  })
  .map((r) => ({ ...r, total: r.forward + Math.max(0, r.backward) + r.update }))
  .sort((a, b) => b.total - a.total);

/** The biggest single (kernel, output shape) entries of the forward + backward pass. */
const bySite = new Map<string, { ms: number; calls: number }>();
for (const kernel of [...both.profile.kernels, ...upd.profile.kernels].filter((x) => isKernel(x.name))) {
  const key = `${kernel.name} → ${kernel.outputShapes.map((s) => `[${(s ?? []).join(', ')}]`).join(' ')}`;
  const row = bySite.get(key) ?? { ms: 0, calls: 0 };
  row.ms += typeof kernel.kernelTimeMs === 'number' ? kernel.kernelTimeMs : 0;
  row.calls += 1;
  bySite.set(key, row);
}
const sites = [...bySite].sort((a, b) => b[1].ms - a[1].ms).slice(0, 25);

// ---------------------------------------------------------------------------------------------- report

const f1 = (n: number) => n.toFixed(1);
const step = phases[0][1];
const out: string[] = [];
out.push(`Backend ${info.name} (${info.package} ${info.version}${info.threads ? `, ${info.threads} threads` : ''}), ${cpus()[0]?.model ?? ''} × ${availableParallelism()}`);
out.push(`batch ${B} × ${L}, d${D}, ${layers} layers, ${h} heads, ${H} types × ${data.shape.headSize}, vocab ${data.shape.vocab}; medians of ${iters} after ${o.warmup} warm-up steps`);
out.push('', '| phase | ms | share of the step |', '|---|---:|---:|');
for (const [name, ms] of phases) out.push(`| ${name} | ${f1(ms)} | ${((100 * ms) / step).toFixed(0)}% |`);
const fwdMs = phases[2][1];
out.push(`| ⇒ backward ≈ (forward + backward) − forward | ${f1(phases[5][1] - fwdMs)} | ${((100 * (phases[5][1] - fwdMs)) / step).toFixed(0)}% |`);
out.push('', 'One profiled step (tf.profile): kernel time against the wall time of the profiled call', '', '| part | kernels ms | wall ms | outside kernels |', '|---|---:|---:|---:|');
for (const [name, p] of [['forward + loss', fwd], ['forward + backward', both], ['update', upd]] as const) {
  const kms = kernelMs(p.profile);
  out.push(`| ${name} | ${f1(kms)} | ${f1(p.wallMs)} | ${f1(p.wallMs - kms)} (${((100 * (p.wallMs - kms)) / p.wallMs).toFixed(0)}%) |`);
}
const totalKernel = kernelMs(both.profile) + kernelMs(upd.profile);
out.push('', 'Per kernel (forward / backward / update; backward = profiled forward+backward − profiled forward)', '', '| kernel | calls f / b / u | forward ms | backward ms | update ms | share of kernel time |', '|---|---|---:|---:|---:|---:|');
for (const r of kernelTable.slice(0, 30)) {
  out.push(`| ${r.name} | ${r.calls} | ${f1(r.forward)} | ${f1(r.backward)} | ${f1(r.update)} | ${((100 * r.total) / totalKernel).toFixed(1)}% |`);
}
out.push('', 'Largest kernel sites (name → output shape), forward + backward + update', '', '| kernel → output | calls | ms |', '|---|---:|---:|');
for (const [site, r] of sites) out.push(`| ${site} | ${r.calls} | ${f1(r.ms)} |`);
process.stdout.write(out.join('\n') + '\n');
const reportLines = out.length;

parts.dispose();

// ---------------------------------------------------------------------------------------------- prediction

/** predictEntities (src/eval/evaluate.ts) taken apart, over bench.ts's texts, each stage timed. */
const tokenizer = buildTokenizer(data.texts, { mode: 'char' });
const labels = Array.from({ length: H }, (_, i) => `T${i}`);
const predictOpts = { maxLength: L, overlap: 32 };
predictEntities(model, tokenizer, labels, data.texts.slice(0, data.predictBatchSize), { ...predictOpts, batchSize: data.predictBatchSize, threshold: data.threshold });
const stages = { tokenize: 0, inputs: 0, forward: 0, readBack: 0, decode: 0 };
const t0 = now();
const { windows } = encodeExamples(data.texts.map((text) => ({ text, spans: [] })), tokenizer, labels, predictOpts);
stages.tokenize = now() - t0;
for (const batch of makeBatches(windows, data.predictBatchSize)) {
  let t = now();
  const batchInput = batchTensors(batch, H, tokenizer.padId, false);
  stages.inputs += now() - t;
  t = now();
  const logits = forward(model, batchInput.ids, batchInput.mask, { training: false });
  stages.forward += now() - t;
  t = now();
  const logitValues = logits.dataSync() as Float32Array;
  stages.readBack += now() - t;
  t = now();
  const Lb = logits.shape[2];
  batch.forEach((w, b) => {
    const spans = decodeSpans(logitValues.subarray(b * H * Lb * Lb, (b + 1) * H * Lb * Lb), H, Lb, { threshold: data.threshold, validLength: w.ids.length });
    tokenSpansToEntities(spans, w.offsets, data.texts[w.example], labels, w.base);
  });
  stages.decode += now() - t;
  tf.dispose([logits]);
  disposeBatch(batchInput);
}
const predictTotal = Object.values(stages).reduce((a, b) => a + b, 0);
const chars = data.texts.reduce((n, text) => n + text.length, 0);
out.push('', `Prediction (src's predictEntities taken apart): ${data.texts.length} texts, ${chars} characters, batches of ${data.predictBatchSize}, threshold ${data.threshold}`, '', '| stage | ms | share |', '|---|---:|---:|');
for (const [name, ms] of Object.entries(stages)) out.push(`| ${name} | ${f1(ms)} | ${((100 * ms) / predictTotal).toFixed(0)}% |`);
out.push(`| total (${Math.round(chars / (predictTotal / 1000))} chars/s) | ${f1(predictTotal)} | 100% |`);
process.stdout.write(out.slice(reportLines).join('\n') + '\n');

if (typeof values.json === 'string') {
  writeFileAtomic(values.json, JSON.stringify({ backend: info, options: o, phases, kernels: kernelTable, sites, predict: stages }, null, 2) + '\n');
}
disposeModel(model);
