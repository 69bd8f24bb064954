// Who may sign in: the operator's rules (config `login`) applied to the wiki's OAuth profile.
// Pure but for one question only the Action API can answer (is a block sitewide?), passed in.
import type { Problem } from '../views/index.ts';
import type { WikiProfile } from '../wiki/profile.ts';

export interface LoginRules {
  blocked: 'any' | 'sitewide' | 'never';
  min_edit_count: number;
  min_account_age_days: number;
  required_groups: readonly string[];
  forbidden_groups: readonly string[];
}

export interface LoginChecks {
  now: Date;
  /** Whether the user has at least one sitewide block; asked only when the profile says `blocked`. */
  isSitewideBlocked(username: string): Promise<boolean>;
}

const DAY_MS = 86_400_000;

/** The reason this person may not sign in, or undefined when they may. */
export async function loginProblem(profile: WikiProfile, rules: LoginRules, checks: LoginChecks): Promise<Problem | undefined> {
  if (profile.hidden) return { kind: 'account_hidden' };
  if (!profile.attached) return { kind: 'account_not_attached' };

  // The profile's `blocked` is true for any block, partial ones included.
  if (profile.blocked && rules.blocked === 'any') return { kind: 'blocked', scope: 'any' };
  if (profile.blocked && rules.blocked === 'sitewide' && (await checks.isSitewideBlocked(profile.username))) {
    return { kind: 'blocked', scope: 'sitewide' };
  }

  const forbidden = rules.forbidden_groups.find((group) => profile.groups.includes(group));
  if (forbidden) return { kind: 'forbidden_group', group: forbidden };
  if (rules.required_groups.length > 0 && !rules.required_groups.some((group) => profile.groups.includes(group))) {
    return { kind: 'missing_group', groups: rules.required_groups };
  }
  if (profile.editCount < rules.min_edit_count) return { kind: 'too_few_edits', minEdits: rules.min_edit_count };
  // Accounts older than MediaWiki's registration records have no date: they are the oldest of all.
  if (profile.registered && checks.now.getTime() - profile.registered.getTime() < rules.min_account_age_days * DAY_MS) {
    return { kind: 'account_too_new', minDays: rules.min_account_age_days };
  }
  return undefined;
}
