/**
 * Scores a predictions file against a gold corpus with gp's own metric code (`scoreEntities`, `formatScoresTable`,
 * exact (start, end, label) match, micro over all types), so that gp and other systems (the spaCy baseline) are
 * scored by the same code on the same spans.
 *
 *   node --import tsx scripts/score-jsonl.ts GOLD PRED.jsonl [--format F] [--scheme S] [--join J] [--strip-token-digit] [--json]
 *
 * GOLD is any corpus gp reads (the read options apply to it, as for `gp eval`); PRED is canonical JSONL
 * (`{"text", "entities": [{"start", "end", "label"}]}`, UTF-16 offsets, end exclusive), such as `gp predict` or
 * scripts/spacy_baseline.py write, one line per gold example in the same order and with the same text.
 * `--json` prints one JSON object (gold, pred, examples, micro, perType) on stdout instead of the table.
 */
import { readCorpus } from '../src/data/corpus.js';
import { GpError } from '../src/errors.js';
import { formatScoresTable, scoreEntities } from '../src/eval/metrics.js';
import { READ_FLAGS_USAGE, parseReadArgs, runMain } from './read-options.js';

const USAGE = `usage: score-jsonl.ts GOLD PRED.jsonl ${READ_FLAGS_USAGE} [--json]`;

function main(): void {
  const args = parseReadArgs(USAGE, 2, { json: { type: 'boolean', default: false } });
  if (!args) return;
  const { positionals, read, values } = args;
  const [goldFile, predFile] = positionals;
  const gold = readCorpus(goldFile, read);
  for (const warning of gold.report.warnings) console.error(`warning: ${warning}`);
  // The predictions are read as canonical JSONL whatever they look like: offsets in range, `text` of each entity
  // equal to its slice, and so on, are checked by the reader.
  const pred = readCorpus(predFile, { format: 'jsonl' });
  // An empty prediction file reads as zero examples with a 'no examples' note; other notes (unlabelled records) matter.
  for (const warning of pred.report.warnings) console.error(`warning: ${warning}`);

  if (gold.examples.length !== pred.examples.length) {
    throw new GpError(`${goldFile} has ${gold.examples.length} examples but ${predFile} has ${pred.examples.length}: predictions must be one line per gold example, in order`);
  }
  const mismatched = gold.examples.map((g, k) => (g.text === pred.examples[k].text ? -1 : k)).filter((k) => k >= 0);
  if (mismatched.length > 0) {
    const k = mismatched[0];
    const where = pred.examples[k].source ? `${predFile}:${pred.examples[k].source!.line}` : `${predFile} example ${k + 1}`;
    throw new GpError(
      `${mismatched.length} prediction text(s) differ from the gold texts; the first is ${where}: ${JSON.stringify(pred.examples[k].text.slice(0, 60))} vs gold ${JSON.stringify(gold.examples[k].text.slice(0, 60))}`,
    );
  }
  const goldLabels = new Set(gold.examples.flatMap((e) => e.spans.map((s) => s.label)));
  const unknown = [...new Set(pred.examples.flatMap((e) => e.spans.map((s) => s.label)))].filter((l) => !goldLabels.has(l));
  if (unknown.length) console.error(`warning: predicted labels absent from the gold data (all false positives): ${unknown.join(', ')}`);

  const scores = scoreEntities(
    gold.examples.map((e) => e.spans),
    pred.examples.map((e) => e.spans),
  );
  if (values.json) {
    process.stdout.write(JSON.stringify({ gold: goldFile, pred: predFile, examples: gold.examples.length, ...scores }) + '\n');
  } else {
    process.stdout.write(`${goldFile} vs ${predFile}: ${gold.examples.length} examples\n${formatScoresTable(scores)}\n`);
  }
}

runMain(main);
