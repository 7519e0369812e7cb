/**
 * Writes any corpus gp reads as canonical JSONL (`{"text", "entities": [{"start", "end", "label", "text"}]}`,
 * UTF-16 offsets, end exclusive), through the same `readCorpus` that `gp train` and `gp eval` use. Other tools
 * (the spaCy baseline, scripts/spacy_baseline.py) then see exactly the texts and spans gp trains and scores on.
 *
 *   node --import tsx scripts/export-jsonl.ts IN OUT.jsonl [--format F] [--scheme S] [--join J] [--strip-token-digit]
 *     [--invalid-tags repair|reject]
 *
 * The read report (format, scheme, join, counts, warnings) goes to stderr.
 */
import { readCorpus, writeJsonl } from '../src/data/corpus.js';
import { READ_FLAGS_USAGE, parseReadArgs, runMain } from './read-options.js';

const USAGE = `usage: export-jsonl.ts IN OUT.jsonl ${READ_FLAGS_USAGE}`;

function main(): void {
  const args = parseReadArgs(USAGE, 2);
  if (!args) return;
  const { positionals, read: options } = args;
  const [input, output] = positionals;
  const { examples, report } = readCorpus(input, options);
  writeJsonl(output, examples);
  const how = [`format ${report.format}`, report.scheme && `scheme ${report.scheme}`, report.join && `join ${report.join}`].filter(Boolean).join(', ');
  const types = Object.entries(report.perType)
    .map(([label, n]) => `${label} ${n}`)
    .join(', ');
  console.error(`${input} (${how}) → ${output}: ${report.examples} examples, ${report.entities} entities${types ? ` (${types})` : ''}`);
  if (report.repairedTags > 0) console.error(`  repaired tags: ${report.repairedTags}`);
  for (const warning of report.warnings) console.error(`  warning: ${warning}`);
}

runMain(main);
