/**
 * Reading a YAML config, applying `--set key=value` overrides, and validating the result. Every error names the
 * file, the key path and, where the YAML has it, the line.
 */
import { readFileSync } from 'node:fs';
import { Document, LineCounter, isMap, parse as parseYamlValue, parseDocument, stringify } from 'yaml';
import { ConfigError } from '../errors.js';
import { ConfigSchema, type Config } from './schema.js';

type Tree = Record<string, unknown>;

/** `training.lr=3e-5` → path ['training', 'lr'] and the YAML-typed value 3e-5. */
export function parseOverride(assignment: string): { path: string[]; value: unknown } {
  const eq = assignment.indexOf('=');
  if (eq <= 0) throw new ConfigError(`--set ${assignment}`, 'expected key.path=value');
  const path = assignment.slice(0, eq).trim().split('.');
  if (path.some((p) => p === '')) throw new ConfigError(`--set ${assignment}`, 'empty key in the path');
  return { path, value: parseYamlValue(assignment.slice(eq + 1)) };
}

function setIn(tree: Tree, path: string[], value: unknown, where: string): void {
  let node: Tree = tree;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (next === undefined) node[key] = {};
    else if (typeof next !== 'object' || next === null || Array.isArray(next))
      throw new ConfigError(where, `cannot set a key inside ${key}, which is not a mapping`);
    node = node[key] as Tree;
  }
  node[path[path.length - 1]] = value;
}

/** Validate a plain object (already parsed) into a Config; `describe` maps a key path to a location string. */
export function validateConfig(raw: unknown, describe: (path: PropertyKey[]) => string = (p) => p.join('.')): Config {
  const result = ConfigSchema.safeParse(raw);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const keys = issue.code === 'unrecognized_keys' ? ` (${issue.keys.join(', ')})` : '';
    const at = issue.path.length ? describe(issue.path) : '(top level)';
    return `${at}: ${issue.message}${keys}`;
  });
  throw new ConfigError(lines.length === 1 ? 'config' : `config (${lines.length} problems)`, '\n  ' + lines.join('\n  '));
}

export function loadConfig(file: string, overrides: string[] = []): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, `cannot read config: ${(err as Error).message}`);
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length) {
    const e = doc.errors[0];
    const { line } = lineCounter.linePos(e.pos[0]);
    throw new ConfigError(`${file}:${line}`, `invalid YAML: ${e.message.split('\n')[0]}`);
  }
  const raw = (doc.toJS() ?? {}) as unknown;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(file, 'a config must be a YAML mapping');
  for (const assignment of overrides) {
    const { path, value } = parseOverride(assignment);
    setIn(raw as Tree, path, value, `--set ${assignment}`);
  }
  return validateConfig(raw, (path) => locate(doc, lineCounter, file, path));
}

function locate(doc: Document, lineCounter: LineCounter, file: string, path: PropertyKey[]): string {
  const keyPath = path.map(String).join('.');
  // Walk up to the deepest key that exists in the file, so an unknown or missing key still gets a line.
  for (let n = path.length; n > 0; n--) {
    const node = doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined;
    const parent = n > 1 ? doc.getIn(path.slice(0, n - 1), true) : doc.contents;
    const range = node?.range ?? (isMap(parent) ? parent.range : undefined);
    if (range) return `${file}:${lineCounter.linePos(range[0]).line} ${keyPath}`;
  }
  return `${file} ${keyPath}`;
}

/** The resolved config as YAML, for the model directory. */
export function configToYaml(config: Config): string {
  return stringify(config, { lineWidth: 0 });
}
