import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkCorpora, distribution, formatCheckReport, spanRelation, type CheckTokenizer } from '../src/data/check.js';
import { parseCorpus } from '../src/data/corpus.js';
import { buildTokenizer } from '../src/data/tokenizer.js';
import { MODEL_FORMAT, MODEL_FORMAT_VERSION } from '../src/model/io.js';

/** Whitespace-separated words as tokens, no [CLS]/[SEP]: boundaries inside words are easy to provoke. */
const words: CheckTokenizer = {
  encode(text: string) {
    const offsets: Array<[number, number]> = [...text.matchAll(/\S+/g)].map((m) => [m.index, m.index + m[0].length]);
    return { ids: offsets.map((_, i) => i), offsets };
  },
};

const jsonl = (records: object[]) => records.map((r) => JSON.stringify(r)).join('\n') + '\n';

test('distribution uses nearest ranks', () => {
  assert.deepEqual(distribution(Array.from({ length: 20 }, (_, i) => 20 - i)), { min: 1, median: 10, p95: 19, max: 20 });
  assert.deepEqual(distribution([7]), { min: 7, median: 7, p95: 7, max: 7 });
  assert.equal(distribution([]), null);
});

test('spanRelation tells nested, crossing and apart', () => {
  const s = (start: number, end: number) => ({ start, end, label: 'X' });
  assert.equal(spanRelation(s(0, 5), s(1, 3)), 'nested');
  assert.equal(spanRelation(s(1, 3), s(0, 5)), 'nested');
  assert.equal(spanRelation(s(0, 3), s(0, 3)), 'nested');
  assert.equal(spanRelation(s(0, 3), s(2, 5)), 'crossing');
  assert.equal(spanRelation(s(0, 3), s(3, 5)), 'apart');
});

test('one file: lengths, nested and crossing spans, tokenizer misfits, empty and repeated texts', () => {
  const content = jsonl([
    // nested: "New York" inside "New York City"; crossing: "York City" and "City Hall"
    { text: 'New York City Hall', entities: [{ start: 0, end: 13, label: 'LOC' }, { start: 0, end: 8, label: 'GPE' }, { start: 4, end: 13, label: 'A' }, { start: 9, end: 18, label: 'B' }] },
    // "Bob" ends inside the token "Bobby"
    { text: 'Bobby went home', entities: [{ start: 0, end: 3, label: 'PER' }] },
    { text: '', entities: [] },
    { text: 'Bobby went home', entities: [] },
    { text: 'a b c d e f', entities: [{ start: 0, end: 11, label: 'LONG' }] },
  ]);
  const report = checkCorpora([parseCorpus(content, 'one.jsonl')], words, { maxLength: 4, tokenizerSource: 'words' });
  const [f] = report.files;
  assert.equal(report.windowTokens, 4, 'no [CLS]/[SEP] in this tokenizer');
  assert.equal(f.examples, 5);
  assert.deepEqual(f.perType, { A: 1, B: 1, GPE: 1, LOC: 1, LONG: 1, PER: 1 });
  assert.deepEqual(f.tokens, { min: 0, median: 3, p95: 6, max: 6 });
  assert.deepEqual(f.chars, { min: 0, median: 15, p95: 18, max: 18 });
  assert.equal(f.overMaxLength, 1);
  // LOC ⊃ GPE, LOC ⊃ A; crossing: LOC/B, GPE/A, A/B
  assert.equal(f.nested.count, 2);
  assert.equal(f.overlapping.count, 3);
  assert.deepEqual(f.overlapping.examples[0].spans.map((s) => s.text).sort(), ['City Hall', 'New York City']);
  assert.equal(f.nested.examples[0].line, 1);
  assert.equal(f.misaligned.count, 1);
  assert.deepEqual(f.misaligned.examples[0], {
    line: 2,
    spans: [{ start: 0, end: 3, label: 'PER', text: 'Bob' }],
    note: 'a boundary falls inside the token at [0, 5)',
  });
  assert.equal(f.longerThanWindow.count, 1);
  assert.equal(f.longerThanWindow.examples[0].note, '6 tokens');
  assert.equal(f.emptyTexts, 1);
  assert.equal(f.duplicateTexts, 1);
  assert.ok(report.warnings.some((w) => /1 entities the tokenizer cannot represent/.test(w)), report.warnings.join('\n'));
  assert.ok(report.warnings.some((w) => /empty text/.test(w)), 'the reader\'s warning is passed on');
});

test('[CLS]/[SEP] take two places of maxLength', () => {
  const report = checkCorpora([parseCorpus(jsonl([{ text: 'a b c', entities: [] }]), 'x.jsonl')], { ...words, clsId: 2, sepId: 3 }, { maxLength: 4, tokenizerSource: 'w' });
  assert.equal(report.windowTokens, 2);
  assert.equal(report.files[0].overMaxLength, 1);
});

test('two files: shared texts and label differences, in both directions', () => {
  const train = parseCorpus(jsonl([{ text: 'Alice met Bob', entities: [{ start: 0, end: 5, label: 'PER' }] }, { text: 'in Paris', entities: [{ start: 3, end: 8, label: 'LOC' }] }]), 'train.jsonl');
  const dev = parseCorpus(jsonl([{ text: 'at ACME', entities: [{ start: 3, end: 7, label: 'ORG' }] }, { text: 'in Paris', entities: [] }]), 'dev.jsonl');
  const report = checkCorpora([train, dev], words, { maxLength: 16, tokenizerSource: 'words' });
  assert.deepEqual(report.labels, ['LOC', 'ORG', 'PER']);
  assert.equal(report.pairs.length, 1);
  const [pair] = report.pairs;
  assert.equal(pair.sharedTexts, 1);
  assert.deepEqual(pair.examples, [{ text: 'in Paris', lineA: 2, lineB: 2 }]);
  assert.deepEqual(pair.labelsOnlyInA, ['LOC', 'PER']);
  assert.deepEqual(pair.labelsOnlyInB, ['ORG']);
  assert.ok(report.warnings.includes('dev.jsonl has labels train.jsonl lacks: ORG'), report.warnings.join('\n'));
  assert.ok(report.warnings.some((w) => w.includes('share 1 identical texts')));
  const text = formatCheckReport(report);
  assert.match(text, /^PER +1 +0$/m);
  assert.match(text, /^total +2 +1$/m);
  assert.match(text, /train\.jsonl vs dev\.jsonl: 1 identical texts\n {2}"in Paris" \(lines 2 and 2\)/);
});

test('conll: repaired tag sequences, U+FFFD, and texts a char tokenizer finds no token in', () => {
  const content = ['张 B-PER', '三 I-PER', '说 O', '', '李 O', '四 I-PER', '', '\uFFFD O', '\uFFFD O', ''].join('\n');
  const corpus = parseCorpus(content, 'x.bio', { scheme: 'bio' });
  const tokenizer = buildTokenizer(corpus.examples.map((e) => e.text), { mode: 'char' });
  const report = checkCorpora([corpus], tokenizer, { maxLength: 8, tokenizerSource: 'char' });
  const [f] = report.files;
  assert.equal(f.repairedTags, 1);
  assert.deepEqual(f.tokens, { min: 0, median: 2, p95: 3, max: 3 });
  assert.equal(f.noTokens.count, 1);
  assert.equal(f.noTokens.examples[0].line, 8);
  assert.equal(f.replacementChars.count, 1);
  assert.equal(f.misaligned.count, 0);
  assert.ok(report.warnings.some((w) => /invalid tag sequence repaired/.test(w)));
});

// --------------------------------------------------------------------------------------------- the command

const dir = mkdtempSync(join(tmpdir(), 'gp-data-check-'));
const write = (name: string, body: string) => {
  const file = join(dir, name);
  writeFileSync(file, body);
  return file;
};
const gp = (...args: string[]) => spawnSync('node', ['--import', 'tsx', 'src/cli/main.ts', ...args], { encoding: 'utf8' });

test('gp data check: tables by default, JSON with --json, exit 0 on warnings', () => {
  const train = write('train.jsonl', jsonl([{ text: '张三在北京', entities: [{ start: 0, end: 2, label: 'PER' }, { start: 3, end: 5, label: 'LOC' }] }]));
  const dev = write('dev.jsonl', jsonl([{ text: '张三在北京', entities: [{ start: 0, end: 2, label: 'PER' }] }]));
  const human = gp('data', 'check', train, dev);
  assert.equal(human.status, 0, human.stderr);
  assert.match(human.stdout, /^LOC +1 +0$/m);
  assert.match(human.stdout, /char tokenizer built from the files/);
  assert.match(human.stdout, /share 1 identical texts/);
  const json = gp('data', 'check', train, dev, '--json', '--max-length', '4');
  assert.equal(json.status, 0, json.stderr);
  const report = JSON.parse(json.stdout);
  assert.equal(report.maxLength, 4);
  assert.equal(report.windowTokens, 2);
  assert.equal(report.files[0].overMaxLength, 1);
  assert.equal(report.pairs[0].sharedTexts, 1);
});

test('gp data check: invalid data fails with the reader\'s file:line message and exit 65, no stack', () => {
  const bad = write('bad.jsonl', jsonl([{ text: 'ok', entities: [] }]) + '{"text": "cut\n');
  const result = gp('data', 'check', bad);
  assert.equal(result.status, 65);
  assert.match(result.stderr, /bad\.jsonl:2: malformed JSON/);
  assert.doesNotMatch(result.stderr, /^ {4}at /m);
  assert.equal(result.stdout, '');
  const missing = gp('data', 'check', join(dir, 'nope.jsonl'));
  assert.equal(missing.status, 66);
  assert.match(missing.stderr, /cannot read .*nope\.jsonl/);
});

test('gp data check --tokenizer MODEL_DIR: the model\'s tokenizer and maxLength', () => {
  const model = join(dir, 'model');
  mkdirSync(model);
  // Word-level vocabulary without the letters: "ab" is one token, so an entity "a" ends inside it.
  const tokenizer = buildTokenizer(['ab ab ab cd'], { mode: 'wordpiece' });
  writeFileSync(join(model, 'tokenizer.json'), JSON.stringify(tokenizer));
  const spec = { dim: 8, vocabSize: 10, numTypes: 1, maxLength: 3, encoder: {}, head: {} };
  writeFileSync(join(model, 'model.json'), JSON.stringify({ format: MODEL_FORMAT, version: MODEL_FORMAT_VERSION, spec, labels: ['X'], threshold: 0, windowOverlap: 0 }));
  const data = write('words.jsonl', jsonl([{ text: 'ab cd ab', entities: [{ start: 0, end: 1, label: 'X' }] }]));
  const run = gp('data', 'check', data, '--tokenizer', model, '--json');
  assert.equal(run.status, 0, run.stderr);
  const report = JSON.parse(run.stdout);
  assert.equal(report.maxLength, 3);
  assert.equal(report.windowTokens, 1);
  assert.match(report.tokenizer, /tokenizer\.json/);
  assert.equal(report.files[0].tokens.max, 3);
  assert.equal(report.files[0].overMaxLength, 1);
  assert.equal(report.files[0].misaligned.count, 1);
  const explicit = JSON.parse(gp('data', 'check', data, '--tokenizer', model, '--max-length', '16', '--json').stdout);
  assert.equal(explicit.maxLength, 16);
});
