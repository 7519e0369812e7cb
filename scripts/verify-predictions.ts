/**
 * Checks a `gp predict` output against its input: one output line per input line, the same text, and every entity's
 * [start, end) slicing the text to exactly the entity's `text`.
 *
 *   node --import tsx scripts/verify-predictions.ts INPUT.txt PREDICTIONS.jsonl
 */
import { readFileSync } from 'node:fs';

const [inputFile, predFile] = process.argv.slice(2);
if (!inputFile || !predFile) {
  console.error('usage: verify-predictions.ts INPUT.txt PREDICTIONS.jsonl');
  process.exit(2);
}
const inputs = readFileSync(inputFile, 'utf8').replace(/\n$/, '').split('\n');
const preds = readFileSync(predFile, 'utf8').replace(/\n$/, '').split('\n').map((l) => JSON.parse(l) as { text: string; entities: Array<{ start: number; end: number; text: string }> });
const problems: string[] = [];
if (inputs.length !== preds.length) problems.push(`${inputs.length} input lines but ${preds.length} output lines`);
let entities = 0;
let longest = 0;
preds.forEach((p, i) => {
  if (p.text !== inputs[i]) problems.push(`line ${i + 1}: output text differs from the input line`);
  longest = Math.max(longest, p.text.length);
  for (const e of p.entities) {
    entities += 1;
    if (p.text.slice(e.start, e.end) !== e.text) problems.push(`line ${i + 1}: [${e.start}, ${e.end}) slices to ${JSON.stringify(p.text.slice(e.start, e.end))}, not ${JSON.stringify(e.text)}`);
  }
});
console.log(`${preds.length} lines, ${entities} entities, longest line ${longest} characters: ${problems.length ? `${problems.length} problems` : 'every offset slices to its entity text'}`);
for (const p of problems.slice(0, 20)) console.log(`  ${p}`);
process.exit(problems.length ? 1 : 0);
