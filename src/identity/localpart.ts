// Wiki username → Matrix localpart.
//
// A localpart must come out of the homeserver exactly as the service sent it, or the Matrix ID the
// service records is not the one the person gets. Synapse passes the OIDC localpart template
// through `map_username_to_mxid_localpart` (synapse/types/__init__.py): it lowercases, escapes
// every byte outside `a-z 0-9 . _ - / +` as `=xx` (`=` included) and a leading `_` as `=5f`. So
// the spec's `=xx` escaping cannot be used: Synapse escapes the escapes again. MAS keeps the
// localpart as it is but refuses anything outside `^[a-z0-9.=_/+-]+$`. The localparts made here
// use only `a-z 0-9 . _ -`, never start with `_`: unchanged by both. (`/` and `+` would survive
// too, but clients, bridges and URLs handle them poorly; admins may still choose them.)
//
// Other scripts are transliterated (any-ascii: `Мария` → `mariya`, `北京` → `beijing`, `😀` →
// `grinning`), which is readable but not injective: `Мария`, `Mariya` and `MARIYA` all map to
// `mariya`. That is acceptable because a localpart is assigned once, at first login, and stored:
// the account repository resolves a collision with a numeric suffix (`mariya`, `mariya_2`, …),
// and the stored value, not this function, is the source of truth afterwards.
//
// A name that transliterates to nothing (only punctuation) gets `wiki-user-` and a hash of the
// name; an all-digit or reserved result gets `_wiki` appended (`12345` → `12345_wiki`, `Admin` →
// `admin_wiki`), and one starting with a reserved prefix gets `wiki-` in front. A result too long
// for the 255-byte Matrix ID is cut and ends with `-` and a hash of the whole name.
import { createHash } from 'node:crypto';
import anyAscii from 'any-ascii';

const MXID_MAX_BYTES = 255;
/** The Matrix localpart grammar; MAS's `^[a-z0-9.=_/+-]+$` is the same set. */
const GRAMMAR = /^[a-z0-9._=\-/+]+$/;
/** What Synapse's mapping leaves as it is (besides a leading `_`). */
const HOMESERVER_STABLE = /^[a-z0-9._\-/+]+$/;
const ALL_DIGITS = /^[0-9]+$/;
const HASH_LENGTH = 12;
/** Below this much room for the localpart, long names could not be told apart by their hash. */
const MIN_LOCALPART_BYTES = 32;
const RESERVED_SUFFIX = '_wiki';
const RESERVED_PREFIX_ESCAPE = 'wiki-';
const FALLBACK_PREFIX = 'wiki-user-';

// MediaWiki's title normalisation (TitleParser::splitTitleString): these count as spaces, runs of
// them collapse, and direction marks are dropped; so any spelling of a name maps like its canonical form.
const MW_SPACES = /[ _\u00A0\u1680\u180E\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+/gu;
const MW_DIRECTION_MARKS = /[\u200E\u200F\u202A-\u202E]/gu;

/**
 * Localparts a wiki user must not get: the homeserver's own and its bots', moderation bots' (a
 * user called "Mjolnir" must not look like one), and `room` (`@room` notifies a whole room).
 */
export const DEFAULT_RESERVED_NAMES: readonly string[] = [
  'abuse',
  'admin',
  'administrator',
  'appservice',
  'bot',
  'bridge',
  'draupnir',
  'heisenbridge',
  'hookshot',
  'irc',
  'ircbridge',
  'mas',
  'matrix',
  'meowlnir',
  'mjolnir',
  'mod',
  'moderator',
  'noreply',
  'no-reply',
  'notices',
  'postmaster',
  'room',
  'root',
  'security',
  'server',
  'support',
  'synapse',
  'system',
  'webmaster',
  'wiki-matrix-sso',
];

/** `_` starts the namespaces bridges and appservices conventionally claim. */
export const DEFAULT_RESERVED_PREFIXES: readonly string[] = ['_'];

export interface LocalpartOptions {
  /** The homeserver's server name: the part after `:` in Matrix IDs. */
  serverName: string;
  /** Added to DEFAULT_RESERVED_NAMES, e.g. the service's own bot. */
  reservedNames?: readonly string[];
  /** Added to DEFAULT_RESERVED_PREFIXES, e.g. an appservice's exclusive `irc_` namespace. */
  reservedPrefixes?: readonly string[];
}

export class LocalpartConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LocalpartConfigError';
  }
}

/** MediaWiki's canonical spelling of a username as far as spaces go: `Jimbo_Wales` → `Jimbo Wales`. */
export function normalizeUsername(name: string): string {
  // Marks go before NFC: a mark between a letter and a combining accent would otherwise keep them apart.
  return name.replace(MW_DIRECTION_MARKS, '').normalize('NFC').replace(MW_SPACES, ' ').replace(/^ | $/g, '');
}

/**
 * The spelling the wiki stores: MediaWiki upper-cases a username's first letter in every script
 * (`марина` is `Марина`), but leaves a letter whose capital is two letters (`ß`) and Georgian
 * Mkhedruli, whose capitals (Mtavruli) are not used in running text.
 */
export function canonicalUsername(username: string): string {
  const name = normalizeUsername(username);
  const first = String.fromCodePoint(name.codePointAt(0) ?? 0x20);
  const upper = first.toUpperCase();
  if (!name || upper === first || [...upper].length !== 1 || /^[\u10D0-\u10FF]/.test(first)) return name;
  return upper + name.slice(first.length);
}

const utf8 = new TextEncoder();

/** Whether Synapse's `map_username_to_mxid_localpart` and MAS both keep `localpart` exactly as it is. */
export function isHomeserverStable(localpart: string): boolean {
  return HOMESERVER_STABLE.test(localpart) && !localpart.startsWith('_');
}

function hash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, HASH_LENGTH);
}

/**
 * A canonical name in `a-z 0-9 . _ -`: transliterated, lowercased, apostrophes dropped (`O'Brien`
 * → `obrien`), spaces as `_`, anything else as `-`, runs of separators as their first one, none at
 * either end. Empty when nothing readable is left.
 */
function readable(name: string): string {
  return anyAscii(name)
    .toLowerCase()
    .replace(/['`\u2019]/g, '')
    .replace(/\s+/g, '_')
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/([._-])[._-]+/g, '$1')
    .replace(/^[._-]+|[._-]+$/g, '');
}

/** `text` cut to at most `room` characters, without a separator left dangling at the end. */
function cut(text: string, room: number): string {
  return text.slice(0, room).replace(/[._-]+$/, '');
}

function validateReserved(entries: readonly string[], what: string): void {
  for (const entry of entries) {
    if (!GRAMMAR.test(entry)) throw new LocalpartConfigError(`reserved ${what} "${entry}" is not a valid localpart (a-z, 0-9 and . _ = - / + only)`);
  }
}

/**
 * The localpart rules of one homeserver: derivation, collision suffixes and validation all
 * respect the same length bound and reserved names.
 */
export class LocalpartPolicy {
  readonly serverName: string;
  /** The longest localpart (in bytes, which for a valid localpart are characters) that fits. */
  readonly maxLength: number;
  readonly #reservedNames: ReadonlySet<string>;
  readonly #reservedPrefixes: readonly string[];

  constructor(options: LocalpartOptions) {
    const { serverName } = options;
    if (!serverName) throw new LocalpartConfigError('the homeserver server name is empty');
    this.serverName = serverName;
    this.maxLength = MXID_MAX_BYTES - 2 - utf8.encode(serverName).length;
    if (this.maxLength < MIN_LOCALPART_BYTES) {
      throw new LocalpartConfigError(`the server name "${serverName}" is too long: it must leave at least ${MIN_LOCALPART_BYTES} of the 255 bytes of a Matrix ID for the localpart`);
    }
    const names = options.reservedNames ?? [];
    const prefixes = options.reservedPrefixes ?? [];
    validateReserved(names, 'name');
    validateReserved(prefixes, 'prefix');
    this.#reservedNames = new Set([...DEFAULT_RESERVED_NAMES, ...names]);
    this.#reservedPrefixes = [...DEFAULT_RESERVED_PREFIXES, ...prefixes];
  }

  /** The readable localpart for a username; throws a RangeError for a name that is empty once normalised. */
  derive(username: string): string {
    const name = normalizeUsername(username);
    if (name === '') throw new RangeError('a wiki username cannot be empty');
    // Hashes see the name up to ASCII case, as the readable part does: `IRC` and `Irc` are one localpart.
    const key = name.replace(/[A-Z]/g, (c) => c.toLowerCase());
    const plain = readable(name);
    if (plain === '') return this.#fallback(key);
    const fitted = this.#fit(plain, key);
    const candidates = [
      fitted,
      cut(fitted, this.maxLength - RESERVED_SUFFIX.length) + RESERVED_SUFFIX,
      cut(RESERVED_PREFIX_ESCAPE + fitted, this.maxLength),
    ];
    return candidates.find((candidate) => this.problem(candidate) === undefined) ?? this.#fallback(key);
  }

  /**
   * The n-th alternative (n ≥ 2) to an assigned-elsewhere localpart: `base_n`, with `base` cut if
   * needed to stay within the length bound.
   */
  withSuffix(base: string, n: number): string {
    if (!Number.isSafeInteger(n) || n < 2) throw new RangeError(`a localpart suffix must be an integer ≥ 2, not ${n}`);
    const suffix = `_${n}`;
    return cut(base, this.maxLength - suffix.length) + suffix;
  }

  isReserved(localpart: string): boolean {
    return this.#reservedNames.has(localpart) || this.#reservedPrefixes.some((prefix) => localpart.startsWith(prefix));
  }

  /** Why a localpart cannot be assigned on this homeserver, or undefined when it can. */
  problem(localpart: string): string | undefined {
    if (localpart.length === 0) return 'a localpart cannot be empty';
    if (!HOMESERVER_STABLE.test(localpart)) return 'a localpart may contain only a–z, 0–9 and . _ - / + (Synapse would escape anything else, "=" included)';
    if (localpart.startsWith('_')) return 'a localpart cannot start with "_" (Synapse would escape it; bridges claim that namespace)';
    if (ALL_DIGITS.test(localpart)) return 'a localpart cannot be all digits';
    if (localpart.length > this.maxLength) return `a localpart on ${this.serverName} can be at most ${this.maxLength} characters long (a Matrix ID is at most 255 bytes)`;
    if (this.isReserved(localpart)) return `"${localpart}" is reserved`;
    return undefined;
  }

  mxid(localpart: string): string {
    return `@${localpart}:${this.serverName}`;
  }

  /** `plain` within the length bound; a cut one ends with a hash of the whole name, so long names stay distinct. */
  #fit(plain: string, key: string): string {
    if (plain.length <= this.maxLength) return plain;
    return `${cut(plain, this.maxLength - HASH_LENGTH - 1)}-${hash(key)}`;
  }

  /** For a name with nothing readable in it, or whose every readable form is taken by reservations. */
  #fallback(key: string): string {
    const localpart = FALLBACK_PREFIX + hash(key);
    if (this.problem(localpart) !== undefined) throw new LocalpartConfigError(`the reserved names or prefixes cover "${localpart}", the localpart for names with nothing readable in them; reserve less`);
    return localpart;
  }
}

/** One-off derivation; build a LocalpartPolicy once instead when deriving many. */
export function localpartFor(username: string, options: LocalpartOptions): string {
  return new LocalpartPolicy(options).derive(username);
}
