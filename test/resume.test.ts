/**
 * Interrupt and resume: a run stopped by a signal, and a run killed with SIGKILL mid-epoch, both continue from their
 * last checkpoint and end with the same per-epoch metrics as a run that was never interrupted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { validateConfig, configToYaml } from '../src/config/load.js';
import { readCorpus, writeJsonl } from '../src/data/corpus.js';
import { silentReporter, train } from '../src/train/train.js';
import { loadModel } from '../src/model/io.js';
import { readSafetensors } from '../src/model/safetensors.js';

const dir = mkdtempSync(join(tmpdir(), 'gp-resume-'));
const { examples } = readCorpus('data/sample.train.jsonl');
const trainFile = join(dir, 'train.jsonl');
writeJsonl(trainFile, examples.filter((e) => e.text.length <= 32).slice(0, 24));
const raw = {
  seed: 3,
  backend: 'wasm',
  // No dev set, so every epoch's model is kept and the last one, trained after the resume, is compared.
  data: { train: trainFile, maxLength: 40 },
  model: { dim: 32, dropout: 0.1, encoder: { type: 'transformer', layers: 1, heads: 2 }, head: { size: 16 } },
  // The moving average and token dropout are state and randomness a resume must restore exactly.
  training: { epochs: 6, batchSize: 4, lr: 3e-3, checkpointEvery: 2, ema: 0.9, tokenDropout: 0.1 },
};
const config = validateConfig(raw);
const configFile = join(dir, 'config.yaml');
writeFileSync(configFile, configToYaml(config));

const metrics = (out: string) =>
  readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { epoch: number; step: number; trainLoss: number });

const reference = join(dir, 'reference');
await train(config, reference);
const expected = metrics(reference);

function assertSameRun(out: string) {
  const got = metrics(out);
  assert.equal(got.length, expected.length);
  got.forEach((row, i) => {
    assert.equal(row.step, expected[i].step);
    // Same backend, same seeds, same batches: the continued run is the same computation. The tolerance only absorbs
    // float reassociation, should a backend reorder a reduction.
    assert.ok(Math.abs(row.trainLoss - expected[i].trainLoss) < 1e-4, `epoch ${row.epoch} loss ${row.trainLoss} vs ${expected[i].trainLoss}`);
  });
  // The kept model holds the moving average, which only a checkpoint that saved it can continue. The same computation
  // on the same backend gives the same bits; an average restarted at the resume differs by ≈ 1e-6 here (the
  // average's warm-up washes most of the difference out), hence the tight bound.
  const want = readSafetensors(join(reference, 'weights.safetensors')).tensors;
  for (const [name, got] of readSafetensors(join(out, 'weights.safetensors')).tensors) {
    const wanted = want.get(name)!.data;
    const diff = Array.from(got.data).reduce((m: number, v: number, k: number) => Math.max(m, Math.abs(v - wanted[k])), 0);
    assert.ok(diff < 1e-7, `${name}: max |Δ| ${diff}`);
  }
}

test('a run stopped by a signal mid-epoch resumes to the same metrics', async () => {
  const out = join(dir, 'signal');
  const abort = new AbortController();
  const reporter = { ...silentReporter, step: (info: { step: number }) => info.step === 9 && abort.abort() };
  const first = await train(config, out, { reporter, signal: abort.signal });
  assert.equal(first.interrupted, true);
  const second = await train(config, out, { resume: true });
  assert.equal(second.interrupted, false);
  assertSameRun(out);
});

const cli = ['--import', 'tsx', 'src/cli/main.ts', 'train', '--quiet'];

/** Start `gp train` in a child, send `signal` once it is into its second epoch (a model is saved and a mid-epoch
 * checkpoint exists), and return its exit code or signal. */
async function interruptedCliRun(out: string, signal: NodeJS.Signals): Promise<number | string | null> {
  const child = spawn('node', [...cli, '--config', configFile, '--out', out], { stdio: 'ignore' });
  const state = join(out, 'checkpoint', 'state.json');
  for (let i = 0; i < 600; i++) {
    if (existsSync(state) && JSON.parse(readFileSync(state, 'utf8')).step >= 8) break;
    await sleep(100);
  }
  child.kill(signal);
  const [code, killedBy] = (await new Promise((resolve) => child.on('exit', (...r) => resolve(r)))) as [number | null, string | null];
  assert.ok(existsSync(state), 'a checkpoint was written before the signal');
  assert.ok(metrics(out).length < expected.length, 'the signal came before the run ended');
  return code ?? killedBy;
}

async function resumeCli(out: string): Promise<void> {
  const resumed = spawn('node', [...cli, '--resume', out], { stdio: 'inherit' });
  assert.equal(await new Promise((resolve) => resumed.on('exit', resolve)), 0);
  assertSameRun(out);
}

test('a run killed with SIGKILL resumes from its last checkpoint to the same metrics, and its model stays loadable', async () => {
  const out = join(dir, 'killed');
  assert.equal(await interruptedCliRun(out, 'SIGKILL'), 'SIGKILL');
  assert.doesNotThrow(() => loadModel(out), 'the model directory is loadable after kill -9');
  await resumeCli(out);
});

test('SIGINT mid-epoch saves a checkpoint, exits 130, and the run resumes to the same metrics', async () => {
  const out = join(dir, 'sigint');
  assert.equal(await interruptedCliRun(out, 'SIGINT'), 130);
  await resumeCli(out);
});
