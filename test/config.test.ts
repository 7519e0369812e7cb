import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, parseOverride } from '../src/config/load.js';
import { ConfigError } from '../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'gp-config-'));
const write = (name: string, text: string) => {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
};

test('defaults fill everything a minimal config leaves out', () => {
  const config = loadConfig(write('min.yaml', 'data:\n  train: t.jsonl\n'));
  assert.equal(config.training.lr, 1e-3);
  assert.equal(config.model.encoder.type, 'transformer');
  assert.equal(config.model.head.type, 'globalpointer');
  assert.equal(config.data.maxLength, 128);
  assert.equal(config.regularizer.type, 'none');
});

test('an unknown key is an error naming its path and line', () => {
  const file = write('unknown.yaml', 'data:\n  train: t.jsonl\ntraining:\n  epochs: 3\n  learning_rate: 0.1\n');
  assert.throws(
    () => loadConfig(file),
    (err: unknown) => err instanceof ConfigError && /unknown\.yaml:\d+ training/.test(err.message) && /learning_rate/.test(err.message),
  );
});

test('a wrong type names the key path and the line of the value', () => {
  const file = write('type.yaml', 'data:\n  train: t.jsonl\ntraining:\n  epochs: many\n');
  assert.throws(
    () => loadConfig(file),
    (err: unknown) => err instanceof ConfigError && err.message.includes('type.yaml:4 training.epochs') && /expected number/.test(err.message),
  );
});

test('a missing required key is reported', () => {
  assert.throws(() => loadConfig(write('nodata.yaml', 'seed: 1\n')), /data/);
});

test('--set overrides are typed by YAML and validated', () => {
  const file = write('base.yaml', 'data:\n  train: t.jsonl\n');
  const config = loadConfig(file, ['training.lr=3e-5', 'model.head.type=efficient', 'data.dev=d.jsonl']);
  assert.equal(config.training.lr, 3e-5);
  assert.equal(config.model.head.type, 'efficient');
  assert.equal(config.data.dev, 'd.jsonl');
  assert.throws(() => loadConfig(file, ['model.head.type=bogus']), /model\.head\.type/);
  assert.deepEqual(parseOverride('a.b=[1, 2]'), { path: ['a', 'b'], value: [1, 2] });
  assert.throws(() => parseOverride('novalue'), ConfigError);
});

test('features a pretrained BERT cannot take are errors at their key', () => {
  const file = write('bert.yaml', 'data:\n  train: t.jsonl\nmodel:\n  encoder: { type: bert, path: models/bert }\n');
  assert.doesNotThrow(() => loadConfig(file));
  for (const [key, value] of [['lexicon', 'words.txt'], ['wordFeatures', '100'], ['bigramBuckets', '100']]) {
    assert.throws(() => loadConfig(file, [`model.${key}=${value}`]), (err: unknown) => err instanceof ConfigError && err.message.includes(`model.${key}`));
  }
});

test('invalid YAML names the line', () => {
  assert.throws(() => loadConfig(write('bad.yaml', 'data:\n  train: [unclosed\n')), /bad\.yaml:\d+: invalid YAML/);
});

test('every shipped config validates', () => {
  const configs = readdirSync('configs').filter((f) => f.endsWith('.yaml'));
  assert.ok(configs.length >= 4);
  for (const f of configs) assert.doesNotThrow(() => loadConfig(join('configs', f)), f);
});
