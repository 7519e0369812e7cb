/**
 * The corpus-reading flags the scripts share (`--format`, `--scheme`, `--join`, `--strip-token-digit`,
 * `--invalid-tags`), parsed with node:util's parseArgs into gp's ReadOptions, and their shared entry point. A bad
 * flag prints the usage and exits 2.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { FORMATS, INVALID_TAGS, JOINS, SCHEMES, type ReadOptions } from '../src/data/corpus.js';
import { GpError } from '../src/errors.js';

export const READ_FLAGS_USAGE =
  '[--format auto|cluener|jsonl|conll] [--scheme auto|bio|iob1|bioes|bmes] [--join auto|none|space] [--strip-token-digit] [--invalid-tags repair|reject]';

const READ_FLAGS = {
  format: { type: 'string' },
  scheme: { type: 'string' },
  join: { type: 'string' },
  'strip-token-digit': { type: 'boolean', default: false },
  'invalid-tags': { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

function fail(message: string, usage: string): never {
  console.error(`${message}\n${usage}`);
  process.exit(2);
}

function choice<T extends string>(name: string, value: unknown, allowed: readonly T[], fallback: T, usage: string): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    fail(`--${name} must be one of ${allowed.join(', ')}, not ${JSON.stringify(value)}`, usage);
  }
  return value as T;
}

/**
 * Parse argv with the read flags plus `extra` flags; exactly `positionals` positional arguments. Returns null after
 * printing the usage for --help.
 */
export function parseReadArgs(
  usage: string,
  positionals: number,
  extra: ParseArgsConfig['options'] = {},
): { positionals: string[]; read: ReadOptions; values: Record<string, unknown> } | null {
  let parsed;
  try {
    parsed = parseArgs({ allowPositionals: true, options: { ...READ_FLAGS, ...extra } });
  } catch (error) {
    return fail((error as Error).message, usage);
  }
  const values = parsed.values as Record<string, unknown>;
  if (values.help) {
    console.log(usage);
    return null;
  }
  if (parsed.positionals.length !== positionals) fail(`expected ${positionals} file arguments`, usage);
  const read: ReadOptions = {
    format: choice('format', values.format, FORMATS, 'auto', usage),
    scheme: choice('scheme', values.scheme, SCHEMES, 'auto', usage),
    join: choice('join', values.join, JOINS, 'auto', usage),
    stripTokenDigit: values['strip-token-digit'] === true,
    invalidTags: choice('invalid-tags', values['invalid-tags'], INVALID_TAGS, 'repair', usage),
  };
  return { positionals: parsed.positionals, read, values };
}

/** Run a script's main: a GpError prints its message and exits with its code; anything else is a bug and throws. */
export function runMain(main: () => void): void {
  try {
    main();
  } catch (error) {
    if (!(error instanceof GpError)) throw error;
    console.error(`error: ${error.message}`);
    process.exit(error.exitCode);
  }
}
