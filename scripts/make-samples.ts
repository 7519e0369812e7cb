/**
 * Rebuilds the small samples committed in data/ from the full corpora (see data/README.md):
 *
 *   node --import tsx scripts/make-samples.ts [SHARED_DATA_DIR]     (default /work/shared/data)
 *
 * CLUENER records are converted to canonical JSONL (end-exclusive spans); the conll samples are byte-exact
 * prefixes of their files, cut after the Nth sentence break, so they keep every quirk of the original.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readCorpus, writeJsonl } from '../src/data/corpus.js';

const shared = process.argv[2] ?? '/work/shared/data';
const out = fileURLToPath(new URL('../data/', import.meta.url));

const jsonSamples = [
  { from: 'cluener/train.json', to: 'sample.train.jsonl', records: 300 },
  { from: 'cluener/dev.json', to: 'sample.dev.jsonl', records: 100 },
];
const conllSamples = [
  { from: 'weibo/weiboNER_2nd_conll.train', to: 'weibo.sample.conll', sentences: 30 },
  { from: 'resume/train.char.bmes', to: 'resume.sample.bmes', sentences: 30 },
  { from: 'wnut17/wnut17train.conll', to: 'wnut17.sample.conll', sentences: 30 },
];

for (const { from, to, records } of jsonSamples) {
  const { examples } = readCorpus(join(shared, from), { format: 'cluener' });
  writeJsonl(join(out, to), examples.slice(0, records));
  console.log(`${to}: first ${records} records of ${from}`);
}

for (const { from, to, sentences } of conllSamples) {
  const bytes = readFileSync(join(shared, from));
  const { length, lines } = prefixOfSentences(bytes, sentences);
  writeFileSync(join(out, to), bytes.subarray(0, length));
  console.log(`${to}: lines 1-${lines} (${sentences} sentences) of ${from}`);
}

/** Byte length and line count of the prefix that ends with the break line after sentence `count`. */
function prefixOfSentences(bytes: Buffer, count: number): { length: number; lines: number } {
  let seen = 0;
  let inSentence = false;
  let start = 0;
  for (let line = 1; start < bytes.length; line++) {
    const newline = bytes.indexOf(0x0a, start);
    const end = newline < 0 ? bytes.length : newline + 1;
    const blank = bytes.subarray(start, end).toString('utf8').trim() === '';
    if (blank && inSentence && ++seen === count) return { length: end, lines: line };
    inSentence = !blank;
    start = end;
  }
  throw new Error(`fewer than ${count} sentences`);
}
