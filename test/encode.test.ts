import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dropTokens, encodeExamples, windowRanges } from '../src/data/encode.js';
import { Rng } from '../src/rng.js';
import { buildTokenizer } from '../src/data/tokenizer.js';

test('windows cover every token, overlap as asked, and never advance by less than half a window', () => {
  assert.deepEqual(windowRanges(5, 8, 2), [[0, 5]]);
  assert.deepEqual(windowRanges(20, 8, 2), [[0, 8], [6, 14], [12, 20]]);
  // An overlap as large as the window would mean a stride of 1: it is capped at half a window.
  assert.deepEqual(windowRanges(20, 8, 30), [[0, 8], [4, 12], [8, 16], [12, 20]]);
});

test('entities map to token cells in every window that holds them whole; the rest are counted', () => {
  const text = '北京欢迎你上海也欢迎你';
  const tokenizer = buildTokenizer([text], { mode: 'char' });
  const example = { text, spans: [{ start: 0, end: 2, label: 'LOC' }, { start: 5, end: 7, label: 'LOC' }, { start: 3, end: 9, label: 'X' }] };
  const { windows, stats } = encodeExamples([example], tokenizer, ['LOC', 'X'], { maxLength: 8, overlap: 2 });
  // 11 characters, 6 per window ([CLS] and [SEP] take two of the 8 positions), stride 4: windows at 0, 4, 8.
  assert.equal(windows.length, 3);
  assert.deepEqual(windows[0].targets, [[0, 1, 2]]); // 北京 at positions 1..2 behind [CLS]
  assert.deepEqual(windows[1].targets, [[0, 2, 3]]); // 上海 (chars 5..6) in the window starting at char 4
  assert.equal(stats.cut, 1, 'the 6-character X entity fits no 6-token window whole');
  assert.equal(windows[0].ids[0], tokenizer.clsId);
});

test('token dropout replaces content tokens by [UNK] at its rate, never [CLS] or [SEP], and leaves the windows it got alone', () => {
  const text = '北京欢迎你，上海也欢迎你。'.repeat(20);
  const tokenizer = buildTokenizer([text], { mode: 'char', minFreq: 1, maxVocab: 100, lowercase: false });
  const { windows } = encodeExamples([{ text, spans: [{ start: 0, end: 2, label: 'LOC' }] }], tokenizer, ['LOC'], { maxLength: 64, overlap: 8 });
  const before = JSON.stringify(windows);
  assert.equal(dropTokens(windows, 0, tokenizer.unkId, new Rng(1)), windows);
  const all = dropTokens(windows, 1, tokenizer.unkId, new Rng(1));
  for (const w of all) assert.deepEqual(w.ids, [tokenizer.clsId, ...new Array(w.ids.length - 2).fill(tokenizer.unkId), tokenizer.sepId]);
  const some = dropTokens(windows, 0.25, tokenizer.unkId, new Rng(7));
  const content = some.flatMap((w) => w.ids.slice(1, -1));
  const dropped = content.filter((id) => id === tokenizer.unkId).length / content.length;
  assert.ok(Math.abs(dropped - 0.25) < 0.05, `dropped ${dropped} of ${content.length}`);
  some.forEach((w, i) => {
    assert.deepEqual(w.targets, windows[i].targets);
    assert.deepEqual(w.offsets, windows[i].offsets);
  });
  assert.equal(JSON.stringify(windows), before);
});
