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
import { parseArgs } from 'node:util';
import { FORMATS, INVALID_TAGS, JOINS, SCHEMES, readCorpus, writeJsonl, type Format, type InvalidTags, type Join, type Scheme } from '../src/data/corpus.js';
import { GpError } from '../src/errors.js';

const USAGE =
  'usage: export-jsonl.ts IN OUT.jsonl [--format auto|cluener|jsonl|conll] [--scheme auto|bio|iob1|bioes|bmes] [--join auto|none|space] [--strip-token-digit] [--invalid-tags repair|reject]';

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
  const [input, output] = positionals;
  const options = {
    format: choice<Format>('format', values.format, FORMATS, 'auto'),
    scheme: choice<Scheme>('scheme', values.scheme, SCHEMES, 'auto'),
    join: choice<Join>('join', values.join, JOINS, 'auto'),
    stripTokenDigit: values['strip-token-digit'] === true,
    invalidTags: choice<InvalidTags>('invalid-tags', values['invalid-tags'], INVALID_TAGS, 'repair'),
  };
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

try {
  main();
} catch (error) {
  if (error instanceof GpError) {
    console.error(`error: ${error.message}`);
    process.exit(error.exitCode);
  }
  throw error;
}
