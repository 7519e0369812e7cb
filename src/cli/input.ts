/**
 * The texts `gp predict` reads: one per line, or JSON lines with a "text" field. A file is one or the other, decided
 * by its first non-blank line, so a JSON line cut short or mistyped is an error naming file:line instead of being
 * predicted on as if it were text.
 */
import { readFileSync } from 'node:fs';
import { decodeUtf8 } from '../data/corpus.js';
import { DataError, GpError } from '../errors.js';

export interface InputLine {
  text: string;
  /** The other fields of a JSON line, written back next to the entities. */
  extra: Record<string, unknown>;
}

/** What names standard input in messages. */
export const STDIN_NAME = '<stdin>';

/** A file (or "-" for stdin), decoded as strict UTF-8. */
export async function readInputFile(file: string): Promise<InputLine[]> {
  const name = file === '-' ? STDIN_NAME : file;
  const bytes = file === '-' ? await readStream(process.stdin) : readBytes(file);
  return parseInputLines(decodeUtf8(bytes, name), name);
}

/**
 * JSON lines when the first non-blank line starts with `{"`; then every non-blank line must be an object with a
 * string "text", and a blank line stands for an empty text. Otherwise every line is a text as it is. A BOM and the
 * `\r` of CRLF line ends are dropped; a final newline does not start another text.
 */
export function parseInputLines(content: string, file: string): InputLine[] {
  const lines = content.replace(/^\uFEFF/, '').split('\n').map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
  if (lines[lines.length - 1] === '') lines.pop();
  const first = lines.find((line) => line.trim() !== '');
  if (first === undefined || !/^\s*\{\s*"/.test(first)) return lines.map((text) => ({ text, extra: {} }));
  return lines.map((line, index) => (line.trim() === '' ? { text: '', extra: {} } : jsonInput(line, file, index + 1)));
}

function jsonInput(line: string, file: string, lineNumber: number): InputLine {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch (error) {
    throw new DataError(file, lineNumber, `malformed JSON: ${(error as Error).message} (the file is read as JSON lines since its first line is one)`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new DataError(file, lineNumber, 'expected a JSON object with a "text" field');
  const { text, ...extra } = parsed as Record<string, unknown>;
  if (typeof text !== 'string') throw new DataError(file, lineNumber, `"text" must be a string, found ${JSON.stringify(text) ?? 'nothing'}`);
  // Gold annotations would be mistaken for predictions in the output.
  delete extra.entities;
  delete extra.label;
  return { text, extra };
}

function readBytes(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new GpError(`cannot read ${file}: ${(error as Error).message}`, 66);
  }
}

async function readStream(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks);
}
