// The answer of Extension:OAuth's `oauth2/resource/profile`, read strictly.
//
// What the extension emits (UserStatementProvider::getUserProfile):
// - `sub`: the central user id. Current versions send a string; older ones (the 1.39 era) send the
//   integer as a JSON number. `"0"`, `""`, `0` and `false` all mean "no attached central account".
// - A suppressed (hidden) user gets only `{sub, blocked: true}`.
// - Otherwise `username`, `editcount`, `confirmed_email` (+ `email_verified` since ~1.41),
//   `blocked` (any block: sitewide, partial, or global, on the wiki serving OAuth),
//   `registered` (MediaWiki timestamp `YYYYMMDDHHMMSS`, or null for accounts older than the
//   registration field), `groups` (effective groups, implicit ones included), `rights`, `grants`.
// - `realname` and `email` only with `mwoauth-authonlyprivate`. Current versions send `email: ""`
//   unless the address is confirmed; older ones send it confirmed or not.
import { z } from 'zod';

/** Who signed in on the wiki, as the rest of the service needs it. */
export type WikiProfile = VisibleWikiProfile | HiddenWikiProfile;

interface ProfileBase {
  /** Central user id as a decimal string; `"0"` when the account is not attached. */
  centralId: string;
  /** False when the wiki has no central (global) account for this user: there is no stable id. */
  attached: boolean;
  blocked: boolean;
}

export interface VisibleWikiProfile extends ProfileBase {
  hidden: false;
  username: string;
  editCount: number;
  /** Whether the wiki has confirmed the user's email address. */
  emailVerified: boolean;
  /** Present only when the private scope was granted and the address is confirmed. */
  email?: string;
  /** Present only when the private scope was granted and the name is not empty. */
  realName?: string;
  /** Null for accounts created before MediaWiki recorded registration dates. */
  registered: Date | null;
  /**
   * The effective groups exactly as the wiki sent them, implicit ones (`*`, `user`,
   * `autoconfirmed`) included, so that configuration may map any of them.
   */
  groups: string[];
  rights: string[];
  grants: string[];
}

/** A suppressed user: the wiki reveals nothing but the id and that they are blocked. */
export interface HiddenWikiProfile extends ProfileBase {
  hidden: true;
  blocked: true;
}

/** The profile did not have the expected shape; `field` names the first offending field. */
export class ProfileFormatError extends Error {
  readonly field: string;
  constructor(field: string, detail: string) {
    super(`field "${field}": ${detail}`);
    this.name = 'ProfileFormatError';
    this.field = field;
  }
}

const UNATTACHED = new Set<unknown>(['0', '', 0, false]);

const sub = z.union([
  z.string().regex(/^(0|[1-9][0-9]*)?$/, 'a decimal central user id'),
  z.number().int().nonnegative(),
  z.literal(false),
]);

const hiddenShape = z.object({ sub, blocked: z.literal(true) });

/** No identity may hold these: a database refuses NUL, and control characters and lone surrogates are no one's name. */
const UNUSABLE = /[\u0000-\u001f\u007f-\u009f]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const usableName = (name: string) => !UNUSABLE.test(name);

const visibleShape = z.object({
  sub,
  username: z.string().min(1).refine(usableName, 'holds a NUL byte, a control character or an unpaired surrogate'),
  editcount: z.number().int().nonnegative(),
  confirmed_email: z.boolean().optional(),
  email_verified: z.boolean().optional(),
  blocked: z.boolean(),
  registered: z.union([z.string(), z.null(), z.literal(false)]),
  groups: z.array(z.string()),
  rights: z.array(z.string()),
  grants: z.array(z.string()),
  realname: z.string().optional(),
  email: z.string().optional(),
});

type VisibleShape = z.infer<typeof visibleShape>;

/** Parses the profile JSON (already decoded) into a `WikiProfile`, or throws `ProfileFormatError`. */
export function parseWikiProfile(json: unknown): WikiProfile {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ProfileFormatError('(body)', 'not a JSON object');
  }
  if (!('username' in json) && 'blocked' in json && json.blocked === true) {
    const hidden = hiddenShape.safeParse(json);
    if (!hidden.success) throw formatError(hidden.error);
    return { hidden: true, blocked: true, ...identity(hidden.data.sub) };
  }
  const parsed = visibleShape.safeParse(json);
  if (!parsed.success) throw formatError(parsed.error);
  return visibleProfile(parsed.data);
}

function visibleProfile(data: VisibleShape): VisibleWikiProfile {
  const emailVerified = data.email_verified ?? data.confirmed_email;
  if (emailVerified === undefined) throw new ProfileFormatError('email_verified', 'missing (and no confirmed_email either)');
  const profile: VisibleWikiProfile = {
    hidden: false,
    ...identity(data.sub),
    username: data.username,
    editCount: data.editcount,
    emailVerified,
    blocked: data.blocked,
    registered: parseRegistered(data.registered),
    groups: data.groups,
    rights: data.rights,
    grants: data.grants,
  };
  // Older wikis send the address even when it is unconfirmed; an unconfirmed address proves nothing.
  if (emailVerified && data.email) profile.email = data.email;
  if (data.realname) profile.realName = data.realname;
  return profile;
}

function identity(raw: z.infer<typeof sub>): { centralId: string; attached: boolean } {
  const attached = !UNATTACHED.has(raw);
  return { centralId: attached ? String(raw) : '0', attached };
}

/** `YYYYMMDDHHMMSS` (UTC) as MediaWiki sends it; ISO 8601 is accepted in case a wiki ever switches. */
function parseRegistered(raw: string | null | false): Date | null {
  if (raw === null || raw === false) return null;
  const mw = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(raw);
  const date = mw
    ? new Date(Date.UTC(+mw[1]!, +mw[2]! - 1, +mw[3]!, +mw[4]!, +mw[5]!, +mw[6]!))
    : /^\d{4}-\d{2}-\d{2}T/.test(raw)
      ? new Date(raw)
      : new Date(NaN);
  if (Number.isNaN(date.getTime()) || (mw && date.getUTCMonth() !== +mw[2]! - 1)) {
    throw new ProfileFormatError('registered', 'not a MediaWiki timestamp');
  }
  return date;
}

function formatError(error: z.ZodError): ProfileFormatError {
  const issue = error.issues[0];
  const field = issue && issue.path.length > 0 ? issue.path.map(String).join('.') : '(body)';
  return new ProfileFormatError(field, issue?.message ?? 'invalid');
}
