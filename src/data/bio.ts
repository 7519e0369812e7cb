/**
 * Tag schemes of one-token-per-line corpora (BIO/IOB2, IOB1, BIOES/BILOU, BMES) and their decoding into
 * token spans. Pure: no files, no line numbers — the caller maps token indices back to lines.
 */

export const SCHEMES = ['auto', 'bio', 'iob1', 'bioes', 'bmes'] as const;
export type Scheme = (typeof SCHEMES)[number];
export type ConcreteScheme = Exclude<Scheme, 'auto'>;

/** A tag split at its first `-`: `B-PER.NOM` → {prefix: 'B', label: 'PER.NOM'}; `O` → {prefix: 'O', label: ''}. */
export interface Tag {
  prefix: string;
  label: string;
}

/** Token indices, end exclusive. */
export interface TokenSpan {
  start: number;
  end: number;
  label: string;
}

/** An invalid tag sequence found at token `index`; decoding has already repaired it. */
export interface TagProblem {
  index: number;
  problem: string;
}

type Role = 'begin' | 'inside' | 'end' | 'single';

// BILOU's L/U are BIOES's E/S under other names, so one table serves both.
const ROLES: Record<ConcreteScheme, Readonly<Record<string, Role>>> = {
  bio: { B: 'begin', I: 'inside' },
  iob1: { B: 'begin', I: 'inside' },
  bioes: { B: 'begin', I: 'inside', E: 'end', L: 'end', S: 'single', U: 'single' },
  bmes: { B: 'begin', M: 'inside', E: 'end', S: 'single' },
};

/** Null when the tag is neither `O` nor `<one capital letter>-<label>`. */
export function splitTag(tag: string): Tag | null {
  if (tag === 'O') return { prefix: 'O', label: '' };
  const match = /^([A-Z])-(.+)$/.exec(tag);
  return match ? { prefix: match[1], label: match[2] } : null;
}

export function formatTag(tag: Tag): string {
  return tag.prefix === 'O' ? 'O' : `${tag.prefix}-${tag.label}`;
}

/**
 * Picks the scheme from the prefixes a file uses. `M` only occurs in BMES; `E`/`S` (or `L`/`U`) only in
 * BIOES-like schemes. B/I files are ambiguous between BIO and IOB1; they read as BIO (where an I- after O is
 * a repairable error that decodes to the same span IOB1 would give) unless no B- occurs at all, which only
 * IOB1 produces.
 */
export function detectScheme(prefixes: ReadonlySet<string>): ConcreteScheme {
  if (prefixes.has('M')) return 'bmes';
  if (['E', 'S', 'L', 'U'].some((p) => prefixes.has(p))) return 'bioes';
  if (prefixes.has('I') && !prefixes.has('B')) return 'iob1';
  return 'bio';
}

/** The problem with a tag's prefix under `scheme`, or null when the scheme knows it. */
export function prefixProblem(tag: Tag, scheme: ConcreteScheme): string | null {
  if (tag.prefix === 'O' || tag.prefix in ROLES[scheme]) return null;
  const accepted = [...Object.keys(ROLES[scheme]), 'O'].join(', ');
  return `unknown tag prefix "${tag.prefix}-" in "${formatTag(tag)}" (scheme ${scheme} accepts ${accepted})`;
}

/**
 * Decodes one sentence's tags (prefixes already checked with `prefixProblem`). Invalid sequences are
 * repaired and reported: a continuation tag (I-/M-/E-) that does not continue an open entity of its label
 * starts a new entity there; in BIOES/BMES an entity left without its E- tag ends at its last token.
 * IOB1 has no invalid sequences: there an I- after O or another label legitimately starts an entity.
 */
export function decodeTags(
  tags: readonly Tag[],
  scheme: ConcreteScheme,
): { spans: TokenSpan[]; problems: TagProblem[] } {
  const roles = ROLES[scheme];
  const needsEnd = scheme === 'bioes' || scheme === 'bmes';
  const spans: TokenSpan[] = [];
  const problems: TagProblem[] = [];
  let open: { start: number; label: string } | null = null;

  for (let i = 0; i < tags.length; i++) {
    const tag = tags[i];
    const role = tag.prefix === 'O' ? null : roles[tag.prefix];
    const continues = open !== null && open.label === tag.label;

    if ((role === 'inside' || role === 'end') && continues) {
      if (role === 'end' && open) {
        spans.push({ start: open.start, end: i + 1, label: open.label });
        open = null;
      }
      continue;
    }
    if (open) {
      if (needsEnd && role !== 'inside' && role !== 'end') {
        problems.push({ index: i, problem: unclosed(open.label, scheme, formatTag(tag)) });
      }
      spans.push({ start: open.start, end: i, label: open.label });
      open = null;
    }
    if (role === 'inside' || role === 'end') {
      if (scheme !== 'iob1') {
        const previous = i === 0 ? 'sentence start' : `"${formatTag(tags[i - 1])}"`;
        problems.push({ index: i, problem: `"${formatTag(tag)}" after ${previous}: no open ${tag.label} entity to continue` });
      }
    }
    if (role === 'begin' || role === 'inside') open = { start: i, label: tag.label };
    if (role === 'single' || role === 'end') spans.push({ start: i, end: i + 1, label: tag.label });
  }
  if (open) {
    if (needsEnd) problems.push({ index: tags.length - 1, problem: unclosed(open.label, scheme, 'the end of the sentence') });
    spans.push({ start: open.start, end: tags.length, label: open.label });
  }
  return { spans, problems };
}

function unclosed(label: string, scheme: 'bioes' | 'bmes', found: string): string {
  const inside = scheme === 'bmes' ? 'M' : 'I';
  return `${label} entity is not closed: expected ${inside}-${label} or E-${label}, found ${found}`;
}
