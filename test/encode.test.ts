import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeExamples, windowRanges } from '../src/data/encode.js';
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
