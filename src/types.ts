/**
 * The few types every room shares. Offsets are UTF-16 code-unit indices into `text` (what JS strings index),
 * `end` exclusive — the same convention the JSONL written by `gp predict` declares.
 */

/** A labelled character span: text.slice(start, end) is the entity's surface. */
export interface Span {
  start: number;
  end: number;
  label: string;
}

/** Where an example came from, so that every later error can name file:line. */
export interface SourceRef {
  file: string;
  line: number;
}

export interface Example {
  text: string;
  spans: Span[];
  source?: SourceRef;
}

/** A predicted entity, as `gp predict` writes it. */
export interface Entity extends Span {
  text: string;
  score: number;
}
