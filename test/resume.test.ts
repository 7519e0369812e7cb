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

const dir = mkdtempSync(join(tmpdir(), 'gp-resume-'));
const { examples } = readCorpus('data/sample.train.jsonl');
const trainFile = join(dir, 'train.jsonl');
writeJsonl(trainFile, examples.filter((e) => e.text.length <= 32).slice(0, 24));
const raw = {
  seed: 3,
  backend: 'wasm',
  data: { train: trainFile, dev: trainFile, maxLength: 40 },
  model: { dim: 32, dropout: 0.1, encoder: { type: 'transformer', layers: 1, heads: 2 }, head: { size: 16 } },
  training: { epochs: 6, batchSize: 4, lr: 3e-3, checkpointEvery: 2 },
};
const config = validateConfig(raw);
const configFile = join(dir, 'config.yaml');
writeFileSync(configFile, configToYaml(config));

const metrics = (out: string) =>
  readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { epoch: number; step: number; trainLoss: number; dev: { micro: { f1: number } } });

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
    assert.ok(Math.abs(row.dev.micro.f1 - expected[i].dev.micro.f1) < 1e-6, `epoch ${row.epoch} F1`);
  });
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

test('a run killed with SIGKILL resumes from its last checkpoint to the same metrics, and its model stays loadable', async () => {
  const out = join(dir, 'killed');
  const cli = ['--import', 'tsx', 'src/cli/main.ts', 'train', '--quiet'];
  const child = spawn('node', [...cli, '--config', configFile, '--out', out], { stdio: 'ignore' });
  const state = join(out, 'checkpoint', 'state.json');
  // Kill it once it is into its second epoch: a model has been saved and a mid-epoch checkpoint exists.
  for (let i = 0; i < 600; i++) {
    if (existsSync(state) && JSON.parse(readFileSync(state, 'utf8')).step >= 8) break;
    await sleep(100);
  }
  child.kill('SIGKILL');
  await new Promise((resolve) => child.on('exit', resolve));
  assert.ok(existsSync(state), 'a checkpoint was written before the kill');
  assert.ok(metrics(out).length < expected.length, 'the kill came before the run ended');
  assert.doesNotThrow(() => loadModel(out), 'the model directory is loadable after kill -9');
  const resumed = spawn('node', [...cli, '--resume', out], { stdio: 'inherit' });
  const code = await new Promise((resolve) => resumed.on('exit', resolve));
  assert.equal(code, 0);
  assertSameRun(out);
});

test('SIGINT mid-epoch saves a checkpoint, exits 130, and the run resumes to the same metrics', async () => {
  const out = join(dir, 'sigint');
  const cli = ['--import', 'tsx', 'src/cli/main.ts', 'train', '--quiet'];
  const child = spawn('node', [...cli, '--config', configFile, '--out', out], { stdio: 'ignore' });
  const state = join(out, 'checkpoint', 'state.json');
  for (let i = 0; i < 600; i++) {
    if (existsSync(state) && JSON.parse(readFileSync(state, 'utf8')).step >= 8) break;
    await sleep(100);
  }
  child.kill('SIGINT');
  const code = await new Promise((resolve) => child.on('exit', resolve));
  assert.equal(code, 130);
  assert.ok(metrics(out).length < expected.length, 'interrupted before the end');
  const resumed = spawn('node', [...cli, '--resume', out], { stdio: 'inherit' });
  assert.equal(await new Promise((resolve) => resumed.on('exit', resolve)), 0);
  assertSameRun(out);
});
