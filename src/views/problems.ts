/**
 * Why a sign-in (or any page) could not go on, as the person should be told it. The login flow
 * decides; this module only knows how each reason is shown and answered.
 */
export type Problem =
  /** The wiki's profile has `sub: "0"`: a local account not attached to a global (central) one. */
  | { kind: 'account_not_attached' }
  /** A suppressed (hidden) account: the profile has only `sub` and `blocked`. */
  | { kind: 'account_hidden' }
  /** The wiki sent a username no identity may hold (a NUL byte, a control character, an unpaired surrogate). */
  | { kind: 'account_name_invalid' }
  /** Moderation ended the person's sessions for a wiki lock or block that still lasts (`moderation.sessions`). */
  | { kind: 'sanctioned' }
  /** Refused for a block: `any` when every block counts (the profile's `blocked`), `sitewide` otherwise. */
  | { kind: 'blocked'; scope: 'any' | 'sitewide' }
  | { kind: 'too_few_edits'; minEdits: number }
  | { kind: 'account_too_new'; minDays: number }
  /** Sign-in is limited to members of (one of) these wiki groups. */
  | { kind: 'missing_group'; groups: readonly string[] }
  /** Members of this wiki group may not sign in. */
  | { kind: 'forbidden_group'; group: string }
  /** The person pressed "Cancel" on the wiki's authorization page (`error=access_denied`). */
  | { kind: 'wiki_cancelled' }
  | { kind: 'wiki_unavailable' }
  | { kind: 'wiki_timeout' }
  /** The interaction or OAuth `state` is unknown, expired, or already used. */
  | { kind: 'session_invalid' }
  | { kind: 'not_found' }
  | { kind: 'bad_request' }
  | { kind: 'server_error' };

export type ProblemKind = Problem['kind'];
export type Severity = 'error' | 'warning' | 'notice';

export interface ProblemInfo {
  /** The HTTP status for the error page. */
  status: number;
  severity: Severity;
  /**
   * The OAuth 2 error to answer the relying party with, when the flow can still redirect back to it;
   * undefined where there is no one to answer (the session is gone, the page does not exist).
   */
  oauthError?: 'access_denied' | 'temporarily_unavailable' | 'server_error';
  /** Message key stem: `wikimatrixsso-error-<stem>-title` and `…-message`. */
  stem: string;
}

const refused = (stem: string): ProblemInfo => ({ status: 403, severity: 'error', oauthError: 'access_denied', stem });

const INFO: Readonly<Record<ProblemKind, ProblemInfo>> = {
  account_not_attached: refused('not-attached'),
  account_hidden: refused('hidden'),
  account_name_invalid: refused('name-invalid'),
  blocked: refused('blocked'),
  sanctioned: refused('sanctioned'),
  too_few_edits: refused('too-few-edits'),
  account_too_new: refused('too-new'),
  missing_group: refused('missing-group'),
  forbidden_group: refused('forbidden-group'),
  wiki_cancelled: { status: 400, severity: 'notice', oauthError: 'access_denied', stem: 'cancelled' },
  wiki_unavailable: { status: 502, severity: 'warning', oauthError: 'temporarily_unavailable', stem: 'wiki-unavailable' },
  wiki_timeout: { status: 504, severity: 'warning', oauthError: 'temporarily_unavailable', stem: 'wiki-timeout' },
  session_invalid: { status: 400, severity: 'warning', stem: 'session' },
  not_found: { status: 404, severity: 'notice', stem: 'not-found' },
  bad_request: { status: 400, severity: 'error', stem: 'bad-request' },
  server_error: { status: 500, severity: 'error', oauthError: 'server_error', stem: 'server' },
};

export const PROBLEM_KINDS = Object.keys(INFO) as ProblemKind[];

export function problemInfo(problem: Problem | ProblemKind): ProblemInfo {
  return INFO[typeof problem === 'string' ? problem : problem.kind];
}
