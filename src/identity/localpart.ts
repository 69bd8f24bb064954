// Wiki username → Matrix localpart.
//
// The mapping is an encoding of the MediaWiki-normalised name: ASCII capitals are lowercased,
// spaces become `_`, `a-z 0-9 . -` stay, and every other character becomes `=xx` escapes of its
// UTF-8 bytes (the spec's suggested scheme). `=`, `/` and `+` are escaped too although the grammar
// allows them: `=` so that escapes stay unambiguous, `/` and `+` because they need care in URLs.
//
// Lowercasing loses information (`ABC` and `Abc` are different wiki users), so the mapping is
// readable rather than injective. That is acceptable because a localpart is assigned once, at first
// login, and stored: the account repository resolves a collision with a numeric suffix
// (`abc`, `abc_2`, …), and the stored value, not this function, is the source of truth afterwards.
//
// An all-digit or reserved result has its first character escaped instead (`12345` → `=312345`,
// `Admin` → `=61dmin`): still a faithful encoding, and never all digits or reserved, because a
// result starting with `=` is neither. A result too long for the 255-byte Matrix ID is cut at an
// escape boundary and ends with `-` and a hash of the whole encoding, so long names stay distinct.
import { createHash } from 'node:crypto';

const MXID_MAX_BYTES = 255;
/** The Matrix localpart grammar; MAS's `^[a-z0-9.=_/+-]+$` is the same set. */
const GRAMMAR = /^[a-z0-9._=\-/+]+$/;
const ALL_DIGITS = /^[0-9]+$/;
const KEPT = /^[a-z0-9.-]$/;
/** One unit of an encoded localpart: an escape or a single character. */
const PIECE = /=[0-9a-f]{2}|[^]/g;
const HASH_LENGTH = 12;
/** Below this much room for the localpart, long names could not be told apart by their hash. */
const MIN_LOCALPART_BYTES = 32;

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

const utf8 = new TextEncoder();

function escapeChar(ch: string): string {
  let out = '';
  for (const byte of utf8.encode(ch)) out += `=${byte.toString(16).padStart(2, '0')}`;
  return out;
}

function encodeChar(ch: string): string {
  if (ch === ' ') return '_';
  if (ch >= 'A' && ch <= 'Z') return ch.toLowerCase();
  return KEPT.test(ch) ? ch : escapeChar(ch);
}

function hash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, HASH_LENGTH);
}

/** The longest run of whole pieces that fits in `room` characters. */
function cut(pieces: readonly string[], room: number): string {
  let out = '';
  for (const piece of pieces) {
    if (out.length + piece.length > room) break;
    out += piece;
  }
  return out;
}

function validateReserved(entries: readonly string[], what: string): void {
  for (const entry of entries) {
    if (!GRAMMAR.test(entry)) throw new LocalpartConfigError(`reserved ${what} "${entry}" is not a valid localpart (a-z, 0-9 and . _ = - / + only)`);
    if (entry.startsWith('=')) throw new LocalpartConfigError(`reserved ${what} "${entry}" cannot start with "=": escaped localparts start with it`);
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
    const chars = [...normalizeUsername(username)];
    if (chars.length === 0) throw new RangeError('a wiki username cannot be empty');
    const pieces = chars.map(encodeChar);
    const plain = this.#fit(pieces);
    if (!ALL_DIGITS.test(plain) && !this.isReserved(plain)) return plain;
    // Only a result starting with a plain character can be all digits or reserved (no reserved
    // entry starts with "="), so pieces[0] is that one character, already lowercased.
    pieces[0] = escapeChar(pieces[0]!);
    return this.#fit(pieces);
  }

  /**
   * The n-th alternative (n ≥ 2) to an assigned-elsewhere localpart: `base_n`, with `base` cut at
   * an escape boundary if needed to stay within the length bound.
   */
  withSuffix(base: string, n: number): string {
    if (!Number.isSafeInteger(n) || n < 2) throw new RangeError(`a localpart suffix must be an integer ≥ 2, not ${n}`);
    const suffix = `_${n}`;
    return cut(base.match(PIECE) ?? [], this.maxLength - suffix.length) + suffix;
  }

  isReserved(localpart: string): boolean {
    return this.#reservedNames.has(localpart) || this.#reservedPrefixes.some((prefix) => localpart.startsWith(prefix));
  }

  /** Why a localpart cannot be assigned on this homeserver, or undefined when it can. */
  problem(localpart: string): string | undefined {
    if (localpart.length === 0) return 'a localpart cannot be empty';
    if (!GRAMMAR.test(localpart)) return 'a localpart may contain only a–z, 0–9 and . _ = - / +';
    if (ALL_DIGITS.test(localpart)) return 'a localpart cannot be all digits';
    if (localpart.length > this.maxLength) return `a localpart on ${this.serverName} can be at most ${this.maxLength} characters long (a Matrix ID is at most 255 bytes)`;
    if (this.isReserved(localpart)) return `"${localpart}" is reserved`;
    return undefined;
  }

  mxid(localpart: string): string {
    return `@${localpart}:${this.serverName}`;
  }

  #fit(pieces: readonly string[]): string {
    const whole = pieces.join('');
    if (whole.length <= this.maxLength) return whole;
    return `${cut(pieces, this.maxLength - HASH_LENGTH - 1)}-${hash(whole)}`;
  }
}

/** One-off derivation; build a LocalpartPolicy once instead when deriving many. */
export function localpartFor(username: string, options: LocalpartOptions): string {
  return new LocalpartPolicy(options).derive(username);
}
