import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatScoresTable, macroF1, scoreEntities, type PRF } from '../src/eval/metrics.js';
import { crossValidateDecoding } from '../src/eval/evaluate.js';
import { GpError } from '../src/errors.js';
import type { Span } from '../src/types.js';

const s = (start: number, end: number, label: string): Span => ({ start, end, label });

function assertPRF(actual: PRF, expected: PRF): void {
  const near = (a: number, b: number) => Math.abs(a - b) < 1e-12;
  assert.deepEqual([actual.tp, actual.fp, actual.fn, actual.support], [expected.tp, expected.fp, expected.fn, expected.support]);
  assert.ok(near(actual.precision, expected.precision), `precision ${actual.precision} ≠ ${expected.precision}`);
  assert.ok(near(actual.recall, expected.recall), `recall ${actual.recall} ≠ ${expected.recall}`);
  assert.ok(near(actual.f1, expected.f1), `f1 ${actual.f1} ≠ ${expected.f1}`);
}

/*
 * Sample 0: gold PER[0,3) LOC[10,14) LOC[20,25)   pred PER[0,3) LOC[10,14) LOC[20,24) ORG[30,33)
 * Sample 1: gold PER[5,8) MISC[0,2)               pred PER[5,8) PER[9,12)
 *
 * PER : tp = 2 (both PER[0,3), PER[5,8)), fp = 1 (PER[9,12)), fn = 0
 *       P = 2/3, R = 2/2 = 1, F1 = 2·2 / (2·2 + 1 + 0) = 4/5
 * LOC : tp = 1 (LOC[10,14)), fp = 1 (LOC[20,24): end differs), fn = 1 (LOC[20,25))
 *       P = 1/2, R = 1/2, F1 = 2 / (2 + 1 + 1) = 1/2
 * ORG : only predicted: tp = 0, fp = 1, fn = 0 → P = 0/1 = 0, R = 0/0 → 0, F1 = 0, support 0
 * MISC: only in gold:   tp = 0, fp = 0, fn = 1 → P = 0/0 → 0, R = 0/1 = 0, F1 = 0, support 1
 * micro: tp = 3, fp = 3, fn = 2 → P = 3/6 = 1/2, R = 3/5, F1 = 2PR/(P+R) = (3/5)/(11/10) = 6/11 = 2·3/(6+3+2)
 * macro F1 = (4/5 + 1/2 + 0 + 0) / 4 = 13/40
 */
const gold = [
  [s(0, 3, 'PER'), s(10, 14, 'LOC'), s(20, 25, 'LOC')],
  [s(5, 8, 'PER'), s(0, 2, 'MISC')],
];
const pred = [
  [s(0, 3, 'PER'), s(10, 14, 'LOC'), s(20, 24, 'LOC'), s(30, 33, 'ORG')],
  [s(5, 8, 'PER'), s(9, 12, 'PER')],
];

describe('scoreEntities', () => {
  const scores = scoreEntities(gold, pred);

  it('computes micro P/R/F1 from exact (start, end, label) matches', () => {
    assertPRF(scores.micro, { precision: 1 / 2, recall: 3 / 5, f1: 6 / 11, tp: 3, fp: 3, fn: 2, support: 5 });
  });

  it('scores each type, including one only in predictions and one only in gold', () => {
    assert.deepEqual(Object.keys(scores.perType), ['LOC', 'MISC', 'ORG', 'PER']);
    assertPRF(scores.perType.PER, { precision: 2 / 3, recall: 1, f1: 4 / 5, tp: 2, fp: 1, fn: 0, support: 2 });
    assertPRF(scores.perType.LOC, { precision: 1 / 2, recall: 1 / 2, f1: 1 / 2, tp: 1, fp: 1, fn: 1, support: 2 });
    assertPRF(scores.perType.ORG, { precision: 0, recall: 0, f1: 0, tp: 0, fp: 1, fn: 0, support: 0 });
    assertPRF(scores.perType.MISC, { precision: 0, recall: 0, f1: 0, tp: 0, fp: 0, fn: 1, support: 1 });
  });

  it('macroF1 is the unweighted mean over all types', () => {
    assert.ok(Math.abs(macroF1(scores) - 13 / 40) < 1e-12);
  });

  it('a label match is required: the same range with another label is one fp and one fn', () => {
    const r = scoreEntities([[s(0, 3, 'PER')]], [[s(0, 3, 'ORG')]]);
    assert.deepEqual([r.micro.tp, r.micro.fp, r.micro.fn], [0, 1, 1]);
  });

  it('counts a span listed twice in one sample once, on either side', () => {
    // gold PER[0,3) ×2, pred PER[0,3) ×3 and LOC[4,6) ×2 → tp 1, fp 1, fn 0: P = 1/2, R = 1, F1 = 2/(2+1) = 2/3
    const r = scoreEntities(
      [[s(0, 3, 'PER'), s(0, 3, 'PER')]],
      [[s(0, 3, 'PER'), s(0, 3, 'PER'), s(0, 3, 'PER'), s(4, 6, 'LOC'), s(4, 6, 'LOC')]],
    );
    assertPRF(r.micro, { precision: 1 / 2, recall: 1, f1: 2 / 3, tp: 1, fp: 1, fn: 0, support: 1 });
  });

  it('but the same span in two samples counts twice', () => {
    const r = scoreEntities([[s(0, 3, 'PER')], [s(0, 3, 'PER')]], [[s(0, 3, 'PER')], []]);
    assert.deepEqual([r.micro.tp, r.micro.fp, r.micro.fn], [1, 0, 1]);
  });

  it('empty cases: every ratio with a zero denominator is 0', () => {
    const none = scoreEntities([[], []], [[], []]);
    assertPRF(none.micro, { precision: 0, recall: 0, f1: 0, tp: 0, fp: 0, fn: 0, support: 0 });
    assert.deepEqual(none.perType, {});
    assert.equal(macroF1(none), 0);
    assertPRF(scoreEntities([[]], [[s(0, 1, 'X')]]).micro, { precision: 0, recall: 0, f1: 0, tp: 0, fp: 1, fn: 0, support: 0 });
    assertPRF(scoreEntities([[s(0, 1, 'X')]], [[]]).micro, { precision: 0, recall: 0, f1: 0, tp: 0, fp: 0, fn: 1, support: 1 });
  });

  it('labels that look like Object.prototype members are ordinary types', () => {
    const r = scoreEntities([[s(0, 1, 'constructor')]], [[s(0, 1, 'constructor'), s(2, 3, '__proto__')]]);
    assert.deepEqual(Object.keys(r.perType), ['__proto__', 'constructor']);
    const byType = new Map(Object.entries(r.perType));
    assert.equal(byType.get('constructor')?.tp, 1);
    assert.equal(byType.get('__proto__')?.fp, 1);
  });

  it('rejects gold and predictions of different lengths', () => {
    assert.throws(() => scoreEntities([[]], []), GpError);
  });
});

describe('formatScoresTable', () => {
  it('aligns one row per type, then micro after a rule', () => {
    const table = formatScoresTable(scoreEntities(gold, pred));
    assert.equal(
      table,
      [
        'type   precision  recall      f1  support',
        '-----------------------------------------',
        'LOC       0.5000  0.5000  0.5000        2',
        'MISC      0.0000  0.0000  0.0000        1',
        'ORG       0.0000  0.0000  0.0000        0',
        'PER       0.6667  1.0000  0.8000        2',
        '-----------------------------------------',
        'micro     0.5000  0.6000  0.5455        5',
      ].join('\n'),
    );
  });

  it('widens the type column for long labels', () => {
    const table = formatScoresTable(scoreEntities([[s(0, 1, 'ORGANISATION')]], [[s(0, 1, 'ORGANISATION')]]));
    const lines = table.split('\n');
    assert.equal(lines[2], 'ORGANISATION     1.0000  1.0000  1.0000        1');
    assert.ok(lines.every((line) => line.length === lines[0].length));
  });
});

describe('crossValidateDecoding', () => {
  const e = (start: number, label = 'X') => ({ start, end: start + 1, label, text: 'x', score: 1 });
  it('chooses each fold\'s decoding on the other folds and scores the pooled held-out predictions', () => {
    // Four examples of one gold entity each. Decoding A gets examples 0–2 right, B gets only example 3 right
    // (and adds a false positive to example 0).
    const gold: Span[][] = [0, 1, 2, 3].map(() => [{ start: 0, end: 1, label: 'X' }]);
    const a = [[e(0)], [e(0)], [e(0)], []];
    const b = [[e(0), e(5)], [], [], [e(0)]];
    const decodings = [{ threshold: 0 }, { threshold: -1, flat: true }];
    // Folds {0, 1} and {2, 3}: on {2, 3} A and B tie (F1 0.5 each), and the first of equals, A, is chosen for
    // fold 0; on {0, 1} A wins, so fold 1 gets A too: pooled, A on everything, tp 3 fp 0 fn 1.
    const even = crossValidateDecoding(gold, [a, b], decodings, [0, 0, 1, 1]);
    assert.deepEqual(even.chosen, [{ threshold: 0, flat: false }, { threshold: 0, flat: false }]);
    assert.deepEqual([even.scores.micro.tp, even.scores.micro.fp, even.scores.micro.fn], [3, 0, 1]);
    // Folds {0}, {1, 2}, {3}. Fold 0: on {1, 2, 3} A scores F1 0.8, B 0.5, so A (right on 0). Fold 1: on {0, 3}
    // A scores 0.67 and B 0.8 (both of its hits are there), so B, which misses 1 and 2. Fold 2: on {0, 1, 2} A
    // scores 1, so A, which misses 3. Pooled: tp 1, fn 3.
    const three = crossValidateDecoding(gold, [a, b], decodings, [0, 1, 1, 2]);
    assert.deepEqual(three.chosen.map((d) => d.threshold), [0, -1, 0]);
    assert.deepEqual([three.scores.micro.tp, three.scores.micro.fp, three.scores.micro.fn], [1, 0, 3]);
    // When B is right where A fails and the folds see it, the held-out choice can differ per fold.
    const b2 = [[], [], [e(0)], [e(0)]];
    const a2 = [[e(0)], [e(0)], [], []];
    const split = crossValidateDecoding(gold, [a2, b2], decodings, [0, 0, 1, 1]);
    assert.deepEqual(split.chosen, [{ threshold: -1, flat: true }, { threshold: 0, flat: false }]);
    assert.deepEqual([split.scores.micro.tp, split.scores.micro.fn], [0, 4], 'each fold gets the decoding that is wrong on it');
  });
});
