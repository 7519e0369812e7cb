import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { backendReport, initBackend, resolveRequest } from '../src/backend.js';
import { ConfigError, GpError } from '../src/errors.js';

// Each test file runs in its own process, so this only makes 'auto' mean auto here.
delete process.env.GP_BACKEND;
const report = await backendReport();
const tensorflowLoads = report.tensorflow.some((native) => native.loads === true);

async function multiplyOnCurrentBackend(): Promise<number[][]> {
  const product: tf.Tensor2D = tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[5, 6], [7, 8]]));
  return product.array();
}
const PRODUCT = [[19, 22], [43, 50]];

test('resolveRequest: an explicit backend wins, GP_BACKEND only fills in auto, a bad value is a ConfigError', () => {
  assert.deepEqual(resolveRequest('cpu', 'wasm'), { choice: 'cpu', why: 'requested' });
  assert.deepEqual(resolveRequest('auto', 'wasm'), { choice: 'wasm', why: 'GP_BACKEND=wasm' });
  assert.deepEqual(resolveRequest('auto', ' '), { choice: 'auto', why: 'auto' });
  assert.deepEqual(resolveRequest('auto', undefined), { choice: 'auto', why: 'auto' });
  assert.throws(() => resolveRequest('auto', 'gpu'), (err) => err instanceof ConfigError && /GP_BACKEND/.test(err.message));
});

test('cpu: loads, multiplies, and has gradients and chained tensor methods', async () => {
  const lines: string[] = [];
  const info = await initBackend('cpu', { log: (line) => lines.push(line) });
  assert.equal(info.name, 'cpu');
  assert.equal(tf.getBackend(), 'cpu');
  assert.deepEqual(await multiplyOnCurrentBackend(), PRODUCT);
  // d/dv Σ(3v)² = 18v: fails with "gradient function not found" unless initBackend registered the gradients.
  const grad = tf.grad((v: tf.Tensor) => tf.sum(tf.square(tf.mul(v, 3))))(tf.tensor1d([1, 2]));
  assert.deepEqual(await grad.array(), [18, 36]);
  assert.equal(tf.tensor1d([1, 2, 3]).sum().arraySync(), 6);
  assert.deepEqual(lines, ['backend: cpu (requested; plain JavaScript)']);
});

test('wasm: loads single-threaded and multiplies; the gather gradient needs a kernel wasm lacks', async () => {
  const lines: string[] = [];
  const info = await initBackend('wasm', { threads: 2, log: (line) => lines.push(line) });
  assert.equal(info.name, 'wasm');
  assert.equal(info.threads, 1);
  assert.equal(tf.getBackend(), 'wasm');
  assert.deepEqual(await multiplyOnCurrentBackend(), PRODUCT);
  assert.match(lines[1] ?? '', /threads=2 has no effect/);
  const table = tf.tensor2d([[1, 2], [3, 4]]);
  assert.throws(() => tf.grad((t: tf.Tensor) => tf.sum(tf.gather(t, [1, 1])))(table), /UnsortedSegmentSum/);
});

test('auto: picks what backendReport predicts and says why', async () => {
  const lines: string[] = [];
  const info = await initBackend('auto', { log: (line) => lines.push(line) });
  assert.equal(info.name, report.auto.name);
  assert.equal(tf.getBackend(), info.name);
  assert.match(info.reason, /^auto; \S/);
  assert.equal(lines[0], `backend: ${info.name} (${info.reason})`);
  assert.deepEqual(await multiplyOnCurrentBackend(), PRODUCT);
});

test('tensorflow: runs where backendReport says it loads, otherwise a GpError that says how to get it', async () => {
  if (tensorflowLoads) {
    const info = await initBackend('tensorflow');
    assert.equal(info.name, 'tensorflow');
    assert.equal(tf.getBackend(), 'tensorflow');
    assert.match(info.reason, /libtensorflow \d/);
    assert.deepEqual(await multiplyOnCurrentBackend(), PRODUCT);
  } else {
    await assert.rejects(
      initBackend('tensorflow'),
      (err) => err instanceof GpError && err.exitCode === 69 && /npm run setup:tensorflow/.test(err.message),
    );
  }
});
