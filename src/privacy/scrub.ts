// Finding a person in the text and JSON that other records keep: a block reason that names them,
// a report listing their Matrix ID, a cause saying they were the blocker. `forget` replaces every
// such mention with the person's opaque id, so that what remains still reads (and still counts)
// but names nobody.

/** What identifies the person, as they may be written. */
export interface Needles {
  /** Wiki usernames (current and former) and the display name. */
  names: readonly string[];
  /** Matrix IDs, matched exactly. */
  matrixIds: readonly string[];
  /** Matched without regard to case, as mail systems do. */
  email?: string | undefined;
  /** The central user id: replaced as a whole number, never inside a longer one. */
  centralId?: string | undefined;
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const unique = (list: readonly string[]) => [...new Set(list.map((s) => s.trim()).filter((s) => s.length > 0))];

/**
 * A username as MediaWiki compares them: the first letter in either case, spaces and underscores
 * alike; and only as a whole word (`Vandal` is not found in `Vandalism`).
 */
function namePattern(name: string): string {
  const [first = '', ...rest] = [...name];
  const head = first.toLowerCase() !== first.toUpperCase() ? `[${escapeRegExp(first.toLowerCase())}${escapeRegExp(first.toUpperCase())}]` : escapeRegExp(first);
  const tail = rest.join('').split(/[ _]+/).map(escapeRegExp).join('[ _]+');
  return `(?<![\\p{L}\\p{N}_])${head}${tail}(?![\\p{L}\\p{N}_])`;
}

const longestFirst = (a: string, b: string) => b.length - a.length;

export class Scrubber {
  readonly #patterns: RegExp[];
  readonly #replacement: string;
  /** Patterns for a first, coarse search in SQL (`ILIKE ANY`): every row a mention could be in, and a few others. */
  readonly likePatterns: string[];

  constructor(needles: Needles, replacement: string) {
    const names = unique(needles.names).sort(longestFirst);
    const matrixIds = unique(needles.matrixIds).sort(longestFirst);
    const email = needles.email?.trim() || undefined;
    // Matrix IDs first: a name is often inside one, and the whole ID must go.
    this.#patterns = [
      matrixIds.length > 0 ? new RegExp(matrixIds.map(escapeRegExp).join('|'), 'gu') : undefined,
      email ? new RegExp(escapeRegExp(email), 'giu') : undefined,
      names.length > 0 ? new RegExp(names.map(namePattern).join('|'), 'gu') : undefined,
      needles.centralId ? new RegExp(`(?<![0-9])${escapeRegExp(needles.centralId)}(?![0-9])`, 'gu') : undefined,
    ].filter((p) => p !== undefined);
    this.#replacement = replacement;
    this.likePatterns = unique([
      // The first letter's case varies, and how the database folds the case of other scripts
      // depends on its locale, so the coarse search leaves the first letter out; in LIKE, `_`
      // stands for any one character, a space or an underscore among them.
      ...names.flatMap((n) => {
        const tail = [...n].slice(1).join('').replace(/[ _]+/g, '_');
        return [likeOf(tail, false), likeOf(JSON.stringify(tail).slice(1, -1), false)];
      }),
      ...matrixIds.flatMap((m) => [likeOf(m, true), likeOf(JSON.stringify(m).slice(1, -1), true)]),
      ...(email ? [likeOf(email, true), likeOf(JSON.stringify(email).slice(1, -1), true)] : []),
      ...(needles.centralId ? [likeOf(needles.centralId, true)] : []),
    ]);
  }

  /** `text` with every mention replaced; the same string when there was none. */
  text(text: string): string {
    let result = text;
    for (const pattern of this.#patterns) result = result.replace(pattern, this.#replacement);
    return result;
  }

  /** A JSON value with every string in it (not the keys) scrubbed, and whether anything changed. */
  json(value: unknown): { value: unknown; changed: boolean } {
    let changed = false;
    const walk = (v: unknown): unknown => {
      if (typeof v === 'string') {
        const scrubbed = this.text(v);
        if (scrubbed !== v) changed = true;
        return scrubbed;
      }
      if (Array.isArray(v)) return v.map(walk);
      if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
      return v;
    };
    const scrubbed = walk(value);
    return { value: scrubbed, changed };
  }
}

function likeOf(text: string, escapeUnderscore: boolean): string {
  const escaped = text.replace(/\\/g, '\\\\').replace(/%/g, '\\%');
  return `%${escapeUnderscore ? escaped.replace(/_/g, '\\_') : escaped}%`;
}
