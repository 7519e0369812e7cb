/**
 * The real CLI against bad input. Every failure must exit with its documented code (never 70, the code of a bug),
 * print one clear message naming the file and line or the config key, print no stack trace, and leave what was
 * already written as it was. A few inputs that look suspicious but are fine (CRLF, a BOM, a very long line,
 * labels the model does not know) must succeed.
 *
 * One tiny model is trained once (wasm backend, seconds) on texts made of a repeated pattern, so it predicts
 * something definite on that pattern.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModel } from '../src/model/io.js';
import { disposeModel } from '../src/model/globalpointer.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'src/cli/main.ts');
const dir = mkdtempSync(join(tmpdir(), 'gp-bad-input-'));
const MODEL = join(dir, 'model');
const BACKEND = ['--backend', 'wasm'];

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function gp(args: string[], stdin = ''): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: ROOT });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

function write(name: string, content: string | Uint8Array): string {
  const file = join(dir, name);
  writeFileSync(file, content);
  return file;
}

const jsonl = (records: object[]) => records.map((r) => JSON.stringify(r)).join('\n') + '\n';

/** Exit code, message patterns, and the things a clean failure never shows. */
function assertFails(run: Run, code: number, ...patterns: RegExp[]): void {
  const context = `exit ${run.status}\n--- stderr\n${run.stderr}`;
  assert.equal(run.status, code, context);
  assert.doesNotMatch(run.stderr, /^\s+at /m, `a stack trace:\n${context}`);
  assert.doesNotMatch(run.stderr, /internal error/, context);
  assert.match(run.stderr, /^gp: error: /m, context);
  for (const pattern of patterns) assert.match(run.stderr, pattern, context);
}

/** Every file under `path` (recursively) by content hash, to show nothing was touched. */
function snapshot(path: string): Map<string, string> {
  const files = statSync(path).isDirectory() ? readdirSync(path, { recursive: true, encoding: 'utf8' }).map((f) => join(path, f)) : [path];
  return new Map(files.filter((f) => statSync(f).isFile()).sort().map((f) => [f, createHash('sha256').update(readFileSync(f)).digest('hex')]));
}

let copies = 0;
/** A private copy of the trained model, to damage or to train over. */
function modelCopy(): string {
  const copy = join(dir, `model-copy-${++copies}`);
  cpSync(MODEL, copy, { recursive: true });
  return copy;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// ------------------------------------------------------------------------------------------------ the model

const NAMES = ['张三', '李四', '王五', '赵六'];
const PLACES = ['北京', '上海', '广州', '深圳'];

/** Seven "NAME在PLACE工作。" sentences per text, names and places labelled. */
function patternExamples(): object[] {
  return Array.from({ length: 8 }, (_, i) => {
    let text = '';
    const entities: object[] = [];
    for (let k = 0; k < 7; k++) {
      const at = text.length;
      text += `${NAMES[(i + k) % 4]}在${PLACES[(i + 2 * k + 1) % 4]}工作。`;
      entities.push({ start: at, end: at + 2, label: 'name' }, { start: at + 3, end: at + 5, label: 'address' });
    }
    return { text, entities };
  });
}

const TRAIN = write('train.jsonl', jsonl(patternExamples()));
const tinyConfig = (train: string, extra = '') =>
  [
    'seed: 1',
    'data:',
    `  train: ${JSON.stringify(train)}`,
    `  dev: ${JSON.stringify(TRAIN)}`,
    '  maxLength: 64',
    '  windowOverlap: 8',
    extra,
    'model: { dim: 16, dropout: 0, encoder: { type: transformer, layers: 1, heads: 2 }, head: { size: 8 } }',
    'training: { epochs: 5, batchSize: 1, lr: 1.0e-2, schedule: { type: constant, warmup: 0 } }',
    '',
  ].join('\n');

before(async () => {
  const run = await gp(['train', '-c', write('tiny.yaml', tinyConfig(TRAIN)), '-o', MODEL, '-q', ...BACKEND]);
  assert.equal(run.status, 0, run.stderr);
});

after(() => rmSync(dir, { recursive: true, force: true }));

/** An existing --out file that a failed predict must leave alone. */
function existingOut(): { file: string; unchanged: () => void } {
  const file = write(`out-${++copies}.jsonl`, '{"previous": "results"}\n');
  const before = readFileSync(file, 'utf8');
  return { file, unchanged: () => assert.equal(readFileSync(file, 'utf8'), before, `${file} was changed`) };
}

// ------------------------------------------------------------------------------------------------ cases

describe('bad data', { concurrency: 4 }, () => {
  it('malformed JSON in training data: file:line, model directory untouched and still loading', async () => {
    const data = write('malformed.jsonl', jsonl(patternExamples().slice(0, 2)) + '{"text": "x", entities: []}\n');
    const out = modelCopy();
    const before = snapshot(out);
    const run = await gp(['train', '-c', write('malformed.yaml', tinyConfig(data)), '-o', out, '-q', ...BACKEND]);
    assertFails(run, 65, new RegExp(`${escape(data)}:3: malformed JSON`));
    assert.deepEqual(snapshot(out), before);
    const loaded = loadModel(out);
    assert.deepEqual(loaded.manifest.labels, ['address', 'name']);
    disposeModel(loaded.model);
  });

  it('a JSON line cut in the middle (truncated file) at eval', async () => {
    const whole = jsonl(patternExamples().slice(0, 3));
    const data = write('truncated.jsonl', whole.slice(0, whole.length - 40));
    assertFails(await gp(['eval', '-m', MODEL, '-d', data, ...BACKEND]), 65, new RegExp(`${escape(data)}:3: malformed JSON`));
  });

  it('a truncated JSON-lines predict input: file:line, and the existing --out file is unchanged', async () => {
    const input = write('truncated-input.jsonl', '{"text": "张三在北京工作。", "id": 1}\n{"text": "李四在上');
    const out = existingOut();
    assertFails(await gp(['predict', '-m', MODEL, input, '-o', out.file, ...BACKEND]), 65, new RegExp(`${escape(input)}:2: malformed JSON`));
    out.unchanged();
  });

  it('a span out of range', async () => {
    const data = write('range.jsonl', jsonl([{ text: '张三', entities: [{ start: 0, end: 5, label: 'name' }] }]));
    assertFails(await gp(['eval', '-m', MODEL, '-d', data, ...BACKEND]), 65, new RegExp(`${escape(data)}:1: entities\\[0\\] = \\[0, 5\\) is out of range`));
  });

  it('an entity surface that does not match the text', async () => {
    const data = write('surface.jsonl', jsonl([{ text: '', entities: [] }, { text: '张三在北京', entities: [{ start: 0, end: 2, label: 'name', text: '李四' }] }]));
    assertFails(await gp(['eval', '-m', MODEL, '-d', data, ...BACKEND]), 65, new RegExp(`${escape(data)}:2: entities\\[0\\]\\.text is "李四" but text\\[0:2\\] is "张三"`));
  });

  it('an invalid tag sequence under invalidTags: reject: file:line, model directory untouched', async () => {
    const data = write('tags.bio', '张 B-name\n三 I-name\n\n李 O\n四 I-name\n');
    const out = modelCopy();
    const before = snapshot(out);
    const run = await gp(['train', '-c', write('reject.yaml', tinyConfig(data, '  invalidTags: reject')), '-o', out, '-q', ...BACKEND]);
    assertFails(run, 65, new RegExp(`${escape(data)}:5: "I-name" after "O"`));
    assert.deepEqual(snapshot(out), before);
  });

  it('training data with only empty texts: named, model directory untouched', async () => {
    const data = write('empty-train.jsonl', jsonl([{ text: '', entities: [] }, { text: '', entities: [] }]));
    const out = modelCopy();
    const before = snapshot(out);
    const run = await gp(['train', '-c', write('empty.yaml', tinyConfig(data)), '-o', out, '-q', ...BACKEND]);
    assertFails(run, 1, new RegExp(`${escape(data)}: no entities in the training data`));
    assert.deepEqual(snapshot(out), before);
  });

  it('an empty text at eval is kept with a warning naming file:line (exit 0)', async () => {
    const data = write('empty-eval.jsonl', jsonl([patternExamples()[0], { text: '', entities: [] }]));
    const run = await gp(['eval', '-m', MODEL, '-d', data, '--json', ...BACKEND]);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stderr, new RegExp(`warning: example with empty text kept \\(${escape(data)}:2\\)`));
    assert.equal(JSON.parse(run.stdout).examples, 2);
  });

  it('invalid UTF-8 in labelled data', async () => {
    const data = write('utf8.jsonl', Buffer.concat([Buffer.from(jsonl([{ text: 'ok', entities: [] }])), Buffer.from('{"text": "ab'), Buffer.from([0xff, 0xfe]), Buffer.from('", "entities": []}\n')]));
    assertFails(await gp(['eval', '-m', MODEL, '-d', data, ...BACKEND]), 65, new RegExp(`${escape(data)}:2: invalid UTF-8`));
  });

  it('invalid UTF-8 in predict input: file:line, --out unchanged', async () => {
    const input = write('utf8.txt', Buffer.concat([Buffer.from('张三在北京工作。\n李四\n'), Buffer.from([0xc3, 0x28]), Buffer.from('\n')]));
    const out = existingOut();
    assertFails(await gp(['predict', '-m', MODEL, input, '-o', out.file, ...BACKEND]), 65, new RegExp(`${escape(input)}:3: invalid UTF-8`));
    out.unchanged();
  });

  it('nonexistent input files', async () => {
    const missing = join(dir, 'no-such-file.txt');
    const out = existingOut();
    assertFails(await gp(['predict', '-m', MODEL, missing, '-o', out.file, ...BACKEND]), 66, new RegExp(`cannot read ${escape(missing)}`));
    out.unchanged();
    assertFails(await gp(['eval', '-m', MODEL, '-d', missing, ...BACKEND]), 66, new RegExp(`cannot read ${escape(missing)}`));
  });

  it('an --out path that cannot be written', async () => {
    const input = write('one.txt', '张三在北京工作。\n');
    const out = join(dir, 'no-such-dir', 'out.jsonl');
    assertFails(await gp(['predict', '-m', MODEL, input, '-o', out, ...BACKEND]), 73, new RegExp(`cannot write ${escape(out)}`));
  });
});

describe('inputs that look odd but are fine', { concurrency: 4 }, () => {
  it('a 100,000-character line: predicted, offsets slice the input', async () => {
    const line = '张三在北京工作。'.repeat(12_500);
    assert.equal(line.length, 100_000);
    const input = write('long.txt', line + '\n');
    const out = join(dir, 'long.out.jsonl');
    const run = await gp(['predict', '-m', MODEL, input, '-o', out, ...BACKEND]);
    assert.equal(run.status, 0, run.stderr);
    const lines = readFileSync(out, 'utf8').trimEnd().split('\n');
    assert.equal(lines.length, 1);
    const { text, entities } = JSON.parse(lines[0]) as { text: string; entities: Array<{ start: number; end: number; text: string }> };
    assert.equal(text, line);
    assert.ok(entities.length > 0, 'the pattern the model was trained on is found');
    for (const e of entities) assert.equal(text.slice(e.start, e.end), e.text);
    assert.ok(entities.some((e) => e.start > 90_000), 'entities come from the far end of the line too');
  });

  it('CRLF line ends, a BOM, and blank lines: texts come out clean and line-aligned', async () => {
    const plain = write('crlf.txt', '\uFEFF张三在北京工作。\r\n\r\n李四在上海工作。\r\n');
    const json = write('crlf.jsonl', '\uFEFF{"text": "王五在广州工作。", "id": 7}\r\n{"text": "赵六在深圳工作。", "id": 8}\r\n');
    const run = await gp(['predict', '-m', MODEL, plain, json, ...BACKEND]);
    assert.equal(run.status, 0, run.stderr);
    const records = run.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { text: string; id?: number; entities: Array<{ start: number; end: number; text: string }> });
    assert.deepEqual(records.map((r) => r.text), ['张三在北京工作。', '', '李四在上海工作。', '王五在广州工作。', '赵六在深圳工作。']);
    assert.deepEqual(records.map((r) => r.id), [undefined, undefined, undefined, 7, 8]);
    assert.deepEqual(records[1].entities, []);
    for (const r of records) for (const e of r.entities) assert.equal(r.text.slice(e.start, e.end), e.text);
  });

  it('CRLF and a BOM in labelled data', async () => {
    const body = '\uFEFF' + jsonl(patternExamples().slice(0, 2)).replaceAll('\n', '\r\n');
    const run = await gp(['eval', '-m', MODEL, '-d', write('crlf-eval.jsonl', body), '--json', ...BACKEND]);
    assert.equal(run.status, 0, run.stderr);
    const scores = JSON.parse(run.stdout) as { examples: number; micro: { support: number } };
    assert.equal(scores.examples, 2);
    assert.equal(scores.micro.support, 28);
  });

  it('labels the model does not know at eval: a warning, counted as misses, exit 0', async () => {
    const data = write('unknown.jsonl', jsonl([{ text: '张三在北京工作。', entities: [{ start: 0, end: 2, label: 'PERSON' }, { start: 3, end: 5, label: 'address' }] }]));
    const run = await gp(['eval', '-m', MODEL, '-d', data, '--json', ...BACKEND]);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stderr, /warning: .*labels the model does not know \(counted as misses\): PERSON/);
    const scores = JSON.parse(run.stdout) as { micro: { support: number }; perType: Record<string, { tp: number; fn: number; support: number }> };
    assert.equal(scores.micro.support, 2);
    assert.deepEqual([scores.perType.PERSON.tp, scores.perType.PERSON.fn], [0, 1]);
  });
});

describe('damaged model directories', { concurrency: 4 }, () => {
  const cases: Array<{ name: string; damage: (model: string) => void; expect: (model: string) => RegExp }> = [
    { name: 'no model.json', damage: (m) => rmSync(join(m, 'model.json')), expect: (m) => new RegExp(`${escape(m)}: not a gp model directory \\(no model.json\\)`) },
    { name: 'no weights.safetensors', damage: (m) => rmSync(join(m, 'weights.safetensors')), expect: (m) => new RegExp(`${escape(join(m, 'weights.safetensors'))}: cannot read weights`) },
    { name: 'no tokenizer.json', damage: (m) => rmSync(join(m, 'tokenizer.json')), expect: (m) => new RegExp(`${escape(join(m, 'tokenizer.json'))}: cannot load tokenizer`) },
    {
      name: 'truncated weights.safetensors',
      damage: (m) => {
        const file = join(m, 'weights.safetensors');
        const bytes = readFileSync(file);
        writeFileSync(file, bytes.subarray(0, bytes.length >> 1));
      },
      expect: (m) => new RegExp(`${escape(join(m, 'weights.safetensors'))}: not a valid safetensors file: .*truncated`),
    },
    {
      name: 'weights.safetensors with a malformed header entry',
      damage: (m) => {
        const header = Buffer.from('{"embeddings.word":{"dtype":"F32"}}     ');
        const length = Buffer.alloc(8);
        length.writeBigUInt64LE(BigInt(header.length));
        writeFileSync(join(m, 'weights.safetensors'), Buffer.concat([length, header]));
      },
      expect: (m) => new RegExp(`${escape(join(m, 'weights.safetensors'))}: not a valid safetensors file: tensor embeddings.word: shape`),
    },
    {
      name: 'model.json cut short',
      damage: (m) => writeFileSync(join(m, 'model.json'), readFileSync(join(m, 'model.json'), 'utf8').slice(0, 50)),
      expect: (m) => new RegExp(`${escape(join(m, 'model.json'))}: corrupt model manifest`),
    },
    { name: 'model.json holding null', damage: (m) => writeFileSync(join(m, 'model.json'), 'null\n'), expect: (m) => new RegExp(`${escape(join(m, 'model.json'))}: corrupt model manifest: not a JSON object`) },
    {
      name: 'model.json with a damaged spec',
      damage: (m) => {
        const manifest = JSON.parse(readFileSync(join(m, 'model.json'), 'utf8'));
        manifest.spec.encoder = null;
        writeFileSync(join(m, 'model.json'), JSON.stringify(manifest));
      },
      expect: (m) => new RegExp(`${escape(join(m, 'model.json'))}: spec does not describe a model`),
    },
  ];
  for (const { name, damage, expect } of cases) {
    it(`${name}: predict fails naming the file, --out unchanged`, async () => {
      const model = modelCopy();
      damage(model);
      const out = existingOut();
      const input = write(`input-${copies}.txt`, '张三在北京工作。\n');
      assertFails(await gp(['predict', '-m', model, input, '-o', out.file, ...BACKEND]), 1, expect(model));
      out.unchanged();
    });
  }

  it('no model.json, predicting in two workers: the worker\'s error, --out unchanged', async () => {
    const model = modelCopy();
    rmSync(join(model, 'model.json'));
    const out = existingOut();
    const input = write('input-workers.txt', '张三在北京工作。\n李四去了上海。\n');
    const run = await gp(['predict', '-m', model, input, '-o', out.file, '--workers', '2', ...BACKEND]);
    assertFails(run, 1, new RegExp(`a predict worker failed \\(exit 1\\): ${escape(model)}: not a gp model directory`));
    out.unchanged();
  });
});

describe('bad configs', { concurrency: 4 }, () => {
  it('wrong types and unknown keys: every problem with file:line and key path, model directory untouched', async () => {
    const config = write('bad-config.yaml', ['data:', `  train: ${JSON.stringify(TRAIN)}`, 'model:', '  dim: sixteen', 'training:', '  epochs: 1', '  learning_rate: 0.1', ''].join('\n'));
    const out = modelCopy();
    const before = snapshot(out);
    const run = await gp(['train', '-c', config, '-o', out, '-q', ...BACKEND]);
    assertFails(run, 78, new RegExp(`${escape(config)}:4 model\\.dim: .*expected number`), new RegExp(`${escape(config)}:\\d+ training: .*learning_rate`));
    assert.deepEqual(snapshot(out), before);
  });

  it('a nonexistent config', async () => {
    const missing = join(dir, 'no-such-config.yaml');
    assertFails(await gp(['train', '-c', missing, '-o', join(dir, 'never')]), 78, new RegExp(`${escape(missing)}: cannot read config`));
  });

  it('a lexicon that is missing or holds no usable word: named, model directory untouched', async () => {
    const config = write('lexicon.yaml', tinyConfig(TRAIN));
    const out = modelCopy();
    const before = snapshot(out);
    const missing = join(dir, 'no-such-lexicon.txt');
    assertFails(await gp(['train', '-c', config, '-o', out, '--set', `model.lexicon=${missing}`, '-q', ...BACKEND]), 78, new RegExp(`model\\.lexicon: ${escape(missing)} does not exist .*npm run fetch:lexicon`));
    const useless = write('one-char-words.txt', '京\n北\n');
    assertFails(await gp(['train', '-c', config, '-o', out, '--set', `model.lexicon=${useless}`, '-q', ...BACKEND]), 65, new RegExp(`${escape(useless)}: lexicon has no words of two or more characters`));
    assert.deepEqual(snapshot(out), before);
  });

  it('--set with a key the schema does not have, and with no key at all', async () => {
    const config = write('ok.yaml', tinyConfig(TRAIN));
    const out = modelCopy();
    const before = snapshot(out);
    assertFails(await gp(['train', '-c', config, '-o', out, '--set', 'training.nope=1', '-q', ...BACKEND]), 78, /training: Unrecognized key: "nope"/);
    assertFails(await gp(['train', '-c', config, '-o', out, '--set', '=1', '-q', ...BACKEND]), 78, /--set =1: expected key\.path=value/);
    assert.deepEqual(snapshot(out), before);
  });
});
