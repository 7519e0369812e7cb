import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type ReadOptions, formatJsonlLine, parseCorpus, readCorpus, writeJsonl } from '../src/data/corpus.js';
import { DataError } from '../src/errors.js';
import type { Entity, Example } from '../src/types.js';

const dir = mkdtempSync(join(tmpdir(), 'gp-corpus-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let fileCount = 0;
/** Writes content to a fresh file in the temp dir and returns its path. */
function fixture(content: string | Uint8Array, name = 'corpus'): string {
  const path = join(dir, `${fileCount++}-${name}`);
  writeFileSync(path, content);
  return path;
}

function read(content: string, opts: ReadOptions = {}) {
  const file = fixture(content);
  return { file, ...readCorpus(file, opts) };
}

/** [surface, label] per span: readable, and wrong whenever an offset is. */
function surfaces(example: Example): [string, string][] {
  return example.spans.map((span) => [example.text.slice(span.start, span.end), span.label]);
}

function throwsAt(run: () => unknown, file: string, line: number, problem: string): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof DataError, `expected a DataError, got ${String(error)}`);
    assert.ok(error.message.startsWith(`${file}:${line}: `), `wrong place: ${error.message}`);
    assert.ok(error.message.includes(problem), `wrong problem: ${error.message}`);
    return true;
  });
}

const sample = (name: string) => fileURLToPath(new URL(`../data/${name}`, import.meta.url));

describe('CLUENER', () => {
  test('converts inclusive ends, keeps nested spans, reads unlabelled records, counts code points', () => {
    const { file, examples, report } = read(
      [
        '{"text": "北京大学在北京", "label": {"organization": {"北京大学": [[0, 3]]}, "address": {"北京": [[0, 1], [5, 6]]}}}',
        '',
        '{"id": 1, "text": "没有标注"}',
        '{"text": "😀张三说", "label": {"name": {"张三": [[1, 2]]}}}',
      ].join('\n'),
    );
    assert.equal(report.format, 'cluener');
    assert.deepEqual(examples[0].spans, [
      { start: 0, end: 2, label: 'address' },
      { start: 0, end: 4, label: 'organization' },
      { start: 5, end: 7, label: 'address' },
    ]);
    assert.deepEqual(examples[1], { text: '没有标注', spans: [], source: { file, line: 3 } });
    assert.deepEqual(examples[2].spans, [{ start: 2, end: 4, label: 'name' }]);
    assert.deepEqual(surfaces(examples[2]), [['张三', 'name']]);
    assert.deepEqual(examples.map((e) => e.source?.line), [1, 3, 4]);
    assert.deepEqual(report.perType, { address: 2, name: 1, organization: 1 });
    assert.equal(report.entities, 4);
    assert.ok(report.warnings.some((w) => w.includes('without "label"') && w.includes(`${file}:3`)), report.warnings.join('\n'));
  });

  test('sniffing looks past unlabelled first records', () => {
    const { report } = read('{"text": "无"}\n{"text": "张三", "label": {"name": {"张三": [[0, 1]]}}}\n');
    assert.equal(report.format, 'cluener');
    assert.equal(report.entities, 1);
  });
});

describe('canonical JSONL', () => {
  test('keeps overlapping spans in file order, accepts entity text and score', () => {
    const { examples, report } = read(
      '{"text": "北京大学医院", "entities": [{"start": 0, "end": 4, "label": "ORG", "text": "北京大学", "score": 0.9},' +
        ' {"start": 0, "end": 2, "label": "LOC"}, {"start": 2, "end": 6, "label": "ORG"}]}\n',
    );
    assert.equal(report.format, 'jsonl');
    assert.deepEqual(surfaces(examples[0]), [
      ['北京大学', 'ORG'],
      ['北京', 'LOC'],
      ['大学医院', 'ORG'],
    ]);
    assert.deepEqual(examples[0].spans[0], { start: 0, end: 4, label: 'ORG' });
  });

  test('drops exact duplicate spans with a warning', () => {
    const { file, examples, report } = read(
      '{"text": "ab", "entities": [{"start": 0, "end": 1, "label": "X"}, {"start": 0, "end": 1, "label": "X"}, {"start": 0, "end": 1, "label": "Y"}]}\n',
    );
    assert.deepEqual(examples[0].spans, [
      { start: 0, end: 1, label: 'X' },
      { start: 0, end: 1, label: 'Y' },
    ]);
    assert.ok(report.warnings.some((w) => w.includes('duplicate span dropped') && w.includes(`${file}:1`)), report.warnings.join('\n'));
  });

  test('keeps empty texts with a warning; an empty file has no examples', () => {
    const { examples, report } = read('{"text": "a", "entities": []}\n{"text": "", "entities": []}\n');
    assert.deepEqual(
      examples.map((e) => e.text),
      ['a', ''],
    );
    assert.ok(report.warnings.some((w) => w.includes('empty text') && w.includes(':2')), report.warnings.join('\n'));
    const empty = read('');
    assert.equal(empty.examples.length, 0);
    assert.ok(empty.report.warnings.some((w) => w.includes('no examples')));
  });

  test('round trip: writeJsonl then readCorpus gives the same examples, atomically', () => {
    const out = join(dir, 'roundtrip');
    mkdirSync(out);
    const path = join(out, 'pred.jsonl');
    writeFileSync(path, 'old content\n');
    const examples: Example[] = [
      { text: '😀北京大学', spans: [{ start: 2, end: 6, label: 'ORG' }, { start: 2, end: 4, label: 'LOC' }] },
      { text: 'no "entities" here\n', spans: [] },
      { text: 'a b', spans: [{ start: 2, end: 3, label: 'X' }] },
    ];
    writeJsonl(path, examples);
    assert.deepEqual(readdirSync(out), ['pred.jsonl']);
    const back = readCorpus(path);
    assert.deepEqual(
      back.examples,
      examples.map((e, i) => ({ ...e, source: { file: path, line: i + 1 } })),
    );
    assert.equal(back.report.format, 'jsonl');
  });

  test('formatJsonlLine writes entity text, and score when the span has one', () => {
    const entity: Entity = { start: 0, end: 2, label: 'PER', text: '张三', score: 0.75 };
    const line = formatJsonlLine({ text: '张三说', spans: [entity, { start: 2, end: 3, label: 'X' }] });
    assert.deepEqual(JSON.parse(line), {
      text: '张三说',
      entities: [
        { start: 0, end: 2, label: 'PER', text: '张三', score: 0.75 },
        { start: 2, end: 3, label: 'X', text: '说' },
      ],
    });
    assert.ok(!line.includes('\n'));
  });
});

describe('conll', () => {
  test('BIO, space separated, one character per line (People\'s Daily style)', () => {
    const { file, examples, report } = read('在 O\n青 B-ORG\n岛 I-ORG\n海 I-ORG\n李 B-PER\n四 I-PER\n\n\n北 B-LOC\n京 I-LOC\n');
    assert.equal(report.format, 'conll');
    assert.equal(report.scheme, 'bio');
    assert.equal(report.join, 'none');
    assert.deepEqual(examples, [
      {
        text: '在青岛海李四',
        spans: [
          { start: 1, end: 4, label: 'ORG' },
          { start: 4, end: 6, label: 'PER' },
        ],
        source: { file, line: 1 },
      },
      { text: '北京', spans: [{ start: 0, end: 2, label: 'LOC' }], source: { file, line: 9 } },
    ]);
    assert.equal(report.repairedTags, 0);
    assert.deepEqual(report.warnings, []);
  });

  test('IOB1: I- starts entities; B- only splits neighbours', () => {
    const content = 'Alex I-PER\nSmith I-PER\nJohn B-PER\nlives O\nin O\nParis I-LOC\n';
    const iob1 = read(content, { scheme: 'iob1' });
    assert.equal(iob1.examples[0].text, 'Alex Smith John lives in Paris');
    assert.deepEqual(surfaces(iob1.examples[0]), [
      ['Alex Smith', 'PER'],
      ['John', 'PER'],
      ['Paris', 'LOC'],
    ]);
    assert.equal(iob1.report.repairedTags, 0);

    // With a B- present, auto reads BIO: same spans, but the I- starts count as repairs and the warning says why.
    const auto = read(content);
    assert.equal(auto.report.scheme, 'bio');
    assert.deepEqual(auto.examples[0].spans, iob1.examples[0].spans);
    assert.equal(auto.report.repairedTags, 2);
    assert.ok(auto.report.warnings.some((w) => w.includes('iob1') && w.includes(`${auto.file}:1`)), auto.report.warnings.join('\n'));

    assert.equal(read('Alex I-PER\nsaid O\n').report.scheme, 'iob1');
  });

  test('BIOES and BILOU', () => {
    for (const [begin, inside, end, single] of [
      ['B', 'I', 'E', 'S'],
      ['B', 'I', 'L', 'U'],
    ]) {
      const { examples, report } = read(`中 ${begin}-ORG\n国 ${inside}-ORG\n银 ${end}-ORG\n的 O\n张 ${single}-PER\n`);
      assert.equal(report.scheme, 'bioes');
      assert.deepEqual(examples[0].spans, [
        { start: 0, end: 3, label: 'ORG' },
        { start: 4, end: 5, label: 'PER' },
      ]);
      assert.equal(report.repairedTags, 0);
    }
  });

  test('BMES (Resume style)', () => {
    const { examples, report } = read('吴 B-NAME\n重 M-NAME\n阳 E-NAME\n， O\n汉 S-RACE\n族 O\n');
    assert.equal(report.scheme, 'bmes');
    assert.deepEqual(surfaces(examples[0]), [
      ['吴重阳', 'NAME'],
      ['汉', 'RACE'],
    ]);
    assert.deepEqual(report.perType, { NAME: 1, RACE: 1 });
  });

  test('Weibo: tab separated, position numbers stripped (also 10 and more)', () => {
    const rows = ['科0\tO', '技1\tO', 'p10\tO', '110\tO', '\uFFFD\uFFFD0\tO', '张0\tB-PER.NAM', '三1\tI-PER.NAM'];
    const content = [...rows, '很0\tO', '好1\tO', '的0\tO', '天0\tO', '气1\tO', ''].join('\n');
    const { examples, report } = read(content, { stripTokenDigit: true });
    assert.equal(examples[0].text, '科技p1\uFFFD\uFFFD张三很好的天气');
    assert.equal(report.join, 'none');
    assert.deepEqual(examples[0].spans, [{ start: 6, end: 8, label: 'PER.NAM' }]);

    const unstripped = read(content);
    assert.ok(unstripped.examples[0].text.startsWith('科0'));
    assert.ok(unstripped.report.warnings.some((w) => w.includes('stripTokenDigit')), unstripped.report.warnings.join('\n'));

    const noDigit = fixture('科0\tO\n技\tO\n');
    throwsAt(() => readCorpus(noDigit, { stripTokenDigit: true }), noDigit, 2, 'no trailing digit');
  });

  test('English words joined with spaces; tab-only lines break sentences (WNUT style)', () => {
    const content = '@paulwalk\tO\nEmpire\tB-location\nState\tI-location\nBuilding\tI-location\n\t\nIt\tO\n\'s\tO\n \t \n';
    const { file, examples, report } = read(content);
    assert.equal(report.join, 'space');
    assert.deepEqual(examples, [
      { text: '@paulwalk Empire State Building', spans: [{ start: 10, end: 31, label: 'location' }], source: { file, line: 1 } },
      { text: "It 's", spans: [], source: { file, line: 6 } },
    ]);
    const glued = read(content, { join: 'none' });
    assert.deepEqual(surfaces(glued.examples[0]), [['EmpireStateBuilding', 'location']]);
    assert.equal(glued.examples[0].text, '@paulwalkEmpireStateBuilding');
  });

  test('repair vs reject: I- without a start, type change mid-entity (BIO)', () => {
    const content = '在 O\n李 I-PER\n四 I-PER\n去 O\n北 B-LOC\n京 I-ORG\n';
    const repaired = read(content, { scheme: 'bio' });
    assert.deepEqual(surfaces(repaired.examples[0]), [
      ['李四', 'PER'],
      ['北', 'LOC'],
      ['京', 'ORG'],
    ]);
    assert.equal(repaired.report.repairedTags, 2);
    assert.ok(repaired.report.warnings.some((w) => w.startsWith('2× invalid tag sequence repaired') && w.includes(`${repaired.file}:2`)), repaired.report.warnings.join('\n'));
    throwsAt(() => readCorpus(repaired.file, { scheme: 'bio', invalidTags: 'reject' }), repaired.file, 2, '"I-PER" after "O": no open PER entity to continue');
  });

  test('repair vs reject: BMES entities left open or ended without a start', () => {
    const content = '张 B-NAME\n三 O\n李 E-NAME\n\n王 B-NAME\n五 M-NAME\n';
    const repaired = read(content);
    assert.deepEqual(repaired.examples.map(surfaces), [
      [
        ['张', 'NAME'],
        ['李', 'NAME'],
      ],
      [['王五', 'NAME']],
    ]);
    assert.equal(repaired.report.repairedTags, 3);
    throwsAt(() => readCorpus(repaired.file, { invalidTags: 'reject' }), repaired.file, 2, 'NAME entity is not closed: expected M-NAME or E-NAME, found O');
    const open = fixture('王 B-NAME\n五 M-NAME\n');
    throwsAt(() => readCorpus(open, { invalidTags: 'reject' }), open, 2, 'found the end of the sentence');
  });
});

describe('encoding', () => {
  test('BOM and CRLF in conll and JSONL', () => {
    const conll = read('\uFEFF张 B-PER\r\n三 I-PER\r\n\r\n好 O\r\n');
    assert.deepEqual(
      conll.examples.map((e) => [e.text, surfaces(e)]),
      [
        ['张三', [['张三', 'PER']]],
        ['好', []],
      ],
    );
    const jsonl = read('\uFEFF{"text": "ab", "entities": [{"start": 0, "end": 1, "label": "X"}]}\r\n{"text": "c", "entities": []}\r\n');
    assert.equal(jsonl.report.format, 'jsonl');
    assert.deepEqual(
      jsonl.examples.map((e) => e.text),
      ['ab', 'c'],
    );
    assert.equal(parseCorpus('\uFEFF{"text": "x", "entities": []}', 'mem').examples[0].text, 'x');
    const crlfError = fixture('a O\r\nb\r\n');
    throwsAt(() => readCorpus(crlfError), crlfError, 2, 'one column "b":');
  });

  test('invalid UTF-8 names the file and line', () => {
    const file = fixture(Buffer.concat([Buffer.from('a O\nb O\n'), Buffer.from([0x63, 0xff, 0x20, 0x4f, 0x0a])]));
    throwsAt(() => readCorpus(file), file, 3, 'invalid UTF-8');
  });
});

describe('malformed input names file:line and the problem', () => {
  const okJsonl = '{"text": "ab", "entities": []}';
  const jsonlCases: [string, string][] = [
    ['{"text": "ab", ', 'malformed JSON: '],
    ['[1, 2]', 'expected a JSON object, found a list'],
    ['{"entities": []}', 'missing "text"'],
    ['{"text": 5, "entities": []}', '"text" must be a string, found number 5'],
    ['{"text": "ab", "entities": {}}', '"entities" must be a list, found an object'],
    ['{"text": "ab", "entities": [3]}', 'entities[0] must be an object'],
    ['{"text": "ab", "entities": [{"start": 0, "end": 3, "label": "X"}]}', 'entities[0] = [0, 3) is out of range for a text of length 2'],
    ['{"text": "ab", "entities": [{"start": -1, "end": 1, "label": "X"}]}', 'out of range'],
    ['{"text": "ab", "entities": [{"start": 1, "end": 1, "label": "X"}]}', 'entities[0]: start 1 >= end 1'],
    ['{"text": "ab", "entities": [{"start": 0.5, "end": 1, "label": "X"}]}', 'entities[0].start must be an integer, found 0.5'],
    ['{"text": "ab", "entities": [{"start": 0, "end": "1", "label": "X"}]}', 'entities[0].end must be an integer, found "1"'],
    ['{"text": "ab", "entities": [{"start": 0, "label": "X"}]}', 'entities[0].end must be an integer, found nothing'],
    ['{"text": "ab", "entities": [{"start": 0, "end": 1, "label": 7}]}', 'entities[0].label must be a non-empty string, found 7'],
    ['{"text": "ab", "entities": [{"start": 0, "end": 1, "label": "X", "text": "b"}]}', 'entities[0].text is "b" but text[0:1] is "a"'],
    ['{"text": "ab", "entities": [{"start": 0, "end": 1, "label": "X", "score": "high"}]}', 'entities[0].score must be a finite number'],
    ['{"text": "ab", "label": {}}', 'has "label" but no "entities"'],
  ];
  for (const [bad, problem] of jsonlCases) {
    test(`jsonl: ${problem}`, () => {
      const file = fixture(`${okJsonl}\n${bad}\n`);
      throwsAt(() => readCorpus(file, { format: 'jsonl' }), file, 2, problem);
    });
  }

  const okCluener = '{"text": "张三说", "label": {"name": {"张三": [[0, 1]]}}}';
  const cluenerCases: [string, string][] = [
    ['{"text": "张三说", "label": {"name": {"李四": [[0, 1]]}}}', 'label["name"]["李四"][0] = [0, 1] covers "张三", not the surface "李四"'],
    ['{"text": "张三说", "label": {"name": {"张三": [[1, 0]]}}}', 'start > end'],
    ['{"text": "张三说", "label": {"name": {"张三": [[2, 3]]}}}', 'out of range for a text of 3 characters'],
    ['{"text": "张三说", "label": {"name": {"张三": [0, 1]}}}', 'must be a [start, end] pair, found 0'],
    ['{"text": "张三说", "label": {"name": {"张三": [[0, 1.5]]}}}', 'offsets must be integers'],
    ['{"text": "张三说", "label": {"name": {"张三": "0,1"}}}', 'must be a list of [start, end] pairs'],
    ['{"text": "张三说", "label": {"name": [[0, 1]]}}', 'label["name"] must be an object'],
    ['{"text": "张三说", "label": [["name", 0, 1]]}', '"label" must be an object'],
    ['{"text": ["张三说"], "label": {}}', '"text" must be a string, found a list'],
    ['{"text": "张三说", "entities": []}', 'has "entities" but no "label"'],
  ];
  for (const [bad, problem] of cluenerCases) {
    test(`cluener: ${problem}`, () => {
      const file = fixture(`${okCluener}\n${bad}\n`);
      throwsAt(() => readCorpus(file, { format: 'cluener' }), file, 2, problem);
    });
  }

  const conllCases: [string, ReadOptions, string][] = [
    ['a O\nb\n', {}, 'one column "b"'],
    ['a\tO\nb O\n', {}, 'separated by a tab'],
    ['a O\n  O\n', {}, 'empty token'],
    ['a B-PER\nb X-PER\n', {}, 'unknown tag prefix "X-" in "X-PER"'],
    ['a B-PER\nb I-PER\n', { scheme: 'bmes' }, 'unknown tag prefix "I-" in "I-PER" (scheme bmes accepts B, M, E, S, O)'],
    ['a O\nb PER\n', {}, 'malformed tag "PER"'],
    ['a O\nb B-\n', {}, 'malformed tag "B-"'],
  ];
  for (const [content, opts, problem] of conllCases) {
    test(`conll: ${problem}`, () => {
      const file = fixture(content);
      throwsAt(() => readCorpus(file, opts), file, 2, problem);
    });
  }
});

describe('committed samples in data/', () => {
  const cases: [string, ReadOptions, { format: string; scheme?: string; join?: string; examples: number; entities: number; start: string }][] = [
    ['sample.train.jsonl', {}, { format: 'jsonl', examples: 300, entities: 679, start: '浙商银行企业信贷部' }],
    ['sample.dev.jsonl', {}, { format: 'jsonl', examples: 100, entities: 231, start: '彭小军认为' }],
    ['weibo.sample.conll', { stripTokenDigit: true }, { format: 'conll', scheme: 'bio', join: 'none', examples: 30, entities: 42, start: '科技全方位资讯智能' }],
    ['resume.sample.bmes', {}, { format: 'conll', scheme: 'bmes', join: 'none', examples: 30, entities: 128, start: '高勇：男' }],
    ['wnut17.sample.conll', {}, { format: 'conll', scheme: 'bio', join: 'space', examples: 30, entities: 9, start: "@paulwalk It 's the view" }],
  ];
  for (const [name, opts, expected] of cases) {
    test(name, () => {
      const { examples, report } = readCorpus(sample(name), opts);
      assert.equal(report.format, expected.format);
      assert.equal(report.scheme, expected.scheme);
      assert.equal(report.join, expected.join);
      assert.equal(report.examples, expected.examples);
      assert.equal(report.entities, expected.entities);
      assert.equal(report.repairedTags, 0);
      assert.deepEqual(report.warnings, []);
      assert.ok(examples[0].text.startsWith(expected.start), examples[0].text);
    });
  }

  test('the JSONL samples carry each entity\'s surface, and it matches the span', () => {
    const lines = readFileSync(sample('sample.dev.jsonl'), 'utf8').trimEnd().split('\n');
    const first = JSON.parse(lines[0]) as { entities: { text: string }[] };
    assert.deepEqual(
      first.entities.map((e) => e.text),
      ['彭小军', '台湾'],
    );
  });
});
