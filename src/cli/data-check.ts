/**
 * `gp data check FILE...`: reads corpus files the way training would and prints what the model will see. Data the
 * reader rejects fails the command (its DataError names file:line, exit 65); findings are warnings (exit 0).
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { checkCorpora, formatCheckReport } from '../data/check.js';
import { FORMATS, JOINS, SCHEMES, readCorpus, type Format, type Join, type ReadResult, type Scheme } from '../data/corpus.js';
import { TextTokenizer, buildTokenizer } from '../data/tokenizer.js';
import { readManifest } from '../model/io.js';

/** The default of `data.maxLength` in a config. */
const DEFAULT_MAX_LENGTH = 128;

interface DataCheckOptions {
  format: Format;
  scheme: Scheme;
  join: Join;
  stripTokenDigit?: boolean;
  tokenizer?: string;
  maxLength?: number;
  json?: boolean;
}

function positiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false; // TextTokenizer.load reports the missing file
  }
}

/**
 * The given tokenizer.json, or the one in a given model directory (whose maxLength then is the default), or the
 * char-mode tokenizer `gp train` would build from these texts by default.
 */
async function chooseTokenizer(
  path: string | undefined,
  corpora: readonly ReadResult[],
): Promise<{ tokenizer: TextTokenizer; source: string; maxLength?: number }> {
  if (path && isDirectory(path)) {
    const { spec } = readManifest(path);
    const file = join(path, 'tokenizer.json');
    return { tokenizer: await TextTokenizer.load(file), source: `${file} (model maxLength ${spec.maxLength})`, maxLength: spec.maxLength };
  }
  if (path) return { tokenizer: await TextTokenizer.load(path), source: path };
  const texts = corpora.flatMap((c) => c.examples.map((e) => e.text));
  return { tokenizer: buildTokenizer(texts, { mode: 'char' }), source: 'char tokenizer built from the files' };
}

export function registerDataCheck(program: Command): void {
  const data = program.commands.find((c) => c.name() === 'data') ?? program.command('data').description('inspect corpus files');
  data
    .command('check')
    .description('statistics and problems of corpus files: types, lengths, nested spans, tokenizer fit, overlap between files')
    .argument('<files...>', 'corpus files (train, dev, test…); every pair is compared')
    .addOption(new Option('--format <format>', 'data format').choices(FORMATS).default('auto'))
    .addOption(new Option('--scheme <scheme>', 'tag scheme of conll data').choices(SCHEMES).default('auto'))
    .addOption(new Option('--join <join>', 'how conll tokens become text').choices(JOINS).default('auto'))
    .option('--strip-token-digit', "strip the trailing digits of conll tokens (Weibo's 科0)")
    .option('--tokenizer <file>', 'tokenizer.json (or a model directory) to measure tokens with; default: a char tokenizer built from the files')
    .option('--max-length <n>', `tokens per window, [CLS] and [SEP] included (default: the model's with a model directory, else ${DEFAULT_MAX_LENGTH})`, positiveInteger)
    .option('--json', 'print the report as JSON on stdout')
    .action(async (files: string[], opts: DataCheckOptions) => {
      const readOptions = { format: opts.format, scheme: opts.scheme, join: opts.join, stripTokenDigit: Boolean(opts.stripTokenDigit) };
      const corpora = files.map((file) => readCorpus(file, readOptions));
      const { tokenizer, source, maxLength } = await chooseTokenizer(opts.tokenizer, corpora);
      const report = checkCorpora(corpora, tokenizer, { maxLength: opts.maxLength ?? maxLength ?? DEFAULT_MAX_LENGTH, tokenizerSource: source });
      process.stdout.write(opts.json ? JSON.stringify(report, null, 2) + '\n' : formatCheckReport(report) + '\n');
    });
}
