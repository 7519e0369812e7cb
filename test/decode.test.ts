import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeSpans,
  mergeWindowEntitiesByCentre,
  tokenSpansToEntities,
  type TokenSpan,
} from '../src/eval/decode.js';
import { GpError } from '../src/errors.js';
import type { Entity } from '../src/types.js';

/** An [H, L, L] logits array filled with `fill`, with the given cells set. */
function logitsWith(numTypes: number, length: number, fill: number, cells: Array<[number, number, number, number]>) {
  const logits = new Float32Array(numTypes * length * length).fill(fill);
  for (const [h, i, j, v] of cells) logits[h * length * length + i * length + j] = v;
  return logits;
}

const spanKeys = (spans: TokenSpan[]) => spans.map((s) => [s.type, s.first, s.last]);

describe('decodeSpans', () => {
  it('returns every upper-triangle cell above the threshold, nested and overlapping, sorted by (first, last, type)', () => {
    const logits = logitsWith(2, 4, -5, [
      [1, 0, 2, 3],
      [0, 0, 2, 1],
      [0, 1, 1, 2],
      [0, 0, 0, 0.5],
    ]);
    const spans = decodeSpans(logits, 2, 4);
    assert.deepEqual(spanKeys(spans), [
      [0, 0, 0],
      [0, 0, 2],
      [1, 0, 2],
      [0, 1, 1],
    ]);
    assert.equal(spans[2].score, 3);
  });

  it('never returns masked cells, −1e12 or −Infinity, even with a threshold below them', () => {
    // Length 4, 3 real tokens: the last row and column are padding, the lower triangle is masked.
    const logits = logitsWith(1, 4, -1e12, [
      [0, 0, 1, 2],
      [0, 1, 2, -Infinity],
      [0, 2, 2, -3],
    ]);
    for (let i = 0; i < 4; i++) logits[i * 4 + 3] = -Infinity;
    const loose = decodeSpans(logits, 1, 4, { threshold: -1e13, validLength: 3 });
    assert.deepEqual(spanKeys(loose), [
      [0, 0, 1],
      [0, 2, 2],
    ]);
    assert.ok(loose.every((s) => Number.isFinite(s.score) && s.score > -1e11));
  });

  it('ignores cells beyond validLength and in the lower triangle even when their logits are high', () => {
    const logits = logitsWith(1, 3, -1, [
      [0, 1, 0, 9],
      [0, 0, 2, 9],
      [0, 0, 1, 4],
    ]);
    assert.deepEqual(spanKeys(decodeSpans(logits, 1, 3, { validLength: 2 })), [[0, 0, 1]]);
  });

  it('keeps only logits strictly above the threshold', () => {
    const logits = logitsWith(1, 3, -10, [
      [0, 0, 0, 0],
      [0, 1, 1, 0.25],
      [0, 2, 2, 1],
    ]);
    assert.deepEqual(spanKeys(decodeSpans(logits, 1, 3)), [
      [0, 1, 1],
      [0, 2, 2],
    ]);
    assert.deepEqual(spanKeys(decodeSpans(logits, 1, 3, { threshold: 0.5 })), [[0, 2, 2]]);
    assert.deepEqual(spanKeys(decodeSpans(logits, 1, 3, { threshold: -0.5 })), [
      [0, 0, 0],
      [0, 1, 1],
      [0, 2, 2],
    ]);
  });

  it('flat: keeps the higher-scoring of two overlapping spans, across types, and every span that overlaps nothing kept', () => {
    const logits = logitsWith(2, 6, -1, [
      [0, 0, 2, 2], // overlaps [1, 3] of type 1, which scores higher
      [1, 1, 3, 5],
      [0, 4, 4, 1], // overlaps nothing kept
      [0, 4, 5, 0.5], // overlaps [4, 4], which scores higher
      [1, 1, 1, 4], // nested in [1, 3]
    ]);
    const flat = decodeSpans(logits, 2, 6, { flat: true });
    assert.deepEqual(spanKeys(flat), [
      [1, 1, 3],
      [0, 4, 4],
    ]);
    assert.equal(decodeSpans(logits, 2, 6).length, 5);
  });

  it('flat: a tie in score goes to the span that sorts first by position', () => {
    const logits = logitsWith(2, 3, -1, [
      [1, 0, 1, 2],
      [0, 1, 2, 2],
    ]);
    assert.deepEqual(spanKeys(decodeSpans(logits, 2, 3, { flat: true })), [[1, 0, 1]]);
  });

  it('flat on dense logits: kept spans are disjoint, and every dropped span overlaps a kept one scoring at least as high', () => {
    const L = 64;
    let seed = 7;
    const logits = new Float32Array(3 * L * L).map(() => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648 - 0.5;
    });
    const all = decodeSpans(logits, 3, L, { validLength: 60 });
    const flat = decodeSpans(logits, 3, L, { validLength: 60, flat: true });
    const overlap = (a: TokenSpan, b: TokenSpan) => a.first <= b.last && b.first <= a.last;
    assert.ok(all.length > 1000 && flat.length > 1);
    flat.forEach((a, k) => flat.slice(k + 1).forEach((b) => assert.ok(!overlap(a, b))));
    for (const span of all) {
      if (flat.includes(span)) continue;
      assert.ok(flat.some((kept) => overlap(kept, span) && kept.score >= span.score));
    }
  });

  it('rejects a logits array of the wrong size, a bad validLength and a NaN threshold', () => {
    assert.throws(() => decodeSpans(new Float32Array(10), 1, 3), RangeError);
    assert.throws(() => decodeSpans(new Float32Array(9), 1, 3, { validLength: 4 }), RangeError);
    assert.throws(() => decodeSpans(new Float32Array(9), 1, 3, { threshold: Number.NaN }), GpError);
  });

  it('decodes L = 512 with 10 types within the valid length', () => {
    const L = 512;
    const H = 10;
    const logits = new Float32Array(H * L * L).fill(-1e12);
    let seed = 1;
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < L; i++) {
        for (let j = i; j < L; j++) {
          seed = (seed * 1103515245 + 12345) % 2147483648;
          logits[h * L * L + i * L + j] = seed / 2147483648 - 0.999; // about 0.1% above 0
        }
      }
    }
    const spans = decodeSpans(logits, H, L, { validLength: 500 });
    const flat = decodeSpans(logits, H, L, { validLength: 500, flat: true });
    assert.ok(spans.length > 0 && flat.length > 0 && flat.length <= spans.length);
    assert.ok(spans.every((s) => s.last < 500 && s.first <= s.last));
  });
});

describe('tokenSpansToEntities', () => {
  // "Ann lives in New York": tokens Ann | lives | in | New | York, behind a [CLS] at model position 0.
  const text = 'Ann lives in New York';
  const offsets: Array<[number, number]> = [
    [0, 3],
    [4, 9],
    [10, 12],
    [13, 16],
    [17, 21],
  ];
  const labels = ['PER', 'LOC'];

  it('maps model positions through the [CLS] offset to UTF-16 character ranges', () => {
    const spans: TokenSpan[] = [
      { type: 1, first: 4, last: 5, score: 2.5 },
      { type: 0, first: 1, last: 1, score: 1.5 },
    ];
    assert.deepEqual(tokenSpansToEntities(spans, offsets, text, labels, 1), [
      { start: 0, end: 3, label: 'PER', text: 'Ann', score: 1.5 },
      { start: 13, end: 21, label: 'LOC', text: 'New York', score: 2.5 },
    ]);
  });

  it('without a tokenBase, position 0 is the first offset', () => {
    const spans: TokenSpan[] = [{ type: 0, first: 0, last: 0, score: 1 }];
    assert.equal(tokenSpansToEntities(spans, offsets, text, labels)[0].text, 'Ann');
  });

  it('drops spans touching [CLS], [SEP] or zero-width tokens', () => {
    const spans: TokenSpan[] = [
      { type: 0, first: 0, last: 1, score: 1 }, // includes [CLS]
      { type: 1, first: 5, last: 6, score: 1 }, // includes [SEP]
      { type: 1, first: 1, last: 1, score: 1 },
    ];
    assert.deepEqual(
      tokenSpansToEntities(spans, offsets, text, labels, 1).map((e) => e.text),
      ['Ann'],
    );
    const empty: TokenSpan[] = [{ type: 0, first: 0, last: 0, score: 1 }];
    assert.deepEqual(tokenSpansToEntities(empty, [[5, 5]], 'hello world', labels), []);
  });

  it('keeps UTF-16 offsets across astral characters', () => {
    const emoji = '😀 Bob';
    const spans: TokenSpan[] = [{ type: 0, first: 1, last: 1, score: 1 }];
    const [entity] = tokenSpansToEntities(spans, [[0, 2], [3, 6]], emoji, labels);
    assert.deepEqual([entity.start, entity.end, entity.text], [3, 6, 'Bob']);
  });

  it('merges token spans that land on the same characters, keeping the higher score', () => {
    // Two byte-level tokens of one character share its offsets.
    const spans: TokenSpan[] = [
      { type: 0, first: 0, last: 0, score: 1 },
      { type: 0, first: 1, last: 1, score: 3 },
    ];
    const entities = tokenSpansToEntities(spans, [[0, 2], [0, 2]], '😀', labels);
    assert.deepEqual(entities, [{ start: 0, end: 2, label: 'PER', text: '😀', score: 3 }]);
  });

  it('rejects a type with no label', () => {
    assert.throws(
      () => tokenSpansToEntities([{ type: 2, first: 0, last: 0, score: 1 }], offsets, text, labels),
      RangeError,
    );
  });
});

const ent = (start: number, end: number, label: string, score: number, text = ''): Entity => ({
  start,
  end,
  label,
  text,
  score,
});

describe('mergeWindowEntitiesByCentre', () => {
  // Text of 30 characters in windows [0, 16) and [10, 30); the cut between them is at 16 for the first, 10 for the second.
  it('drops a fragment cut by a window edge when a more central window saw that range', () => {
    const merged = mergeWindowEntitiesByCentre([
      { start: 0, end: 16, entities: [ent(2, 5, 'PER', 1), ent(12, 16, 'LOC', 3)] },
      { start: 10, end: 30, entities: [ent(12, 20, 'LOC', 2), ent(25, 28, 'PER', 1)] },
    ]);
    // [12, 16) has margin 0 in the first window (its end is the cut) and 2 in the second, which did not predict it.
    assert.deepEqual(merged, [ent(2, 5, 'PER', 1), ent(12, 20, 'LOC', 2), ent(25, 28, 'PER', 1)]);
  });

  it('keeps the prediction of the window with the larger margin, the earlier one on a tie', () => {
    const merged = mergeWindowEntitiesByCentre([
      { start: 0, end: 16, entities: [ent(11, 13, 'PER', 5), ent(13, 14, 'LOC', 1)] },
      { start: 10, end: 30, entities: [ent(11, 13, 'PER', 4), ent(13, 14, 'LOC', 9)] },
    ]);
    // [11, 13): margin 16-13 = 3 in the first, 11-10 = 1 in the second → first (score 5).
    // [13, 14): margin 16-14 = 2 in the first, 13-10 = 3 in the second → second (score 9).
    assert.deepEqual(merged, [ent(11, 13, 'PER', 5), ent(13, 14, 'LOC', 9)]);
    const tie = mergeWindowEntitiesByCentre([
      { start: 0, end: 16, entities: [ent(12, 14, 'PER', 1)] },
      { start: 10, end: 30, entities: [ent(12, 14, 'PER', 7)] },
    ]);
    // margins 16-14 = 2 and 12-10 = 2: the earlier window wins even with the lower score.
    assert.deepEqual(tie, [ent(12, 14, 'PER', 1)]);
  });

  it('treats the text ends as no cut, and rejects an entity outside its window', () => {
    const whole = mergeWindowEntitiesByCentre([{ start: 0, end: 8, entities: [ent(0, 8, 'PER', 1)] }]);
    assert.deepEqual(whole, [ent(0, 8, 'PER', 1)]);
    assert.throws(
      () => mergeWindowEntitiesByCentre([{ start: 0, end: 8, entities: [ent(6, 9, 'PER', 1)] }]),
      RangeError,
    );
  });
});
