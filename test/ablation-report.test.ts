import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bestLambdas, f1Curves, groupArms, pairedTable, resultsTable, sampleStd, type RunResult, type VariantName } from '../scripts/ablation-report.js';

function run(variant: VariantName, lambda: number, seed: number, devF1: number[], trainSeconds = 10): RunResult {
  return {
    variant, lambda, seed, devF1, trainSeconds,
    bestDevF1: Math.max(...devF1), bestEpoch: devF1.indexOf(Math.max(...devF1)) + 1, wallSeconds: trainSeconds + 1,
    backend: 'cpu', cpu: 'test CPU', cores: 2, config: 'c.yaml', configDigest: 'abc', command: 'node x', finishedAt: '',
  };
}

test('sample standard deviation divides by n − 1 and is undefined for one value', () => {
  assert.ok(Math.abs(sampleStd([0.5, 0.7]) - Math.sqrt(0.02)) < 1e-12);
  assert.ok(Number.isNaN(sampleStd([0.5])));
});

test('arms come in variant order, then by λ, each sorted by seed', () => {
  const arms = groupArms([run('vat+sigmoid-kl', 1, 2, [0.1]), run('rdrop+sigmoid-kl', 4, 1, [0.1]), run('baseline', 0, 2, [0.1]), run('rdrop+sigmoid-kl', 0.5, 1, [0.1]), run('baseline', 0, 1, [0.1])]);
  assert.deepEqual(arms.map((a) => [a.variant, a.lambda]), [['baseline', 0], ['rdrop+sigmoid-kl', 0.5], ['rdrop+sigmoid-kl', 4], ['vat+sigmoid-kl', 1]]);
  assert.deepEqual(arms[0].runs.map((r) => r.seed), [1, 2]);
});

test('the results table gives mean ± sd, the difference and the time relative to the baseline', () => {
  const table = resultsTable(groupArms([
    run('baseline', 0, 1, [0.5], 10), run('baseline', 0, 2, [0.7], 10),
    run('rdrop+sigmoid-kl', 1, 1, [0.6], 20), run('rdrop+sigmoid-kl', 1, 2, [0.8], 20),
  ]));
  const [baseline, rdrop] = table.split('\n').slice(2);
  assert.match(baseline, /^\| baseline \| — \| 60\.00 ± 14\.14 \| — \| s1: 50\.00, s2: 70\.00 \| 10\.0 \| 1\.00× \| 11\.0 \|$/);
  assert.match(rdrop, /^\| rdrop\+sigmoid-kl \| 1 \| 70\.00 ± 14\.14 \| \+10\.00 \| .* \| 20\.0 \| 2\.00× \|/);
});

test('paired differences use only the seeds both arms finished', () => {
  const table = pairedTable(groupArms([run('baseline', 0, 1, [0.5]), run('rdrop+softmax-kl', 1, 1, [0.4]), run('rdrop+softmax-kl', 1, 2, [0.9])]));
  assert.match(table, /\| rdrop\+softmax-kl λ=1 \| −10\.00 ± — \| −10\.00 \| 0\/1 \|/);
});

test('the best λ per KL is the highest dev F1, the first listed on a tie', () => {
  const rows = [run('baseline', 0, 1, [0.9]), run('rdrop+sigmoid-kl', 0.5, 1, [0.6]), run('rdrop+softmax-kl', 0.5, 1, [0.5]), run('rdrop+sigmoid-kl', 1, 1, [0.6]), run('rdrop+softmax-kl', 1, 1, [0.55])];
  assert.deepEqual(bestLambdas(rows), { 'sigmoid-kl': 0.5, 'softmax-kl': 1 });
});

test('curves average each epoch over the seeds that reached it', () => {
  const { points, title } = f1Curves([run('baseline', 0, 1, [0.2, 0.4]), run('baseline', 0, 2, [0.4]), run('vat+sigmoid-kl', 1, 1, [0.1, 0.3])]);
  const baseline = points.filter((p) => p.series === 'baseline').map((p) => [p.x, Number(p.y.toFixed(6))]);
  assert.deepEqual(baseline, [[1, 0.3], [2, 0.4]]);
  assert.deepEqual([...new Set(points.map((p) => p.series))], ['baseline', 'vat+sigmoid-kl']);
  assert.match(title, /vat\+sigmoid-kl 1/);
});
