/**
 * configs/gp-config.schema.json: generated from the zod schema, committed for editors. These tests keep it from going
 * stale and check that it says what gp enforces: required keys required, unknown keys rejected.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { CONFIG_SCHEMA_FILE, configJsonSchema, renderConfigJsonSchema } from '../src/config/json-schema.js';
import { ConfigSchema } from '../src/config/schema.js';

type Schema = Record<string, unknown>;

const ANNOTATIONS = new Set(['$schema', 'title', 'description', 'default']);
const CHECKED = new Set(['type', 'properties', 'required', 'additionalProperties', 'propertyNames', 'enum', 'const', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'minLength', 'oneOf', 'anyOf']);
const BRANCHES = ['oneOf', 'anyOf'] as const;

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

/**
 * Just the JSON Schema keywords the generated file uses. An unknown keyword is itself an error, so a zod change that
 * brings in a new keyword fails here instead of being waved through unchecked.
 */
function validate(schema: Schema, value: unknown, path = '$'): string[] {
  const unknown = Object.keys(schema).filter((k) => !ANNOTATIONS.has(k) && !CHECKED.has(k));
  if (unknown.length) return [`${path}: validator does not know ${unknown.join(', ')}`];
  const errors: string[] = [];
  for (const keyword of BRANCHES) {
    if (!Array.isArray(schema[keyword])) continue;
    const results = (schema[keyword] as Schema[]).map((branch, i) => validate(branch, value, `${path}[${keyword} ${i}]`));
    const passing = results.filter((r) => r.length === 0).length;
    if (keyword === 'oneOf' ? passing !== 1 : passing === 0) {
      errors.push(`${path}: ${passing} of the ${keyword} branches match`, ...results.flat());
    }
  }
  if (schema.type !== undefined) {
    const allowed = ([] as unknown[]).concat(schema.type);
    const actual = typeOf(value);
    if (!allowed.includes(actual) && !(actual === 'integer' && allowed.includes('number'))) return [`${path}: expected ${allowed.join('|')}, found ${actual}`];
  }
  if (Array.isArray(schema.enum) && !schema.enum.includes(value)) errors.push(`${path}: not one of ${schema.enum.join(', ')}`);
  if ('const' in schema && schema.const !== value) errors.push(`${path}: expected ${JSON.stringify(schema.const)}`);
  if (typeof value === 'number') {
    if (typeof schema.minimum === 'number' && value < schema.minimum) errors.push(`${path}: below ${schema.minimum}`);
    if (typeof schema.maximum === 'number' && value > schema.maximum) errors.push(`${path}: above ${schema.maximum}`);
    if (typeof schema.exclusiveMinimum === 'number' && value <= schema.exclusiveMinimum) errors.push(`${path}: not above ${schema.exclusiveMinimum}`);
    if (typeof schema.exclusiveMaximum === 'number' && value >= schema.exclusiveMaximum) errors.push(`${path}: not below ${schema.exclusiveMaximum}`);
  }
  if (typeof value === 'string' && typeof schema.minLength === 'number' && value.length < schema.minLength) errors.push(`${path}: shorter than ${schema.minLength}`);
  if (typeOf(value) === 'object') {
    const object = value as Record<string, unknown>;
    const properties = (schema.properties ?? {}) as Record<string, Schema>;
    for (const key of (schema.required ?? []) as string[]) if (!(key in object)) errors.push(`${path}: missing required ${key}`);
    for (const [key, child] of Object.entries(object)) {
      if (schema.propertyNames) errors.push(...validate(schema.propertyNames as Schema, key, `${path}[key ${key}]`));
      if (key in properties) errors.push(...validate(properties[key], child, `${path}.${key}`));
      else if (schema.additionalProperties === false) errors.push(`${path}: unknown key ${key}`);
      else if (typeof schema.additionalProperties === 'object') errors.push(...validate(schema.additionalProperties as Schema, child, `${path}.${key}`));
    }
  }
  return errors;
}

const schema = configJsonSchema();
const shipped = readdirSync('configs').filter((f) => f.endsWith('.yaml')).sort();

test('the committed schema file is what scripts/config-schema.ts generates now (run `npm run schema` if not)', () => {
  assert.equal(readFileSync(CONFIG_SCHEMA_FILE, 'utf8'), renderConfigJsonSchema());
});

test('every shipped config points editors at the schema and is valid against it', () => {
  assert.ok(shipped.length >= 4, `configs: ${shipped.join(', ')}`);
  for (const name of shipped) {
    const text = readFileSync(join('configs', name), 'utf8');
    assert.equal(text.split('\n')[0], '# yaml-language-server: $schema=./gp-config.schema.json', name);
    assert.deepEqual(validate(schema, parseYaml(text)), [], name);
  }
});

test('required keys are required and defaults are optional (input mode)', () => {
  assert.deepEqual(schema.required, ['data']);
  const properties = schema.properties as Record<string, Schema>;
  assert.deepEqual((properties.data as Schema).required, ['train']);
  assert.deepEqual(validate(schema, { data: { train: 't.jsonl' } }), []);
  assert.match(validate(schema, { data: {} }).join('\n'), /\$\.data: missing required train/);
  assert.match(validate(schema, {}).join('\n'), /missing required data/);
});

test('every object of the config (all strict in zod) rejects unknown keys', () => {
  const objects: string[] = [];
  const walk = (node: Schema, path: string) => {
    for (const keyword of BRANCHES) {
      if (Array.isArray(node[keyword])) (node[keyword] as Schema[]).forEach((branch, i) => walk(branch, `${path}[${keyword} ${i}]`));
    }
    if (!node.properties) return;
    objects.push(path);
    assert.equal(node.additionalProperties, false, `${path} allows unknown keys`);
    for (const [key, child] of Object.entries(node.properties as Record<string, Schema>)) walk(child, `${path}.${key}`);
  };
  walk(schema, '$');
  // Where a key's schema is a union, its branches count as that key.
  const keyPaths = objects.map((p) => p.replace(/\[(oneOf|anyOf) \d+\]/g, ''));
  for (const path of ['$', '$.data', '$.tokenizer', '$.model.encoder', '$.model.head', '$.training.schedule', '$.regularizer.vat']) assert.ok(keyPaths.includes(path), path);
  assert.match(validate(schema, { data: { train: 't' }, training: { learning_rate: 0.1 } }).join('\n'), /\$\.training: unknown key learning_rate/);
});

test('the JSON Schema and zod agree on typical mistakes', () => {
  const cases: unknown[] = [
    { data: { train: 't' } },
    { data: { train: 't' }, training: { epochs: 'many' } },
    { data: { train: 't' }, training: { epochs: 0 } },
    { data: { train: 't' }, training: { epochs: 2.5 } },
    { data: { train: 't', format: 'csv' } },
    { data: { train: '' } },
    { data: { train: 't' }, model: { encoder: { layers: 2 } } },
    { data: { train: 't' }, model: { encoder: { type: 'transformer', path: 'x' } } },
    { data: { train: 't' }, model: { encoder: { type: 'bert' } } },
    { data: { train: 't' }, model: { encoder: { type: 'bert', path: 'models/bert' } } },
    { data: { train: 't' }, model: { dropout: 1.5 } },
    { data: { train: 't' }, training: { ema: 0.999, tokenDropout: 0.1, tuneDecoding: true } },
    { data: { train: 't' }, training: { ema: 1 } },
    { data: { train: 't' }, model: { wordFeatures: 5000 } },
    { data: { train: 't' }, model: { wordFeatures: 1 } },
    { data: { train: 't' }, model: { lexicon: 'words.txt' } },
    { data: { train: 't' }, model: { lexicon: '' } },
    { data: { train: 't' }, regularizer: { type: 'rdrop', typeWeights: { PER: 2, LOC: -1 } } },
    { data: { train: 't' }, regularizer: { type: 'vat', vat: { epsilon: 0.5 } } },
    { $schema: './gp-config.schema.json', data: { train: 't' } },
  ];
  for (const value of cases) {
    const zodOk = ConfigSchema.safeParse(value).success;
    const errors = validate(schema, value);
    assert.equal(errors.length === 0, zodOk, `${JSON.stringify(value)}: zod ${zodOk ? 'accepts' : 'rejects'}, JSON Schema says ${errors.join('; ') || 'ok'}`);
  }
});
