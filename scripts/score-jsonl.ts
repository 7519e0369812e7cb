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
import { parseArgs } from 'node:util';
import { FORMATS, INVALID_TAGS, JOINS, SCHEMES, readCorpus, type Format, type InvalidTags, type Join, type Scheme } from '../src/data/corpus.js';
import { GpError } from '../src/errors.js';
import { formatScoresTable, scoreEntities } from '../src/eval/metrics.js';

const USAGE =
  'usage: score-jsonl.ts GOLD PRED.jsonl [--format auto|cluener|jsonl|conll] [--scheme auto|bio|iob1|bioes|bmes] [--join auto|none|space] [--strip-token-digit] [--invalid-tags repair|reject] [--json]';

function choice<T extends string>(name: string, value: string | undefined, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(value)) {
    console.error(`--${name} must be one of ${allowed.join(', ')}, not ${JSON.stringify(value)}\n${USAGE}`);
    process.exit(2);
  }
  return value as T;
}

function main(): void {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        format: { type: 'string' },
        scheme: { type: 'string' },
        join: { type: 'string' },
        'strip-token-digit': { type: 'boolean', default: false },
        'invalid-tags': { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (positionals.length !== 2) {
    console.error(USAGE);
    process.exit(2);
  }
  const [goldFile, predFile] = positionals;
  const gold = readCorpus(goldFile, {
    format: choice<Format>('format', values.format, FORMATS, 'auto'),
    scheme: choice<Scheme>('scheme', values.scheme, SCHEMES, 'auto'),
    join: choice<Join>('join', values.join, JOINS, 'auto'),
    stripTokenDigit: values['strip-token-digit'] === true,
    invalidTags: choice<InvalidTags>('invalid-tags', values['invalid-tags'], INVALID_TAGS, 'repair'),
  });
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

try {
  main();
} catch (error) {
  if (error instanceof GpError) {
    console.error(`error: ${error.message}`);
    process.exit(error.exitCode);
  }
  throw error;
}
