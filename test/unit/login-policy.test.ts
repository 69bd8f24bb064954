import assert from 'node:assert/strict';
import { test } from '@jest/globals';
import { loginProblem, type LoginRules } from '../../src/login/policy.ts';
import type { VisibleWikiProfile, WikiProfile } from '../../src/wiki/profile.ts';

const now = new Date('2026-11-27T12:00:00Z');
const open: LoginRules = { blocked: 'sitewide', min_edit_count: 0, min_account_age_days: 0, required_groups: [], forbidden_groups: [] };
const editor: VisibleWikiProfile = {
  hidden: false,
  centralId: '42',
  attached: true,
  blocked: false,
  username: 'Example',
  editCount: 120,
  emailVerified: true,
  registered: new Date('2020-01-01T00:00:00Z'),
  groups: ['*', 'user', 'autoconfirmed', 'sysop'],
  rights: [],
  grants: [],
};

const cases: Array<[string, WikiProfile, Partial<LoginRules>, boolean, unknown]> = [
  ['an ordinary editor', editor, {}, false, undefined],
  ['a hidden account', { hidden: true, blocked: true, centralId: '42', attached: true }, { blocked: 'never' }, false, { kind: 'account_hidden' }],
  ['an unattached account', { ...editor, centralId: '0', attached: false }, {}, false, { kind: 'account_not_attached' }],
  ['any block, rule any', { ...editor, blocked: true }, { blocked: 'any' }, false, { kind: 'blocked', scope: 'any' }],
  ['partial block, rule sitewide', { ...editor, blocked: true }, {}, false, undefined],
  ['sitewide block, rule sitewide', { ...editor, blocked: true }, {}, true, { kind: 'blocked', scope: 'sitewide' }],
  ['sitewide block, rule never', { ...editor, blocked: true }, { blocked: 'never' }, true, undefined],
  ['forbidden group', editor, { forbidden_groups: ['bot', 'sysop'] }, false, { kind: 'forbidden_group', group: 'sysop' }],
  ['required group held', editor, { required_groups: ['steward', 'sysop'] }, false, undefined],
  ['required group missing', editor, { required_groups: ['steward'] }, false, { kind: 'missing_group', groups: ['steward'] }],
  ['enough edits', editor, { min_edit_count: 120 }, false, undefined],
  ['too few edits', editor, { min_edit_count: 121 }, false, { kind: 'too_few_edits', minEdits: 121 }],
  ['old enough', { ...editor, registered: new Date('2026-11-17T12:00:00Z') }, { min_account_age_days: 10 }, false, undefined],
  ['too new', { ...editor, registered: new Date('2026-11-17T12:00:01Z') }, { min_account_age_days: 10 }, false, { kind: 'account_too_new', minDays: 10 }],
  ['no registration date counts as old', { ...editor, registered: null }, { min_account_age_days: 3650 }, false, undefined],
];

for (const [name, profile, rules, sitewide, expected] of cases) {
  test(`login policy: ${name}`, async () => {
    const asked: string[] = [];
    const problem = await loginProblem(profile, { ...open, ...rules }, {
      now,
      isSitewideBlocked: async (username) => (asked.push(username), sitewide),
    });
    assert.deepEqual(problem, expected);
    if (!profile.blocked || rules.blocked !== undefined) assert.deepEqual(asked, [], 'the wiki is asked only about blocked accounts under the sitewide rule');
  });
}
